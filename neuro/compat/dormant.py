"""DrM (Xu et al., ICLR 2024) components: dormant ratio, dormant-ratio-guided perturbation, exploration, exploitation.

**Dormant ratio** (Sokar et al. 2023). For unit ``i`` of layer ``l`` with output
``h_i^l(x)``, its score is ``s_i = E_x|h_i(x)| / ((1/H_l) sum_k E_x|h_k(x)|)``;
the unit is ``tau``-dormant when ``s_i <= tau`` and ``beta_tau`` is the number
of dormant units over the number of units of all recorded layers. Activity is
recorded with forward hooks on ``nn.Linear`` outputs (as DrM does), ``Conv``
channels, and spiking layers (:class:`neurons.lif_torch.LIFCell`), whose
``|h|`` is the spike train, so ``E|h|`` is the firing rate: a silent neuron has
``s = 0`` and is dormant for every ``tau >= 0``. (DrM's code compares with a
strict ``<``; this module uses ``<=`` as the paper's definition.)

**Perturbation.** ``theta <- alpha theta + (1 - alpha) phi`` with ``phi`` a fresh
initialisation, on the parameters of the chosen layers; optimiser state is
cleared. ``alpha(beta) = clip(1 - k beta, alpha_min, alpha_max)`` (k = 2, alpha_min = 0.2).

**Awaken exploration.** ``sigma(beta) = 1 / (1 + exp(-T (beta - beta_hat)))``
(T = 10, beta_hat = 0.2). Once ``beta < beta_hat`` after the warm-up, the agent is
awake at ``t_awake`` and ``sigma = max(sigma(beta), linear(sigma_0 -> sigma_1 over D)(t - t_awake))``.

**Exploitation.** ``lambda(beta) = lambda_hat / (1 + exp(T' (beta - beta_hat)))``
(T' = 50, lambda_hat = 0.6); the critic target is
``V = lambda V_psi(s') + (1 - lambda) min Q'(s', a')``, with ``V_psi`` fitted by
expectile regression (tau = 0.9) on ``min(Q1, Q2)``.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn

from neurons.lif_torch import LIFCell

RECORDED = (nn.Linear, nn.Conv1d, nn.Conv2d, LIFCell)


# --------------------------------------------------------------------------- dormant ratio

def dormant_scores(mean_abs: torch.Tensor) -> torch.Tensor:
    """``s_i = a_i / mean_k a_k`` for a layer's mean absolute activity ``a``; all zeros when the layer is silent."""
    mean_abs = torch.as_tensor(mean_abs, dtype=torch.float64)
    if mean_abs.dim() != 1 or mean_abs.numel() == 0:
        raise ValueError(f"dormant scores need a non-empty 1-D activity vector, got shape {tuple(mean_abs.shape)}")
    if (mean_abs < 0).any():
        raise ValueError("mean absolute activity cannot be negative")
    avg = mean_abs.mean()
    return mean_abs / avg if avg > 0 else torch.zeros_like(mean_abs)


def dormant_units(mean_abs: torch.Tensor, tau: float) -> torch.Tensor:
    """Boolean mask of ``tau``-dormant units: ``s_i <= tau``."""
    if tau < 0:
        raise ValueError(f"dormant threshold tau must be >= 0, got {tau}")
    return dormant_scores(mean_abs) <= tau


def _unit_dim(module: nn.Module) -> int:
    return 1 if isinstance(module, (nn.Conv1d, nn.Conv2d)) else -1


class ActivityRecorder:
    """Forward hooks accumulating each layer's per-unit ``sum |h|`` and sample count.

    Use as a context manager; every forward call (or every time step of a
    spiking layer) inside it adds to the running means. ``LIFCell`` outputs
    ``(spikes, state)``; the spikes are recorded.
    """

    def __init__(self, layers: dict[str, nn.Module]):
        if not layers:
            raise ValueError("ActivityRecorder needs at least one layer")
        self.layers = layers
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self._handles = []

    def _hook(self, name: str, module: nn.Module):
        dim = _unit_dim(module)

        def hook(_mod, _inp, out):
            h = (out[0] if isinstance(out, tuple) else out).detach().abs()
            h = h.movedim(dim, -1).reshape(-1, h.shape[dim])
            self.sums[name] = self.sums.get(name, 0) + h.sum(0).double()
            self.counts[name] += h.shape[0]

        return hook

    def __enter__(self) -> ActivityRecorder:
        self._handles = [m.register_forward_hook(self._hook(n, m)) for n, m in self.layers.items()]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def mean_abs(self) -> dict[str, torch.Tensor]:
        """``E|h_i|`` per layer (for spiking layers: spikes per neuron per step, the firing rate)."""
        missing = [n for n in self.layers if n not in self.sums]
        if missing:
            raise ValueError(f"no activity recorded for layer(s) {missing}: did the forward pass reach them?")
        return {n: self.sums[n] / self.counts[n] for n in self.layers}


@dataclass
class DormantReport:
    """``ratio`` = beta over all layers; per-layer dormant counts and sizes."""

    ratio: float
    dormant: dict[str, int] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)

    def layer_ratio(self, name: str) -> float:
        return self.dormant[name] / self.size[name]


def dormant_ratio_of(activity: dict[str, torch.Tensor], tau: float) -> DormantReport:
    """``beta_tau`` from per-layer mean absolute activities (``{layer: [units]}``)."""
    dormant = {n: int(dormant_units(a, tau).sum()) for n, a in activity.items()}
    size = {n: int(torch.as_tensor(a).numel()) for n, a in activity.items()}
    return DormantReport(sum(dormant.values()) / sum(size.values()), dormant, size)


def recorded_layers(model: nn.Module, kinds=RECORDED, names=None) -> dict[str, nn.Module]:
    """The named sub-modules whose activity is scored: ``names`` if given, else every module of ``kinds``."""
    if names is not None:
        return {n: model.get_submodule(n) for n in names}
    return {n: m for n, m in model.named_modules() if isinstance(m, tuple(kinds))}


@torch.no_grad()
def dormant_ratio(model: nn.Module, inputs, tau: float = 0.025, kinds=RECORDED, names=None,
                  forward=None) -> DormantReport:
    """``beta_tau`` of ``model`` on ``inputs`` via forward hooks.

    ``forward(model, inputs)`` runs the model (default ``model(inputs)``), so a
    spiking network can be run over its time steps; layers are chosen by
    ``names`` or by module ``kinds`` (default Linear, Conv and ``LIFCell``).
    """
    layers = recorded_layers(model, kinds, names)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no layer of kinds {[k.__name__ for k in kinds]} to score")
    with ActivityRecorder(layers) as rec:
        (forward or (lambda m, x: m(x)))(model, inputs)
    return dormant_ratio_of(rec.mean_abs(), tau)


# --------------------------------------------------------------------------- schedules

def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _check_beta(beta: float) -> float:
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"dormant ratio beta must be in [0, 1], got {beta}")
    return float(beta)


def perturb_factor(beta: float, rate: float = 2.0, alpha_min: float = 0.2, alpha_max: float = 0.9) -> float:
    """``alpha(beta) = clip(1 - rate * beta, alpha_min, alpha_max)``: the weight kept at a perturbation."""
    if not 0.0 <= alpha_min <= alpha_max <= 1.0:
        raise ValueError(f"need 0 <= alpha_min <= alpha_max <= 1, got {alpha_min}, {alpha_max}")
    return min(max(alpha_min, 1.0 - rate * _check_beta(beta)), alpha_max)


def exploration_std(beta: float, beta_hat: float = 0.2, temp: float = 10.0) -> float:
    """``sigma(beta) = 1 / (1 + exp(-temp (beta - beta_hat)))``: more dormant units, more exploration noise."""
    return _sigmoid(temp * (_check_beta(beta) - beta_hat))


def exploitation_weight(beta: float, lambda_hat: float = 0.6, beta_hat: float = 0.2, temp: float = 50.0) -> float:
    """``lambda(beta) = lambda_hat / (1 + exp(temp (beta - beta_hat)))``: fewer dormant units, more exploitation."""
    return lambda_hat * _sigmoid(-temp * (_check_beta(beta) - beta_hat))


def linear_schedule(start: float, end: float, duration: float, step: float) -> float:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then constant."""
    if duration <= 0:
        raise ValueError(f"schedule duration must be > 0, got {duration}")
    mix = min(max(step / duration, 0.0), 1.0)
    return (1.0 - mix) * start + mix * end


@dataclass
class AwakenExploration:
    """Exploration noise: ``sigma(beta)`` until awake, then ``max(sigma(beta), linear(t - t_awake))``.

    The agent wakes at the first :meth:`update` after ``warmup_steps`` with ``beta < beta_hat``.
    """

    beta_hat: float = 0.2
    temp: float = 10.0
    warmup_steps: int = 2000
    start: float = 1.0
    end: float = 0.1
    duration: float = 40_000
    awake_step: int | None = None

    def update(self, step: int, beta: float) -> None:
        if self.awake_step is None and step > self.warmup_steps and _check_beta(beta) < self.beta_hat:
            self.awake_step = step

    def std(self, step: int, beta: float) -> float:
        sigma = exploration_std(beta, self.beta_hat, self.temp)
        if self.awake_step is None:
            return sigma
        return max(sigma, linear_schedule(self.start, self.end, self.duration, step - self.awake_step))


def blended_target_value(v_exploit: torch.Tensor, v_explore: torch.Tensor, lam: float) -> torch.Tensor:
    """``V = lambda V_psi(s') + (1 - lambda) min Q'(s', a')``."""
    return lam * v_exploit + (1.0 - lam) * v_explore


def expectile_loss(v: torch.Tensor, q: torch.Tensor, expectile: float = 0.9) -> torch.Tensor:
    """``mean(|expectile - 1[v > q]| (v - q)^2)``: ``V`` tends to the upper ``expectile`` of ``Q``."""
    if not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile must be in (0, 1), got {expectile}")
    err = v - q
    weight = torch.where(err > 0, 1.0 - expectile, expectile)
    return (weight * err.pow(2)).mean()


# --------------------------------------------------------------------------- perturbation

@torch.no_grad()
def perturb(model: nn.Module, alpha: float, seed: int, optimizer: torch.optim.Optimizer | None = None,
            kinds=(nn.Linear,)) -> None:
    """In place ``theta <- alpha theta + (1 - alpha) phi`` on layers of ``kinds``; ``phi`` is a fresh seeded init.

    ``phi`` comes from each layer's own ``reset_parameters`` on a copy; the
    optimiser's state (momenta) is cleared, as DrM does.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"perturb factor alpha must be in [0, 1], got {alpha}")
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if isinstance(module, tuple(kinds)):
                module.reset_parameters()
    for (_, module), (_, new) in zip(model.named_modules(), fresh.named_modules()):
        if isinstance(module, tuple(kinds)):
            for p, p_new in zip(module.parameters(recurse=False), new.parameters(recurse=False)):
                p.mul_(alpha).add_(p_new, alpha=1.0 - alpha)
    if optimizer is not None:
        optimizer.state = defaultdict(dict)
