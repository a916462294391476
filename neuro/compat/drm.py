"""A toy state-based DrM agent on a gymnasium control task, with and without DrM's three mechanisms.

The learner is DrQ-v2's actor-critic without the image encoder: a deterministic
``tanh`` actor with clipped Gaussian exploration noise ``sigma``, twin critics
with a Polyak target, and (DrM) an expectile value network ``V_psi``.

- ``baseline``: ``sigma = linear(sigma_0 -> sigma_1 over D)(t)``, target ``V = min Q'(s', a')``.
- ``drm``: every ``dormant_every`` steps ``beta`` of the actor's Linear outputs
  (``dormant_on: linear``, as DrM) or ReLU outputs (``relu``) is measured on a
  replay batch; ``sigma`` follows :class:`neuro.compat.dormant.AwakenExploration`;
  the target is ``lambda(beta) V_psi(s') + (1 - lambda(beta)) min Q'``; and every
  ``perturb_every`` steps all Linear layers are perturbed with ``alpha(beta)``.

It is a demonstration that the mechanisms switch on ``beta``; it makes no claim about returns.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from neuro.compat import dormant
from neuro.compat.common import check_config, seeds_of
from neuro.io import save_figure

VARIANTS = ("drm", "baseline")
# where beta is measured: DrM's Linear outputs (pre-activation) or Sokar et al.'s post-ReLU activity
DORMANT_ON = {"linear": (nn.Linear,), "relu": (nn.ReLU,)}

DEFAULTS = {
    "env": "Pendulum-v1",
    "seeds": [0],
    "variants": list(VARIANTS),
    "steps": 6000,
    "warmup_steps": 500,
    "batch_size": 128,
    "hidden": 256,
    "lr": 1e-3,
    "gamma": 0.99,
    "polyak": 0.01,
    "tau_dormant": 0.025,
    "dormant_on": "linear",
    "dormant_every": 100,
    "perturb_every": 2000,
    "alpha_min": 0.2,
    "alpha_max": 0.9,
    "perturb_rate": 2.0,
    "beta_hat": 0.2,
    "sigma_temp": 10.0,
    "lambda_hat": 0.6,
    "lambda_temp": 50.0,
    "expectile": 0.9,
    "std_start": 1.0,
    "std_end": 0.1,
    "std_duration": 5000,
    "std_clip": 0.3,
}


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


class Critic(nn.Module):
    """Twin Q networks ``Q_1, Q_2(s, a)``."""

    def __init__(self, n_obs: int, n_act: int, hidden: int):
        super().__init__()
        self.q1, self.q2 = _mlp(n_obs + n_act, hidden, 1), _mlp(n_obs + n_act, hidden, 1)

    def forward(self, obs, act):
        x = torch.cat([obs, act], dim=-1)
        return self.q1(x), self.q2(x)


class ReplayBuffer:
    """Fixed-size FIFO of ``(s, a, r, s')`` transitions, sampled uniformly with a numpy Generator."""

    def __init__(self, n_obs: int, n_act: int, capacity: int):
        self.obs = np.zeros((capacity, n_obs), np.float32)
        self.act = np.zeros((capacity, n_act), np.float32)
        self.rew = np.zeros((capacity, 1), np.float32)
        self.next_obs = np.zeros((capacity, n_obs), np.float32)
        self.size, self.pos, self.capacity = 0, 0, capacity

    def add(self, obs, act, rew, next_obs):
        self.obs[self.pos], self.act[self.pos], self.rew[self.pos], self.next_obs[self.pos] = obs, act, rew, next_obs
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator):
        idx = rng.integers(0, self.size, size=batch_size)
        return tuple(torch.as_tensor(a[idx]) for a in (self.obs, self.act, self.rew, self.next_obs))


class Agent:
    """Actor, twin critics (+ target) and value net; ``use_drm`` switches the three DrM mechanisms on."""

    def __init__(self, n_obs: int, n_act: int, action_scale: float, cfg: dict, use_drm: bool, seed: int):
        torch.manual_seed(seed)
        h = cfg["hidden"]
        self.cfg, self.use_drm, self.seed, self.action_scale = cfg, use_drm, seed, action_scale
        self.actor = _mlp(n_obs, h, n_act)
        self.critic = Critic(n_obs, n_act, h)
        self.critic_target = Critic(n_obs, n_act, h)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.value = _mlp(n_obs, h, 1)
        self.opts = {name: torch.optim.Adam(getattr(self, name).parameters(), lr=cfg["lr"])
                     for name in ("actor", "critic", "value")}
        self.exploration = dormant.AwakenExploration(cfg["beta_hat"], cfg["sigma_temp"], cfg["warmup_steps"],
                                                 cfg["std_start"], cfg["std_end"], cfg["std_duration"])
        self.beta = 1.0 if use_drm else 0.0  # DrM starts "fully dormant" until the first measurement

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.actor(obs))

    def sigma(self, step: int) -> float:
        if self.use_drm:
            return self.exploration.std(step, self.beta)
        c = self.cfg
        return dormant.linear_schedule(c["std_start"], c["std_end"], c["std_duration"], step)

    def lam(self) -> float:
        c = self.cfg
        return dormant.exploitation_weight(self.beta, c["lambda_hat"], c["beta_hat"], c["lambda_temp"]) \
            if self.use_drm else 0.0

    def act(self, obs: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        with torch.no_grad():
            mu = self.policy(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        noisy = mu + self.sigma(step) * rng.standard_normal(mu.shape)
        return np.clip(noisy, -1.0, 1.0).astype(np.float32)

    def _noisy_policy(self, obs: torch.Tensor, step: int, gen: torch.Generator) -> torch.Tensor:
        mu = self.policy(obs)
        clip = self.cfg["std_clip"]
        noise = (self.sigma(step) * torch.randn(mu.shape, generator=gen)).clamp(-clip, clip)
        return (mu + noise).clamp(-1.0, 1.0)

    def update(self, batch, step: int, gen: torch.Generator) -> None:
        obs, act, rew, next_obs = batch
        c = self.cfg
        with torch.no_grad():
            v_explore = torch.min(*self.critic_target(next_obs, self._noisy_policy(next_obs, step, gen)))
            lam = self.lam()
            v_next = dormant.blended_target_value(self.value(next_obs), v_explore, lam) if lam > 0 else v_explore
            target = rew + c["gamma"] * v_next
        q1, q2 = self.critic(obs, act)
        self._step("critic", F.mse_loss(q1, target) + F.mse_loss(q2, target))
        if self.use_drm:
            with torch.no_grad():
                q_min = torch.min(*self.critic(obs, act))
            self._step("value", dormant.expectile_loss(self.value(obs), q_min, c["expectile"]))
        a = self._noisy_policy(obs, step, gen)
        self._step("actor", -torch.min(*self.critic(obs, a)).mean())
        with torch.no_grad():
            for p, p_t in zip(self.critic.parameters(), self.critic_target.parameters()):
                p_t.lerp_(p, c["polyak"])

    def _step(self, name: str, loss: torch.Tensor) -> None:
        opt = self.opts[name]
        opt.zero_grad()
        loss.backward()
        opt.step()

    def measure_dormancy(self, obs: torch.Tensor, step: int) -> float:
        kinds = DORMANT_ON[self.cfg["dormant_on"]]
        self.beta = dormant.dormant_ratio(self.actor, obs, self.cfg["tau_dormant"], kinds=kinds).ratio
        self.exploration.update(step, self.beta)
        return self.beta

    def perturb(self, step: int) -> float:
        c = self.cfg
        alpha = dormant.perturb_factor(self.beta, c["perturb_rate"], c["alpha_min"], c["alpha_max"])
        for i, name in enumerate(("actor", "critic", "critic_target", "value")):
            dormant.perturb(getattr(self, name), alpha, seed=self.seed * 7919 + step + i, optimizer=self.opts.get(name))
        return alpha


def run_agent(cfg: dict, variant: str, seed: int) -> dict:
    """Train one agent; log ``beta``, ``sigma``, ``lambda`` every ``dormant_every`` steps, perturbations, returns."""
    import gymnasium as gym

    if variant not in VARIANTS:
        raise ValueError(f"unknown DrM agent variant {variant!r}; expected one of {VARIANTS}")
    env = gym.make(cfg["env"])
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"{cfg['env']}: the toy DrM agent needs a continuous (Box) action space")
    n_obs, n_act = env.observation_space.shape[0], env.action_space.shape[0]
    scale = float(env.action_space.high[0])
    agent = Agent(n_obs, n_act, scale, cfg, variant == "drm", seed)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    buffer = ReplayBuffer(n_obs, n_act, cfg["steps"])
    obs, _ = env.reset(seed=seed)
    log, perturbations, returns, ep_return = [], [], [], 0.0
    for step in tqdm(range(cfg["steps"]), desc=f"drm agent ({variant}, seed {seed})", leave=False):
        if step < cfg["warmup_steps"]:
            action = rng.uniform(-1.0, 1.0, n_act).astype(np.float32)
        else:
            action = agent.act(obs, step, rng)
        next_obs, reward, terminated, truncated, _ = env.step(action * scale)
        buffer.add(obs, action, reward, next_obs)
        ep_return += float(reward)
        obs = next_obs
        if terminated or truncated:
            returns.append({"step": step, "return": ep_return})
            obs, _ = env.reset()
            ep_return = 0.0
        if step < cfg["warmup_steps"]:
            continue
        agent.update(buffer.sample(cfg["batch_size"], rng), step, gen)
        if step % cfg["dormant_every"] == 0:
            beta = agent.measure_dormancy(buffer.sample(cfg["batch_size"], rng)[0], step)
            log.append({"step": step, "beta": beta, "sigma": agent.sigma(step), "lambda": agent.lam(),
                        "awake": agent.use_drm and agent.exploration.awake_step is not None})
        if agent.use_drm and step % cfg["perturb_every"] == 0:
            perturbations.append({"step": step, "beta": agent.beta, "alpha": agent.perturb(step)})
    env.close()
    return {"variant": variant, "seed": seed, "log": log, "perturbations": perturbations, "returns": returns,
            "awake_step": agent.exploration.awake_step if agent.use_drm else None}


def _plot(runs: list[dict], out_dir: pathlib.Path) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for r in runs:
        steps = [e["step"] for e in r["log"]]
        label = f"{r['variant']} s{r['seed']}"
        axes[0].plot(steps, [e["beta"] for e in r["log"]], label=label)
        axes[1].plot(steps, [e["sigma"] for e in r["log"]], label=label)
        axes[2].plot(steps, [e["lambda"] for e in r["log"]], label=label)
        axes[3].plot([e["step"] for e in r["returns"]], [e["return"] for e in r["returns"]], ".-", label=label)
        for p in r["perturbations"]:
            axes[0].axvline(p["step"], color="grey", lw=0.6, ls=":")
            axes[0].annotate(f"a={p['alpha']:.2f}", (p["step"], 0.95), fontsize=7, rotation=90,
                             xycoords=("data", "axes fraction"), va="top")
    titles = ("actor dormant ratio beta (dotted: perturbations)", "exploration std sigma",
              "exploitation weight lambda", "episode return")
    for ax, title in zip(axes, titles):
        ax.set(title=title, xlabel="env step")
        ax.legend(fontsize=7)
    save_figure(fig, out_dir / "drm_agent.png")
    return "drm_agent.png"


def run_from_config(config: dict, out_dir: pathlib.Path) -> dict:
    """Run every variant for every seed; write ``drm_agent.png``; return the logs as a JSON-able report."""
    cfg = check_config(config, DEFAULTS, "drm config")
    unknown = sorted(set(cfg["variants"]) - set(VARIANTS))
    if unknown or not cfg["variants"]:
        raise ValueError(f"drm config: variants must be a non-empty subset of {list(VARIANTS)}, got {cfg['variants']}")
    if cfg["dormant_on"] not in DORMANT_ON:
        raise ValueError(f"drm config: dormant_on must be one of {sorted(DORMANT_ON)}, got {cfg['dormant_on']!r}")
    for key in ("steps", "warmup_steps", "dormant_every", "perturb_every", "batch_size", "hidden"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"drm config: {key} must be a positive int, got {cfg[key]!r}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [run_agent(cfg, v, s) for s in seeds_of(cfg) for v in cfg["variants"]]
    return {"method": "drm", "config": cfg, "runs": runs, "plots": [_plot(runs, out_dir)]}
