"""The torch twin of :func:`neurons.lif.lif_update`, differentiable through surrogate gradients.

Same equations, same coefficients (:func:`neurons.lif.discretize`), same
order charge -> fire -> reset; a test holds the two equal on random inputs.
Gradients flow through the reset (not detached, as in Guo et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from neurons import lif
from neurons.surrogate import fast_sigmoid, mpr_spike


class LIFState(NamedTuple):
    """State of a LIF population: membrane, two synaptic currents, refractory count."""

    v: torch.Tensor
    i_exc: torch.Tensor
    i_inh: torch.Tensor
    refr: torch.Tensor


class LIFCoef(NamedTuple):
    """Discretised per-neuron coefficients (rows of :func:`neurons.lif.discretize`)."""

    a_mem: torch.Tensor
    a_syn: torch.Tensor
    a_inh: torch.Tensor
    v_th: torch.Tensor
    v_reset: torch.Tensor
    v_rest: torch.Tensor
    bias: torch.Tensor
    n_ref: torch.Tensor
    bias_syn: torch.Tensor | float = 0.0

    @classmethod
    def from_matrix(cls, coef: np.ndarray, dtype=torch.float32, device=None) -> LIFCoef:
        rows = torch.as_tensor(np.asarray(coef), dtype=dtype, device=device)
        return cls(*(rows[lif.COEFFICIENTS.index(name)] for name in cls._fields))


def initial_state(coef: LIFCoef, batch_shape=()) -> LIFState:
    """Membrane at rest, no current, not refractory."""
    v = coef.v_rest.expand(*batch_shape, *coef.v_rest.shape).clone()
    zero = torch.zeros_like(v)
    return LIFState(v, zero, zero.clone(), zero.clone())


def lif_step(x_exc: torch.Tensor, state: LIFState, coef: LIFCoef, reset: str = "hard",
             spike_fn: Callable | None = None, use_mpr: bool = False,
             x_inh: torch.Tensor | None = None, decayed: Callable | None = None) -> tuple[torch.Tensor, LIFState]:
    """One step of the CUBA LIF update (equations in :mod:`neurons.lif`).

    ``spike_fn(v - v_th)`` gives spikes with a surrogate gradient (default
    :func:`neurons.surrogate.fast_sigmoid`); ``use_mpr=True`` uses the MPR
    gradient instead (forward spikes are identical). ``decayed`` maps each decayed
    state term (``a_syn i``, ``a_mem (v - v_rest)``) before the input is added:
    quantization-aware training truncates it as Loihi does (:mod:`neuro.training.qat`).
    """
    if reset not in lif.RESET_MODES:
        raise ValueError(f"unknown reset mode {reset!r}; expected one of {lif.RESET_MODES}")
    keep = decayed or _identity
    i_exc = keep(coef.a_syn * state.i_exc) + x_exc + coef.bias_syn
    i_inh = keep(coef.a_inh * state.i_inh) + (0.0 if x_inh is None else x_inh)
    active = state.refr <= 0
    v_charged = coef.v_rest + keep(coef.a_mem * (state.v - coef.v_rest)) + i_exc + i_inh + coef.bias
    v = torch.where(active, v_charged, state.v)
    x = v - coef.v_th
    if use_mpr:
        s = mpr_spike(x, coef.v_th - coef.v_reset)
    else:
        s = (spike_fn or DEFAULT_SPIKE)(x)
    s = s * active
    if reset == "hard":
        v = v - s * (v - coef.v_reset)
    elif reset == "soft":
        v = v - s * (coef.v_th - coef.v_reset)
    fired = s.detach() > 0
    refr = torch.where(active, torch.where(fired, coef.n_ref.expand_as(v), state.refr), state.refr - 1)
    return s, LIFState(v, i_exc, i_inh, refr)


#: The spike function where none is given: the fast sigmoid surrogate, slope 25.
DEFAULT_SPIKE = fast_sigmoid()


def truncate_to_grid(x: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """``trunc(x units) / units`` forward, gradient 1: Loihi's truncation of a decayed state, straight-through."""
    return x + (torch.trunc(x * units) / units - x).detach()


def _identity(x):
    return x


class LIFCell(nn.Module):
    """A population of CUBA LIF neurons as an ``nn.Module`` (thin shell around :func:`lif_step`).

    Parameters are per-neuron arrays (scalars broadcast); ``learn_tau=True``
    makes ``tau_mem`` and ``tau_syn`` trainable (kept positive through a log
    parametrisation; a ``tau`` of 0 or inf stays fixed). Call ``cell(x, state) -> (spikes, state)`` per step, or
    ``cell.run(x_seq)`` over a ``[T, batch, n]`` sequence.
    """

    def __init__(self, size: int, dt: float = 1e-3, reset: str = "soft", use_mpr: bool = False,
                 spike_fn: Callable | None = None, learn_tau: bool = False, **params):
        super().__init__()
        full = lif.LIF.fill(size, params, where="LIFCell: ")
        if reset not in lif.RESET_MODES:
            raise ValueError(f"unknown reset mode {reset!r}; expected one of {lif.RESET_MODES}")
        self.size, self.dt, self.reset, self.use_mpr, self.spike_fn = size, dt, reset, use_mpr, spike_fn
        coef = lif.discretize(full, dt, reset)
        fixed = ("v_th", "v_reset", "v_rest", "bias")
        for name in fixed:
            self.register_buffer(name, torch.tensor(full[name], dtype=torch.float32))
        # not in the state dict, so checkpoints written before it existed still load
        self.register_buffer("bias_syn", torch.tensor(full["bias_syn"], dtype=torch.float32), persistent=False)
        self.register_buffer("n_ref", torch.as_tensor(coef[lif.N_REF], dtype=torch.float32))
        self.register_buffer("a_inh", torch.as_tensor(coef[lif.A_INH], dtype=torch.float32))
        log_tau = {k: torch.log(torch.tensor(full[k], dtype=torch.float32)) for k in ("tau_mem", "tau_syn")}
        for name, value in log_tau.items():
            if learn_tau and bool(torch.isfinite(value).all()):  # tau = 0 or inf stays fixed (NaN gradient)
                self.register_parameter(f"log_{name}", nn.Parameter(value))
            else:
                self.register_buffer(f"log_{name}", value)

    def coefficients(self) -> LIFCoef:
        """``LIFCoef`` with ``a = exp(-dt / tau)``. The same object is returned while no parameter or buffer
        changes (identity and in-place version), unless a time constant is being learned (then ``a`` is
        recomputed, so its gradient reaches ``tau``): the compiled loops reuse what they prepared for it."""
        sources = (self.log_tau_mem, self.log_tau_syn, self.a_inh, self.v_th, self.v_reset, self.v_rest, self.bias,
                   self.n_ref, self.bias_syn)
        learning = torch.is_grad_enabled() and (self.log_tau_mem.requires_grad or self.log_tau_syn.requires_grad)
        key = (self.dt, tuple(t._version for t in sources))
        cached = self.__dict__.get("_coef_cache")
        if not learning and cached is not None and cached[1] == key and all(
                a is b for a, b in zip(cached[0], sources)):
            return cached[2]
        a_mem = torch.exp(-self.dt / torch.exp(self.log_tau_mem))
        a_syn = torch.exp(-self.dt / torch.exp(self.log_tau_syn))
        coef = LIFCoef(a_mem, a_syn, *sources[2:])
        if not learning:
            self.__dict__["_coef_cache"] = (sources, key, coef)
        return coef

    def forward(self, x: torch.Tensor, state: LIFState | None = None, coef: LIFCoef | None = None):
        coef = coef or self.coefficients()
        if state is None:
            state = initial_state(coef, x.shape[:-1])
        return lif_step(x, state, coef, self.reset, self.spike_fn, self.use_mpr)

    def run(self, x_seq: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        """Run over ``x_seq[T, ..., n]``; returns stacked spikes and the final state."""
        coef = self.coefficients()
        spikes = []
        for x in x_seq:
            s, state = self(x, state, coef)
            spikes.append(s)
        return torch.stack(spikes), state
