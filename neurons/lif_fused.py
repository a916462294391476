"""The LIF update over a whole sequence as one autograd function: compiled forward and backward loops.

Forward, for every neuron of every sample (independent, so parallel over ``batch x neurons``), the
update of :func:`neurons.lif_torch.lif_step` for ``t = 0..T-1``, operation for operation in the
same floating-point order (spikes are identical)::

    I[t] = q(a_syn I[t-1]) + X[t] + bias_syn          J[t] = q(a_inh J[t-1]) + Y[t]
    act  = refr[t-1] <= 0
    U[t] = act ? v_rest + q(a_mem (V[t-1] - v_rest)) + I[t] + J[t] + bias : V[t-1]
    S[t] = act * H(U[t] - v_th)
    V[t] = U[t] - S[t] (U[t] - v_reset)   (hard)  |  U[t] - S[t] (v_th - v_reset)  (soft)  |  U[t]  (none)

``q`` is the identity, or Loihi's truncation ``trunc(x m) / m`` in quantization-aware training
(straight-through: its gradient is 1). The backward pass is backpropagation through time in one
reverse loop. With adjoints ``gV = dL/dV[t]`` (from the future and from the outputs), ``g(x)`` the
surrogate derivative at ``x = U[t] - v_th`` and ``R`` the reset term of ``V[t]``::

    gS'  = dL/dS[t] - gV R                        (the gradient through the reset)
    gU   = gV dV/dU + act g(x) gS' + dL/dU[t]     dV/dU = 1 - S[t] (hard), 1 (soft, none)
    gC   = act gU                                 (into the charged membrane)
    gI   = a_syn gI_next + gC  -> dL/dX[t]        gJ likewise -> dL/dY[t]
    gV_prev = act ? a_mem gC : gU
    dL/da_mem += gC (V[t-1] - v_rest)             dL/da_syn += gI I[t-1]

The surrogate derivative is computed inside the loop for the project's own spike functions
(:func:`neurons.surrogate.fast_sigmoid`, MPR); for any other spike function (snntorch's, a user's)
it is taken from the function itself, once for the whole sequence, by autograd on the stored
``x`` — so every elementwise surrogate works, and its forward must be ``H(x) = [x > 0]`` (checked).
Runs on CPU tensors of float32 or float64 (Numba, parallel over samples and neurons, as many
threads as torch uses) and on CUDA tensors where Triton is installed (:mod:`neurons.lif_triton`, the
same loops as Triton kernels: **not yet run on a GPU**, tested in Triton's CPU interpreter only);
elsewhere :func:`lif_sequence` runs the reference step by step.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import NamedTuple

import numba
import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange

from neurons import lif
from neurons.lif_torch import DEFAULT_SPIKE, LIFCoef, LIFState, lif_step, truncate_to_grid

#: Neurons per block of the compiled loops (contiguous, so the inner loop vectorises).
BLOCK = 256
#: Fewer neuron-steps than this run on one thread (a parallel launch costs more than it saves).
PARALLEL_MIN = 1 << 16
#: Shorter sequences run the per-step reference by default: one step of it (about 0.3 ms forward and backward
#: for 32 x 128 neurons) costs about half the fused call's fixed overhead.
FUSED_MIN_STEPS = 3
#: How many prepared plans :func:`_plan` keeps (one per layer and dtype in use).
PLANS_KEPT = 64
_PLANS: dict = {}
_RESET_CODE = {"hard": lif.RESET_HARD, "soft": lif.RESET_SOFT, "none": lif.RESET_NONE}


@njit(cache=True, inline="always")
def _jobs(width, n, threads):
    """``(blocks, groups)``: the compiled loops' jobs are neuron blocks of ``BLOCK`` times groups of samples
    (a few groups per thread, so the coefficient rows of a block are copied once per group, not per sample)."""
    samples = width // n
    return (n + BLOCK - 1) // BLOCK, max(1, min(samples, 4 * threads))


@njit(cache=True, inline="always")
def _job(job, blocks, groups, width, n):
    """Job ``job``: neurons ``lo..hi-1`` of samples ``first..last-1``."""
    lo = (job % blocks) * BLOCK
    group, samples = job // blocks, width // n
    return lo, min(n, lo + BLOCK), group * samples // groups, (group + 1) * samples // groups


@njit(cache=True, inline="always")
def _rows(c, lo, hi):
    """Contiguous copies of the coefficient rows of neurons ``lo..hi-1`` (so the inner loops vectorise)."""
    return (c[lif.A_MEM, lo:hi].copy(), c[lif.A_SYN, lo:hi].copy(), c[lif.A_INH, lo:hi].copy(),
            c[lif.V_TH, lo:hi].copy(), c[lif.V_RESET, lo:hi].copy(), c[lif.V_REST, lo:hi].copy(),
            c[lif.BIAS, lo:hi].copy(), c[lif.BIAS_SYN, lo:hi].copy(), c[lif.N_REF, lo:hi].copy())


@njit(cache=True, inline="always")
def _after_reset(u, s, v_th, v_reset, reset):
    """The membrane after the reset of a step that charged to ``u`` and spiked ``s`` (both computed, one kept)."""
    hard, soft = u - s * (u - v_reset), u - s * (v_th - v_reset)
    return hard if reset == lif.RESET_HARD else (soft if reset == lif.RESET_SOFT else u)


@njit(cache=True, parallel=True, error_model="numpy")
def _forward(x, y, c, units, reset, v, i, j, r, spikes, membrane, current, active, threads):
    """The forward loop over ``x[T, E]``: the state ``v, i, j, r [E]`` is advanced in place; fills ``spikes``,
    ``membrane`` (U) and, when given, the current trace and the activity mask. ``y``, ``units``, ``current``
    and ``active`` may be ``None`` (each combination compiles once, without the branch)."""
    steps, width = x.shape
    n = c.shape[1]
    blocks, groups = _jobs(width, n, threads)
    zero, one = x.dtype.type(0), x.dtype.type(1)
    for job in prange(blocks * groups):
        lo, hi, first, last = _job(job, blocks, groups, width, n)
        a_mem, a_syn, a_inh, v_th, v_reset, v_rest, bias, bias_syn, n_ref = _rows(c, lo, hi)
        grid = units[lo:hi].copy() if units is not None else a_mem
        for sample in range(first, last):
            a = sample * n + lo
            b = a + hi - lo
            vb, ib, jb, rb = v[a:b].copy(), i[a:b].copy(), j[a:b].copy(), r[a:b].copy()
            for t in range(steps):
                xt, st, mt = x[t, a:b], spikes[t, a:b], membrane[t, a:b]
                for k in range(hi - lo):
                    di, dj, dv = a_syn[k] * ib[k], a_inh[k] * jb[k], a_mem[k] * (vb[k] - v_rest[k])
                    if units is not None:
                        di, dj, dv = (np.trunc(di * grid[k]) / grid[k], np.trunc(dj * grid[k]) / grid[k],
                                      np.trunc(dv * grid[k]) / grid[k])
                    ie = di + xt[k] + bias_syn[k]
                    ji = dj + (y[t, a + k] if y is not None else zero)
                    u = v_rest[k] + dv + ie + ji + bias[k]
                    act = True
                    if active is not None:
                        act = rb[k] <= 0
                        u = u if act else vb[k]
                        active[t, a + k] = act
                    s = one if (u - v_th[k] > 0) & act else zero
                    vb[k] = _after_reset(u, s, v_th[k], v_reset[k], reset)
                    if active is not None:
                        rb[k] = (n_ref[k] if s > 0 else rb[k]) if act else rb[k] - one
                    ib[k], jb[k], st[k], mt[k] = ie, ji, s, u
                    if current is not None:
                        current[t, a + k] = ie
            v[a:b], i[a:b], j[a:b], r[a:b] = vb, ib, jb, rb


@njit(cache=True, parallel=True, error_model="numpy")
def _backward(g_spikes, g_membrane, membrane, current, active, v0, i0, c, reset, slope, mpr, g_given,
              gv, gi, gj, gx, gy, ga_mem, ga_syn, threads):
    """The reverse loop of the module docstring. ``gv, gi, gj [E]`` enter as the adjoints of the final state and
    leave as those of the initial state; fills ``gx`` (and ``gy``), adds the per-element decay gradients to
    ``ga_mem`` / ``ga_syn``. Surrogate: ``g_given[T, E]`` if given, else MPR if ``mpr``, else the fast sigmoid
    ``1 / (1 + slope |x|)^2``. Spikes are recomputed from ``U`` (not stored). Optional arrays may be ``None``."""
    steps, width = membrane.shape
    n = c.shape[1]
    blocks, groups = _jobs(width, n, threads)
    zero, one = membrane.dtype.type(0), membrane.dtype.type(1)
    two, three = one + one, one + one + one
    half = one / two
    mpr_gain = three / (two * np.tanh(three * half))
    for job in prange(blocks * groups):
        lo, hi, first, last = _job(job, blocks, groups, width, n)
        a_mem, a_syn, a_inh, v_th, v_reset, v_rest, _, _, _ = _rows(c, lo, hi)
        scale = v_th - v_reset
        for sample in range(first, last):
            a = sample * n + lo
            b = a + hi - lo
            gvb, gib, gjb = gv[a:b].copy(), gi[a:b].copy(), gj[a:b].copy()
            gam, gas, v_prev = np.zeros_like(a_mem), np.zeros_like(a_mem), np.empty_like(a_mem)
            for t in range(steps - 1, -1, -1):
                mt, gst, gxt = membrane[t, a:b], g_spikes[t, a:b], gx[t, a:b]
                if ga_mem is not None:  # the membrane after step t - 1's reset
                    if t == 0:
                        v_prev[:] = v0[a:b]
                    else:
                        for k in range(hi - lo):
                            up = membrane[t - 1, a + k]
                            fired = up - v_th[k] > 0
                            if active is not None:
                                fired &= active[t - 1, a + k]
                            v_prev[k] = _after_reset(up, one if fired else zero, v_th[k], v_reset[k], reset)
                for k in range(hi - lo):
                    u, g_out = mt[k], gvb[k]
                    xk = u - v_th[k]
                    act = True
                    if active is not None:
                        act = active[t, a + k]
                    s = one if (xk > 0) & act else zero
                    if g_given is not None:
                        g = g_given[t, a + k]
                    elif mpr:
                        w = half + xk / (two * scale[k])
                        ch = np.cosh(three * (w - half))
                        g = mpr_gain / (ch * ch) / (two * scale[k]) if (w >= zero) & (w <= one) else zero
                    else:
                        d = one + slope * abs(xk)
                        g = one / (d * d)
                    gs_hard, gs_soft = gst[k] - g_out * (u - v_reset[k]), gst[k] - g_out * scale[k]
                    gs = gs_hard if reset == lif.RESET_HARD else (gs_soft if reset == lif.RESET_SOFT else gst[k])
                    gu = g_out * (one - s) if reset == lif.RESET_HARD else g_out
                    if g_membrane is not None:
                        gu += g_membrane[t, a + k]
                    gu = gu + gs * g if act else gu
                    gc = gu if act else zero
                    g_i, g_j = gib[k] + gc, gjb[k] + gc
                    gxt[k] = g_i
                    if gy is not None:
                        gy[t, a + k] = g_j
                    if ga_mem is not None:
                        gam[k] += gc * (v_prev[k] - v_rest[k])
                    if ga_syn is not None:
                        gas[k] += g_i * (current[t - 1, a + k] if t > 0 else i0[a + k])
                    gvb[k] = a_mem[k] * gc if act else gu
                    gib[k], gjb[k] = a_syn[k] * g_i, a_inh[k] * g_j
            gv[a:b], gi[a:b], gj[a:b] = gvb, gib, gjb
            if ga_mem is not None:
                ga_mem[a:b] = gam
            if ga_syn is not None:
                ga_syn[a:b] = gas


def _coefficient_rows(coef: LIFCoef, a_mem: torch.Tensor, a_syn: torch.Tensor, n: int, dtype, device) -> torch.Tensor:
    """The coefficients as a ``[len(lif.COEFFICIENTS), n]`` matrix (the reset row zero), no gradient."""
    values = coef._replace(a_mem=a_mem, a_syn=a_syn)._asdict()
    return torch.stack([torch.as_tensor(values.get(name, 0.0), dtype=dtype, device=device).detach().expand(n)
                        for name in lif.COEFFICIENTS])


def _numba_forward(x, y, c, units, reset, v, i, j, r, spikes, membrane, current, active):
    _forward(*_arrays(x, y, c, units), reset, *_arrays(v, i, j, r, spikes, membrane, current, active),
             numba.get_num_threads())


def _numba_backward(g_spikes, g_membrane, membrane, current, active, v0, i0, c, reset, slope, mpr, g_given,
                    *gradients):
    _backward(*_arrays(g_spikes, g_membrane, membrane, current, active, v0, i0, c), reset,
              membrane.numpy().dtype.type(slope), mpr, *_arrays(g_given, *gradients), numba.get_num_threads())


def _loops(device: torch.device):
    """The ``(forward, backward)`` loops for tensors on ``device``: Numba on CPU, Triton on a GPU."""
    if device.type == "cpu":
        return _numba_forward, _numba_backward
    from neurons import lif_triton

    return lif_triton.forward, lif_triton.backward


class _Plan(NamedTuple):
    """What the compiled loops of one sequence share, prepared once (a recurrent sequence calls them per step)."""

    c: torch.Tensor  # [len(lif.COEFFICIENTS), n] coefficient rows, no gradient
    reset: int  # lif.RESET_*
    spike_fn: object
    use_mpr: bool
    grid: torch.Tensor | None  # per-neuron truncation units (QAT) or None
    refractory: bool  # some neuron has a refractory period


def _plan(coef: LIFCoef, a_mem, a_syn, reset: str, spike_fn, use_mpr: bool, units, dtype, device) -> _Plan:
    """The plan for these coefficients, reused while they are the same objects, unchanged in place (a layer's
    :meth:`neurons.lif_torch.LIFCell.coefficients` returns the same ``LIFCoef`` until a parameter changes)."""
    n = a_mem.shape[0]
    inputs = (coef, spike_fn, units)  # (a_mem, a_syn: coef's, as dtype)
    key = (id(coef), n, reset, use_mpr, dtype, device)
    versions = tuple(t._version for t in (*coef, units) if torch.is_tensor(t))
    cached = _PLANS.get(key)
    if cached is not None and cached[1] == versions and all(a is b for a, b in zip(cached[0], inputs)):
        return cached[2]
    c = _coefficient_rows(coef, a_mem, a_syn, n, dtype, device)
    grid = None if units is None else units.to(dtype=dtype, device=device).expand(n).contiguous()
    plan = _Plan(c, _RESET_CODE[reset], spike_fn, use_mpr, grid, bool((c[lif.N_REF] > 0).any()))
    if len(_PLANS) >= PLANS_KEPT:
        _PLANS.pop(next(iter(_PLANS), None), None)  # the oldest (no error if another thread took it first)
    _PLANS[key] = (inputs, versions, plan)  # (holding the inputs keeps their ids from being reused)
    return plan


class _FusedLIF(torch.autograd.Function):
    """``(X, Y | None, v0, i0, j0, r0, a_mem, a_syn [n]) -> (S, U, v, i, j, r)`` over ``steps`` steps.

    ``X``, ``Y``, ``S``, ``U`` hold ``steps x E`` values and the state ``E = batch x n`` (contiguous, any
    shape: they are read flat, so no view of a tensor that needs a gradient is made per call); neuron
    ``k`` of an element ``e`` is ``e mod n``. ``U`` is the membrane after charging, before the reset.
    ``a_mem`` and ``a_syn`` are inputs only for their gradients (their values are in the plan's rows).
    """

    @staticmethod
    def forward(ctx, x, y, v0, i0, j0, r0, a_mem, a_syn, plan: _Plan, steps: int):
        device, width = x.device, v0.numel()
        spikes, membrane, current, active, final = _buffers(x, (v0, i0, j0, r0), a_syn, plan)
        ctx.threads = _use_threads(x.numel()) if device.type == "cpu" else None
        _loops(device)[0](*_flat(steps, x, y), plan.c, plan.grid, plan.reset, *(s.view(-1) for s in final),
                          *_flat(steps, spikes, membrane, current, active))
        ctx.save_for_backward(membrane, current, active, v0, i0)
        ctx.plan, ctx.has_inh, ctx.steps, ctx.width = plan, y is not None, steps, width
        ctx.mark_non_differentiable(final[3])
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None, not a tensor of zeros
        return (spikes, membrane, *final)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_spikes, g_membrane, gv, gi, gj, _g_refr):
        membrane, current, active, v0, i0 = ctx.saved_tensors
        plan, steps, width, n = ctx.plan, ctx.steps, ctx.width, ctx.plan.c.shape[1]
        dtype = membrane.dtype
        state = [membrane.new_zeros(v0.shape) if g is None else g.to(dtype).contiguous().clone()
                 for g in (gv, gi, gj)]
        slope, given = _surrogate(plan.spike_fn, plan.use_mpr, *_flat(steps, membrane, active), plan.c)
        gx = torch.empty_like(membrane)
        gy = torch.empty_like(membrane) if ctx.has_inh else None
        learn_mem, learn_syn = ctx.needs_input_grad[6:8]
        ga_mem = membrane.new_empty(width) if learn_mem else None
        ga_syn = membrane.new_empty(width) if learn_syn else None
        g_spikes = torch.zeros_like(membrane) if g_spikes is None else g_spikes.to(dtype).contiguous()
        g_membrane = None if g_membrane is None else g_membrane.to(dtype).contiguous()
        if ctx.threads is not None:
            numba.set_num_threads(ctx.threads)  # backward may run on another thread, whose count is its own
        _loops(membrane.device)[1](*_flat(steps, g_spikes, g_membrane, membrane, current, active),
                                   v0.detach().reshape(-1), i0.detach().reshape(-1), plan.c, plan.reset, slope,
                                   plan.use_mpr, given, *(g.view(-1) for g in state),
                                   *_flat(steps, gx, gy), ga_mem, ga_syn)
        return (gx, gy, *state, None, None if ga_mem is None else ga_mem.view(-1, n).sum(0),
                None if ga_syn is None else ga_syn.view(-1, n).sum(0), None, None)


def _buffers(x, state, a_syn, plan: _Plan):
    """What the forward loop fills: spikes and membrane like ``x``, the current trace (only for a learnable
    τ_syn), the activity mask (only with refractory neurons) and a copy of the state it advances."""
    refractory = plan.refractory or (state[3].numel() > 0 and float(state[3].max()) > 0)  # (6x faster than any())
    current = torch.empty_like(x) if a_syn.requires_grad else None
    active = torch.empty(x.shape, dtype=torch.bool, device=x.device) if refractory else None
    return torch.empty_like(x), torch.empty_like(x), current, active, [s.detach().clone() for s in state]


def _flat(steps: int, *tensors: torch.Tensor | None) -> list:
    """``[steps, E]`` views of contiguous tensors (``None`` stays ``None``)."""
    return [None if t is None else t.view(steps, -1) for t in tensors]


class _FusedRecurrentLIF(torch.autograd.Function):
    """``(X[T, B, n], W[n, n], s0 [B, n], v0, i0, j0, r0 [B, n], a_mem, a_syn [n]) -> (S[T, B, n], v, i, j, r)``.

    A recurrent population: ``I[t] = X[t] + s[t-1] W^T`` (the product a torch op per step, so it rounds as
    the per-step reference's), then one step of the compiled loops. Backward, in reverse: the loop's step
    gives ``gI[t]`` (the adjoint of ``I[t]``), which reaches the spikes of the step before as
    ``gI[t] W``; ``dL/dW = sum_t gI[t]^T s[t-1]`` is one product at the end.
    """

    @staticmethod
    def forward(ctx, x, weight, s0, v0, i0, j0, r0, a_mem, a_syn, plan: _Plan):
        steps, device, width = x.shape[0], x.device, v0.numel()
        spikes, membrane, current, active, final = _buffers(x, (v0, i0, j0, r0), a_syn, plan)
        v_after = torch.empty_like(x) if a_mem.requires_grad else None  # V[t] after the reset
        flat_state = [s.view(-1) for s in final]
        ctx.threads = _use_threads(width) if device.type == "cpu" else None
        forward = _loops(device)[0]
        s_prev, w = s0.detach(), weight.detach()
        for t in range(steps):
            inputs = x[t].detach() + F.linear(s_prev, w)
            forward(inputs.view(1, -1), None, plan.c, plan.grid, plan.reset, *flat_state,
                    *_flat(1, spikes[t], membrane[t], _at(current, t), _at(active, t)))
            if v_after is not None:
                v_after[t] = final[0]
            s_prev = spikes[t]
        ctx.save_for_backward(membrane, current, v_after, active, spikes, v0, i0, s0, weight)
        ctx.plan = plan
        ctx.mark_non_differentiable(final[3])
        ctx.set_materialize_grads(False)
        return (spikes, *final)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_spikes, gv, gi, gj, _g_refr):
        membrane, current, v_after, active, spikes, v0, i0, s0, weight = ctx.saved_tensors
        plan, steps, dtype = ctx.plan, membrane.shape[0], membrane.dtype
        width, n = v0.numel(), plan.c.shape[1]
        adjoint = [membrane.new_zeros(width) if g is None else g.to(dtype).reshape(-1).clone() for g in (gv, gi, gj)]
        slope, given = _surrogate(plan.spike_fn, plan.use_mpr, *_flat(steps, membrane, active), plan.c)
        g_spikes = torch.zeros_like(membrane) if g_spikes is None else g_spikes.to(dtype)
        gx = torch.empty_like(membrane)
        learn_mem, learn_syn = ctx.needs_input_grad[7:9]
        ga_mem = membrane.new_zeros(width) if learn_mem else None
        ga_syn = membrane.new_zeros(width) if learn_syn else None
        part_mem, part_syn = (None if g is None else torch.empty_like(g) for g in (ga_mem, ga_syn))  # one step's
        if ctx.threads is not None:
            numba.set_num_threads(ctx.threads)
        backward = _loops(membrane.device)[1]
        g_recurrent = None  # gI[t+1] W: the adjoint of s[t] through the recurrent product
        for t in range(steps - 1, -1, -1):
            g_s = g_spikes[t] if g_recurrent is None else g_spikes[t] + g_recurrent
            v_prev = v0 if t == 0 or v_after is None else v_after[t - 1]
            i_prev = i0 if t == 0 or current is None else current[t - 1]
            backward(*_flat(1, g_s.contiguous(), None, membrane[t], _at(current, t), _at(active, t)),
                     v_prev.detach().reshape(-1), i_prev.detach().reshape(-1), plan.c, plan.reset, slope,
                     plan.use_mpr, None if given is None else given[t:t + 1], *adjoint, gx[t].view(1, -1), None,
                     part_mem, part_syn)
            for total, part in ((ga_mem, part_mem), (ga_syn, part_syn)):
                if total is not None:
                    total += part
            g_recurrent = gx[t] @ weight.detach()
        s_before = torch.cat([s0.detach()[None].to(dtype), spikes[:-1]])
        g_weight = gx.reshape(-1, n).T @ s_before.reshape(-1, n)
        shape = v0.shape
        return (gx, g_weight, g_recurrent, *(a.view(shape) for a in adjoint), None,
                None if ga_mem is None else ga_mem.view(-1, n).sum(0),
                None if ga_syn is None else ga_syn.view(-1, n).sum(0), None)


def _at(t: torch.Tensor | None, step: int):
    return None if t is None else t[step]


def _use_threads(work: int) -> int:
    """Set (and return) Numba's thread count for ``work`` neuron-steps: torch's count, or 1 for small work.

    Numba's first launch of its OpenMP threads resets OpenMP's count, which torch reads as its own:
    torch's count is put back as the user set it.
    """
    torch_threads = torch.get_num_threads()
    threads = 1 if work < PARALLEL_MIN else max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    return threads


def _arrays(*tensors: torch.Tensor | None) -> list:
    """NumPy views of contiguous CPU tensors (``None`` stays ``None``) for the Numba loops."""
    return [None if t is None else t.detach().numpy() for t in tensors]


def _surrogate(spike_fn, use_mpr, membrane, active, c) -> tuple[float, torch.Tensor | None]:
    """``(slope, g)`` for the backward loop: ``g[T, E]`` only for a spike function it does not know.

    The project's fast sigmoid (``surrogate = ('fast_sigmoid', slope)``) and MPR are computed in the
    loop. For any other function ``g`` is its own derivative at every stored ``x = U - v_th`` (autograd,
    once for the whole sequence); a function whose forward is not ``H(x)`` cannot be fused and is refused.
    """
    shape = getattr(spike_fn or DEFAULT_SPIKE, "surrogate", None)
    if use_mpr or (shape is not None and shape[0] == "fast_sigmoid"):
        return (0.0 if use_mpr else shape[1]), None
    steps, width = membrane.shape
    x = (membrane.reshape(steps, -1, c.shape[1]) - c[lif.V_TH]).reshape(steps, width).requires_grad_()
    with torch.enable_grad():
        s = spike_fn(x)
        (g,) = torch.autograd.grad(s, x, torch.ones_like(s))
    heaviside = (s.detach() > 0) == (x.detach() > 0)
    if active is not None:
        heaviside |= ~active  # refractory neurons do not spike whatever the function says
    if not bool(heaviside.all()):
        raise ValueError(f"spike function {getattr(spike_fn, '__name__', spike_fn)!r} does not spike at x > 0 "
                         "(Heaviside), so the fused LIF kernel cannot run it: pass fused=False")
    return 0.0, g.to(membrane.dtype).contiguous()


def _dtype(x: torch.Tensor, coef: LIFCoef) -> torch.dtype:
    """The dtype the update runs in: the current's and the coefficients' promoted (as the reference does)."""
    return x.dtype if x.dtype == coef.v_th.dtype else torch.promote_types(x.dtype, coef.v_th.dtype)


def can_fuse(x: torch.Tensor, coef: LIFCoef) -> bool:
    """Whether :func:`lif_sequence` can run the compiled loops: CPU (or CUDA with Triton), float32/64, no
    gradient into fixed coefficients."""
    fixed = [getattr(coef, name) for name in LIFCoef._fields if name not in ("a_mem", "a_syn")]
    device = x.device.type == "cpu" or (x.device.type == "cuda" and triton_available())
    return (device and _dtype(x, coef) in (torch.float32, torch.float64)
            and not any(torch.is_tensor(f) and f.requires_grad for f in fixed))


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (it comes with CUDA builds of torch)."""
    return importlib.util.find_spec("triton") is not None


def lif_sequence(x_exc: torch.Tensor, state: LIFState, coef: LIFCoef, reset: str = "hard",
                 spike_fn=None, use_mpr: bool = False, x_inh: torch.Tensor | None = None,
                 truncate_units: torch.Tensor | None = None, record_v: bool = False,
                 fused: bool | None = None) -> tuple[torch.Tensor, torch.Tensor | None, LIFState]:
    """:func:`neurons.lif_torch.lif_step` over ``x_exc[T, ..., n]``: ``(spikes, v or None, final state)``.

    ``v`` (with ``record_v=True``) is the membrane after each step's reset, as ``state.v`` would be.
    ``truncate_units`` (per neuron) truncates every decayed state term to Loihi's grid
    (:func:`truncate_to_grid`). ``fused=None`` uses the compiled loops where :func:`can_fuse` allows and
    the sequence has at least ``FUSED_MIN_STEPS`` steps, the per-step reference otherwise; ``True`` insists,
    ``False`` runs the reference. Both give the same spikes and (to float tolerance) the same gradients.
    """
    if x_exc.dim() < 2:
        raise ValueError(f"x_exc must be [T, ..., n], got shape {tuple(x_exc.shape)}")
    possible = _fusable(x_exc, coef, reset, fused)
    if not possible or (fused is None and x_exc.shape[0] < FUSED_MIN_STEPS):
        return _reference(x_exc, state, coef, reset, spike_fn, use_mpr, x_inh, truncate_units, record_v)
    steps, shape, n = x_exc.shape[0], x_exc.shape[1:], x_exc.shape[-1]
    dtype = _dtype(x_exc, coef)
    a_mem, a_syn = _decays(coef, n, dtype)
    plan = _plan(coef, a_mem, a_syn, reset, spike_fn, use_mpr, truncate_units, dtype, x_exc.device)
    outputs = _FusedLIF.apply(_contiguous(x_exc, dtype), None if x_inh is None else _contiguous(x_inh, dtype),
                              *(_contiguous(s, dtype, shape) for s in state), a_mem, a_syn, plan, steps)
    spikes, membrane = outputs[:2]
    final = LIFState(*outputs[2:])
    v = None
    if record_v and reset == "none":
        v = membrane
    elif record_v:
        v = membrane - (spikes * (membrane - coef.v_reset) if reset == "hard" else spikes * (coef.v_th - coef.v_reset))
    return spikes, v, final


def _contiguous(t: torch.Tensor, dtype, shape=None) -> torch.Tensor:
    """``t`` as a contiguous ``dtype`` tensor of ``shape`` (broadcast), with no autograd op where it is one."""
    t = t if t.dtype == dtype else t.to(dtype)
    if shape is not None and t.shape != shape:
        t = t.expand(shape)
    return t if t.is_contiguous() else t.contiguous()


def _decays(coef: LIFCoef, n: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``a_mem, a_syn`` per neuron, keeping their gradients (the learnable time constants)."""
    return tuple(torch.as_tensor(getattr(coef, name), dtype=dtype).expand(n) for name in ("a_mem", "a_syn"))


def lif_recurrent_sequence(x_exc: torch.Tensor, weight: torch.Tensor, s0: torch.Tensor, state: LIFState,
                           coef: LIFCoef, reset: str = "hard", spike_fn=None, use_mpr: bool = False,
                           truncate_units: torch.Tensor | None = None,
                           fused: bool | None = None) -> tuple[torch.Tensor, LIFState]:
    """A recurrent population over ``x_exc[T, B, n]``: ``I[t] = x_exc[t] + s[t-1] W^T`` into
    :func:`neurons.lif_torch.lif_step`, from the spikes ``s0`` of the step before; ``(spikes, final state)``.

    The recurrent product is a torch op per step; the neurons run in the compiled loops where
    :func:`can_fuse` allows (``fused`` as in :func:`lif_sequence`), step by step in torch otherwise. Same
    spikes either way; gradients (into ``x_exc``, ``W``, ``s0``, the state and learnable τ) to float tolerance.
    """
    if x_exc.dim() != 3 or weight.shape != (x_exc.shape[-1],) * 2:
        raise ValueError(f"x_exc must be [T, B, n] and weight [n, n], got {tuple(x_exc.shape)} and "
                         f"{tuple(weight.shape)}")
    if not _fusable(x_exc, coef, reset, fused):
        decayed, spikes, s = _truncation(truncate_units), [], s0
        for x_t in x_exc:
            s, state = lif_step(x_t + F.linear(s, weight), state, coef, reset, spike_fn, use_mpr, None, decayed)
            s = s.to(x_exc.dtype)
            spikes.append(s)
        return torch.stack(spikes), state
    shape, n, dtype = x_exc.shape[1:], x_exc.shape[-1], _dtype(x_exc, coef)
    a_mem, a_syn = _decays(coef, n, dtype)
    plan = _plan(coef, a_mem, a_syn, reset, spike_fn, use_mpr, truncate_units, dtype, x_exc.device)
    outputs = _FusedRecurrentLIF.apply(_contiguous(x_exc, dtype), _contiguous(weight, dtype),
                                       _contiguous(s0, dtype, shape), *(_contiguous(s, dtype, shape) for s in state),
                                       a_mem, a_syn, plan)
    return outputs[0], LIFState(*outputs[1:])


def _fusable(x: torch.Tensor, coef: LIFCoef, reset: str, fused: bool | None) -> bool:
    """Whether to run the compiled loops (``fused``: None where :func:`can_fuse` allows, True insists, False
    never); a bad reset mode or an impossible ``fused=True`` is refused by name."""
    if reset not in lif.RESET_MODES:
        raise ValueError(f"unknown reset mode {reset!r}; expected one of {lif.RESET_MODES}")
    possible = fused is not False and can_fuse(x, coef)
    if fused and not possible:
        raise ValueError("the fused LIF kernel needs float32/float64 tensors on CPU (or CUDA with Triton) and "
                         f"coefficients without gradients other than a_mem/a_syn (got {x.dtype} on {x.device})")
    return possible


def _truncation(units: torch.Tensor | None):
    """The ``decayed`` map of :func:`neurons.lif_torch.lif_step`: Loihi's grid (QAT) or none."""
    return None if units is None else (lambda x: truncate_to_grid(x, units))


def _reference(x_exc, state, coef, reset, spike_fn, use_mpr, x_inh, units, record_v):
    decayed = _truncation(units)
    spikes, trace = [], []
    for t in range(x_exc.shape[0]):
        s, state = lif_step(x_exc[t], state, coef, reset, spike_fn, use_mpr,
                            None if x_inh is None else x_inh[t], decayed)
        spikes.append(s)
        trace.append(state.v)
    return torch.stack(spikes), torch.stack(trace) if record_v else None, state
