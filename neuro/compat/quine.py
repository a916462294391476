"""Neural-network quine (Chang & Lipson 2018): a network that predicts its own weights.

Let ``W in R^N`` be all trainable parameters (weights and biases, in
``model.parameters()`` order) and ``P in R^{N x d}`` a fixed random projection
(a buffer, not part of ``W``; row ``c`` is ``P e_c``). The network ``f_W`` maps the
embedding of coordinate ``c`` to a scalar, ``w_hat_c = f_W(P e_c)``:

    L_SR(W) = sum_c (W_c - f_W(P e_c))^2          self-replication loss
    F(W)_c  = f_W(P e_c)                          regeneration: W <- F(W)

``W = 0`` is a perfect quine (zero weights and biases output 0) and scaling ``W`` changes
the error, so the loss is always reported with ``L_SR / ||W||^2`` and ``||W||^2``.
Optimisation minimises ``L_SR`` by Adam with the target ``W`` detached (default,
as in the reference runs) or not. Regeneration is exact (``W`` becomes ``F(W_old)``)
but guarded: it is refused (``W`` unchanged) when ``||F(W)||^2`` leaves
``[ref / guard, ref * guard]`` with ``ref = ||W_init||^2``, or is not finite;
unguarded iteration diverges or collapses to the trivial quine.

Spiking variant (:class:`SpikingQuine`): ``f_W``'s hidden layers are LIF populations
driven for ``T`` steps by the constant current ``W_l z + b_l``; each passes on its firing
rate, and the weight head reads the last rate out linearly (surrogate gradients through
the spikes). ``W``, ``P``, ``L_SR`` and regeneration are unchanged.

Auxiliary variant: the input is ``[P e_c ; x]`` with ``x`` zeroed for weight
queries and ``P e_c`` zeroed for image queries; a shared trunk feeds a weight head
(1 output) and a class head. Loss ``sr_weight * L_SR / N + ce_weight * CE``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from tqdm.auto import tqdm

from neuro.compat.common import check_config, load_digits_split, mean_std, minibatches, seeds_of
from neurons.lif_torch import LIFCell

ACTIVATIONS = {"tanh": torch.tanh, "relu": F.relu, "linear": lambda x: x}
MODES = ("optimise", "regenerate", "alternate")


class Quine(nn.Module):
    """``f_W``: ``[P e_c ; x]`` -> trunk (``Linear`` + activation per hidden layer) -> weight head [, class head]."""

    def __init__(self, coord_dim: int = 32, hidden=(32,), activation: str = "tanh", n_inputs: int = 0,
                 n_classes: int = 0, seed: int = 0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
        if coord_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"coord_dim and hidden sizes must be >= 1, got {coord_dim}, {list(hidden)}")
        self.coord_dim, self.n_inputs, self.activation = coord_dim, n_inputs, activation
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sizes = [coord_dim + n_inputs, *hidden]
            self.trunk = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            self.weight_head = nn.Linear(sizes[-1], 1)
            self.class_head = nn.Linear(sizes[-1], n_classes) if n_classes else None
        n = self.n_params
        self.register_buffer("projection", torch.randn(n, coord_dim, generator=gen))
        self.register_buffer("reference_norm_sq", self.weights().detach().pow(2).sum())

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def weights(self) -> torch.Tensor:
        """``W`` as one vector (differentiable)."""
        return parameters_to_vector(self.parameters())

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        for layer in self.trunk:
            z = act(layer(z))
        return z

    def predict_weights(self) -> torch.Tensor:
        """``F(W) = [f_W(P e_c)]_c``, shape ``[N]``."""
        z = self.projection
        if self.n_inputs:
            z = torch.cat([z, z.new_zeros(len(z), self.n_inputs)], 1)
        return self.weight_head(self._features(z)).squeeze(1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of images ``x[batch, n_inputs]`` (auxiliary variant)."""
        if self.class_head is None:
            raise ValueError("this quine has no class head (n_classes=0)")
        z = torch.cat([x.new_zeros(len(x), self.coord_dim), x], 1)
        return self.class_head(self._features(z))

    def sr_loss(self, detach_target: bool = True) -> torch.Tensor:
        """``L_SR = sum_c (W_c - f_W(P e_c))^2``."""
        w = self.weights()
        return (w.detach() if detach_target else w).sub(self.predict_weights()).pow(2).sum()

    @torch.no_grad()
    def stats(self) -> dict:
        """``L_SR``, ``||W||^2`` and the normalised loss ``L_SR / ||W||^2``."""
        loss, norm = float(self.sr_loss()), float(self.weights().pow(2).sum())
        return {"sr_loss": loss, "norm_sq": norm, "normalised": loss / norm if norm > 0 else float("inf")}

    @torch.no_grad()
    def regenerate(self, guard: float | None = 10.0) -> bool:
        """``W <- F(W)`` exactly, unless the guard refuses (module doc); returns whether it was applied."""
        new = self.predict_weights()
        if guard is not None:
            norm, ref = float(new.pow(2).sum()), float(self.reference_norm_sq)
            if not (np.isfinite(norm) and ref / guard <= norm <= ref * guard):
                return False
        vector_to_parameters(new, self.parameters())
        return True


class SpikingQuine(Quine):
    """A quine whose ``f_W`` is spiking: each trunk ``Linear`` drives a LIF population for ``steps`` steps.

    The coordinate embedding ``P e_c`` is a constant input current; hidden layer ``l`` runs
    ``s_l[t] = LIF_l(W_l z_{l-1} + b_l)`` for ``t = 1..T`` (:class:`neurons.lif_torch.LIFCell`,
    soft reset, ``v > v_th`` with the fast-sigmoid surrogate gradient) and passes on its firing
    rate ``z_l = (1/T) sum_t s_l[t]``; the weight head reads the last rate out linearly,
    ``w_hat_c = w_out . z_L + b_out`` (= ``mean_t`` of a linear readout of the spikes).
    ``W``, ``P``, ``L_SR``, the guard and the exact regeneration are :class:`Quine`'s; the
    LIF parameters are fixed buffers, not part of ``W``.
    """

    def __init__(self, coord_dim: int = 32, hidden=(32,), steps: int = 16, seed: int = 0, dt: float = 1e-3,
                 tau_mem: float = 20e-3, v_th: float = 1.0):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        super().__init__(coord_dim, hidden, "linear", seed=seed)
        self.activation, self.steps = "lif", int(steps)
        self.cells = nn.ModuleList(LIFCell(int(h), dt, "soft", tau_mem=tau_mem, v_th=v_th) for h in hidden)

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        for layer, cell in zip(self.trunk, self.cells):
            current = layer(z)
            spikes, _ = cell.run(current.expand(self.steps, *current.shape))
            z = spikes.mean(0)
        return z


def train_quine(model: Quine, mode: str, steps: int, lr: float = 1e-3, regen_every: int = 500,
                guard: float | None = 10.0, detach_target: bool = True, log_every: int = 100,
                desc: str | None = None) -> dict:
    """``optimise`` (Adam on L_SR), ``regenerate`` (``steps`` regenerations) or ``alternate`` (both).

    ``alternate`` regenerates after every ``regen_every`` optimiser steps and resets
    Adam then (its moments belong to the old weights). Returns the logged stats.
    """
    if mode not in MODES:
        raise ValueError(f"unknown quine mode {mode!r}; expected one of {MODES}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history, applied = [{"step": 0, **model.stats()}], 0
    for step in tqdm(range(1, steps + 1), desc=desc, disable=desc is None, leave=False):
        if mode != "regenerate":
            optimizer.zero_grad()
            model.sr_loss(detach_target).backward()
            optimizer.step()
        if mode == "regenerate" or step % regen_every == 0:
            if mode != "optimise" and model.regenerate(guard):
                applied += 1
                optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        if step % log_every == 0 or step == steps:
            history.append({"step": step, **model.stats()})
    return {"history": history, "regenerations_applied": applied, "initial": history[0], "final": history[-1]}


def train_auxiliary(model: Quine, split, sr_weight: float, ce_weight: float, epochs: int, batch_size: int,
                    lr: float, seed: int, desc: str | None = None) -> dict:
    """Auxiliary quine on digits: ``sr_weight * L_SR / N + ce_weight * CE`` per mini-batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    initial = model.stats()
    for _ in tqdm(range(epochs), desc=desc, disable=desc is None, leave=False):
        for idx in minibatches(len(split.x_train), batch_size, generator):
            optimizer.zero_grad()
            loss = ce_weight * F.cross_entropy(model.classify(split.x_train[idx]), split.y_train[idx])
            if sr_weight:
                loss = loss + sr_weight * model.sr_loss() / model.n_params
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        acc = float((model.classify(split.x_test).argmax(1) == split.y_test).float().mean())
    return {"test_accuracy": acc, "initial": initial, "final": model.stats()}


DEFAULTS = {
    "seeds": [0, 1, 2],
    "coord_dim": 32,
    "hidden": [32],
    "activations": ["tanh", "relu", "linear"],
    "modes": list(MODES),
    "steps": 3000,
    "regen_steps": 50,
    "regen_every": 500,
    "lr": 1e-3,
    "guard": 10.0,
    "detach_target": True,
    "auxiliary": {
        "enabled": True,
        "hidden": [64],
        "activation": "relu",
        "epochs": 40,
        "batch_size": 64,
        "lr": 1e-3,
        "ce_weights": [0.01, 0.1, 1.0, 10.0],
    },
    "spiking": {
        "enabled": False,
        "hidden": [32],
        "time_steps": 16,
        "modes": list(MODES),
        "steps": 1000,
        "regen_every": 250,
        "lr": 3e-3,
    },
}
AUX_KEYS = DEFAULTS["auxiliary"]
SPIKING_KEYS = DEFAULTS["spiking"]


def run_from_config(config: dict, out_dir: Path) -> dict:
    """Vanilla quines (activations x modes x seeds), spiking quines, the auxiliary digits table; plots."""
    cfg = check_config(config, DEFAULTS, "quine")
    aux = check_config(cfg["auxiliary"], AUX_KEYS, "quine.auxiliary")
    spiking = check_config(cfg["spiking"], SPIKING_KEYS, "quine.spiking")
    seeds = seeds_of(cfg)
    bad = sorted(set(cfg["modes"]) - set(MODES))
    if bad:
        raise ValueError(f"quine: unknown mode(s) {bad}; expected some of {list(MODES)}")
    runs = []
    for act in cfg["activations"]:
        runs += _mode_runs(lambda seed, act=act: Quine(cfg["coord_dim"], cfg["hidden"], act, seed=seed), cfg, seeds)
    if spiking["enabled"]:
        bad = sorted(set(spiking["modes"]) - set(MODES))
        if bad:
            raise ValueError(f"quine.spiking: unknown mode(s) {bad}; expected some of {list(MODES)}")
        runs += _mode_runs(lambda seed: SpikingQuine(cfg["coord_dim"], spiking["hidden"], spiking["time_steps"],
                                                     seed=seed), {**cfg, **spiking}, seeds)
    summary = {}
    for run in runs:
        key = f"{run['activation']}/{run['mode']}"
        summary.setdefault(key, {"normalised_initial": [], "normalised_final": [], "norm_sq_final": []})
        summary[key]["normalised_initial"].append(run["initial"]["normalised"])
        summary[key]["normalised_final"].append(run["final"]["normalised"])
        summary[key]["norm_sq_final"].append(run["final"]["norm_sq"])
    summary = {k: {f: mean_std(v) for f, v in fields.items()} for k, fields in summary.items()}
    report = {"config": cfg, "runs": runs, "summary": summary}
    if aux["enabled"]:
        report["auxiliary"] = _auxiliary_table(cfg, aux, seeds)
    _plot(report, Path(out_dir))
    return report


def _mode_runs(build, cfg: dict, seeds) -> list[dict]:
    """Every (mode, seed) of ``cfg["modes"]`` on ``build(seed)``; an optimised quine is then regenerated once."""
    runs = []
    for mode in cfg["modes"]:
        for seed in seeds:
            model = build(seed)
            steps = cfg["regen_steps"] if mode == "regenerate" else cfg["steps"]
            result = train_quine(model, mode, steps, cfg["lr"], cfg["regen_every"], cfg["guard"],
                                 cfg["detach_target"], desc=f"quine {model.activation} {mode} seed {seed}")
            if mode == "optimise":
                result["regenerated"] = {"applied": model.regenerate(cfg["guard"]), **model.stats()}
            runs.append({"activation": model.activation, "mode": mode, "seed": seed, "n_params": model.n_params,
                         **result})
    return runs


def _auxiliary_table(cfg: dict, aux: dict, seeds) -> list[dict]:
    """Rows: classification only, ``L_SR/N + lambda CE`` for each lambda, replication only."""
    split = load_digits_split(seed=0)
    settings = [("classify only", 0.0, 1.0)] + [(f"lambda={w:g}", 1.0, float(w)) for w in aux["ce_weights"]]
    settings.append(("replicate only", 1.0, 0.0))
    rows = []
    for label, sr_w, ce_w in settings:
        results = []
        for seed in seeds:
            model = Quine(cfg["coord_dim"], aux["hidden"], aux["activation"], n_inputs=split.n_features,
                          n_classes=10, seed=seed)
            results.append(train_auxiliary(model, split, sr_w, ce_w, aux["epochs"], aux["batch_size"], aux["lr"],
                                           seed, desc=f"aux {label} seed {seed}"))
        rows.append({"setting": label, "sr_weight": sr_w, "ce_weight": ce_w,
                     "test_accuracy": mean_std([r["test_accuracy"] for r in results]),
                     "normalised": mean_std([r["final"]["normalised"] for r in results]),
                     "norm_sq": mean_std([r["final"]["norm_sq"] for r in results])})
    return rows


def _plot(report: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    fig, axes = plt.subplots(1, 3 if "auxiliary" in report else 2, figsize=(15, 4))
    for run in report["runs"]:
        if run["seed"] != report["runs"][0]["seed"] or run["mode"] == "regenerate":
            continue
        steps = [h["step"] for h in run["history"]]
        label = f"{run['activation']} {run['mode']}"
        axes[0].plot(steps, [h["normalised"] for h in run["history"]], label=label)
        axes[1].plot(steps, [h["norm_sq"] for h in run["history"]], label=label)
    axes[0].set(yscale="log", xlabel="step", ylabel="L_SR / ||W||^2", title="normalised self-replication loss")
    axes[1].set(yscale="log", xlabel="step", ylabel="||W||^2", title="weight norm")
    axes[0].legend(fontsize=7)
    if "auxiliary" in report:
        rows = report["auxiliary"]
        x = [100 * r["test_accuracy"]["mean"] for r in rows]
        y = [r["normalised"]["mean"] for r in rows]
        axes[2].scatter(x, y)
        for xi, yi, r in zip(x, y, rows):
            axes[2].annotate(r["setting"], (xi, yi), fontsize=7)
        axes[2].set(xlabel="test accuracy (%)", ylabel="L_SR / ||W||^2", yscale="log",
                    title="auxiliary quine: replication vs task")
    save_figure(fig, out_dir / "quine.png")
