"""The fused LIF loops of :mod:`neurons.lif_fused` as Triton kernels, for tensors on a GPU.

The equations (forward and backpropagation through time) are those of :mod:`neurons.lif_fused`,
with the same floating-point operations in the same order as its Numba loops and as
:func:`neurons.lif_torch.lif_step`; contraction into fused multiply-adds is switched off so every
operation rounds as torch's own kernels do. One program per block of ``BLOCK`` elements of the
flat ``[E] = batch x neurons`` state, looping over the ``T`` steps; neuron ``k = e mod n``.

**Not yet run on a GPU.** No GPU was available where this was written. The kernels are tested on
CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1``, ``tests/test_training_fused_triton.py``),
which checks their logic and arithmetic but not the compiled GPU code: run that test file on a GPU
machine (without ``TRITON_INTERPRET``, see its docstring) before relying on this path.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from neurons import lif

#: Elements per program.
BLOCK = 256
# rows of the coefficient matrix (neurons.lif.COEFFICIENTS) the kernels read
_A_MEM, _A_SYN, _A_INH = tl.constexpr(lif.A_MEM), tl.constexpr(lif.A_SYN), tl.constexpr(lif.A_INH)
_V_TH, _V_RESET, _V_REST = tl.constexpr(lif.V_TH), tl.constexpr(lif.V_RESET), tl.constexpr(lif.V_REST)
_BIAS, _BIAS_SYN, _N_REF = tl.constexpr(lif.BIAS), tl.constexpr(lif.BIAS_SYN), tl.constexpr(lif.N_REF)
_HARD = tl.constexpr(lif.RESET_HARD)
_SOFT = tl.constexpr(lif.RESET_SOFT)


@triton.jit
def _after_reset(u, s, v_th, v_reset, RESET: tl.constexpr):
    """The membrane after the reset of a step that charged to ``u`` and spiked ``s``."""
    if RESET == _HARD:
        return u - s * (u - v_reset)
    elif RESET == _SOFT:
        return u - s * (v_th - v_reset)
    else:
        return u


@triton.jit
def _on_grid(x, units):
    """``trunc(x units) / units``: Loihi's truncation of a decayed state (quantization-aware training)."""
    scaled = x * units
    return tl.where(scaled >= 0, tl.floor(scaled), tl.ceil(scaled)) / units


@triton.jit
def _row(c, row: tl.constexpr, k, n):
    return tl.load(c + row * n + k)


@triton.jit
def _forward_kernel(x, y, c, units, v, i, j, r, spikes, membrane, current, active, steps, width, n,
                    RESET: tl.constexpr, HAS_Y: tl.constexpr, HAS_UNITS: tl.constexpr,
                    HAS_CURRENT: tl.constexpr, HAS_ACTIVE: tl.constexpr, BLOCK: tl.constexpr):
    e = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    inside = e < width
    k = e % n
    a_mem, a_syn, a_inh = _row(c, _A_MEM, k, n), _row(c, _A_SYN, k, n), _row(c, _A_INH, k, n)
    v_th, v_reset, v_rest = _row(c, _V_TH, k, n), _row(c, _V_RESET, k, n), _row(c, _V_REST, k, n)
    bias, bias_syn, n_ref = _row(c, _BIAS, k, n), _row(c, _BIAS_SYN, k, n), _row(c, _N_REF, k, n)
    vb, ib = tl.load(v + e, mask=inside, other=0), tl.load(i + e, mask=inside, other=0)
    jb, rb = tl.load(j + e, mask=inside, other=0), tl.load(r + e, mask=inside, other=0)
    if HAS_UNITS:
        grid = tl.load(units + k)
    at = e  # the flat index of step t: t width + e (int64)
    for _ in range(steps):
        di, dj, dv = a_syn * ib, a_inh * jb, a_mem * (vb - v_rest)
        if HAS_UNITS:
            di, dj, dv = _on_grid(di, grid), _on_grid(dj, grid), _on_grid(dv, grid)
        ie = di + tl.load(x + at, mask=inside, other=0) + bias_syn
        if HAS_Y:
            ji = dj + tl.load(y + at, mask=inside, other=0)
        else:
            ji = dj + 0
        u = v_rest + dv + ie + ji + bias
        if HAS_ACTIVE:
            act = rb <= 0
            u = tl.where(act, u, vb)
            tl.store(active + at, act, mask=inside)
            s = ((u - v_th > 0) & act).to(u.dtype)
        else:
            s = (u - v_th > 0).to(u.dtype)
        vb = _after_reset(u, s, v_th, v_reset, RESET)
        if HAS_ACTIVE:
            rb = tl.where(act, tl.where(s > 0, n_ref, rb), rb - 1)
        ib, jb = ie, ji
        tl.store(spikes + at, s, mask=inside)
        tl.store(membrane + at, u, mask=inside)
        if HAS_CURRENT:
            tl.store(current + at, ie, mask=inside)
        at += width
    tl.store(v + e, vb, mask=inside)
    tl.store(i + e, ib, mask=inside)
    tl.store(j + e, jb, mask=inside)
    tl.store(r + e, rb, mask=inside)


@triton.jit
def _backward_kernel(g_spikes, g_membrane, membrane, current, active, v0, i0, c, constants, g_given,
                     gv, gi, gj, gx, gy, ga_mem, ga_syn, steps, width, n,
                     RESET: tl.constexpr, SURROGATE: tl.constexpr, HAS_GM: tl.constexpr,
                     HAS_ACTIVE: tl.constexpr, HAS_Y: tl.constexpr, LEARN_MEM: tl.constexpr,
                     LEARN_SYN: tl.constexpr, BLOCK: tl.constexpr):
    """``SURROGATE``: 0 the fast sigmoid ``1 / (1 + slope |x|)^2``, 1 MPR, 2 given in ``g_given[T, E]``;
    ``constants = [slope, mpr_gain]``."""
    e = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    inside = e < width
    k = e % n
    a_mem, a_syn, a_inh = _row(c, _A_MEM, k, n), _row(c, _A_SYN, k, n), _row(c, _A_INH, k, n)
    v_th, v_reset, v_rest = _row(c, _V_TH, k, n), _row(c, _V_RESET, k, n), _row(c, _V_REST, k, n)
    scale = v_th - v_reset
    slope, mpr_gain = tl.load(constants), tl.load(constants + 1)
    gvb, gib = tl.load(gv + e, mask=inside, other=0), tl.load(gi + e, mask=inside, other=0)
    gjb = tl.load(gj + e, mask=inside, other=0)
    gam, gas = gvb * 0, gvb * 0
    at = (steps - 1).to(tl.int64) * width + e  # the flat index of step t, from t = T - 1 down
    for _ in range(steps):
        first = at < width  # t = 0
        before = tl.maximum(at - width, e)  # step t - 1 (read only where t > 0)
        u = tl.load(membrane + at, mask=inside, other=0)
        xk = u - v_th
        if HAS_ACTIVE:
            act = tl.load(active + at, mask=inside, other=0) != 0
            s = ((xk > 0) & act).to(u.dtype)
        else:
            s = (xk > 0).to(u.dtype)
        if SURROGATE == 2:
            g = tl.load(g_given + at, mask=inside, other=0)
        elif SURROGATE == 1:
            w = 0.5 + xk / (2 * scale)
            z = 3 * (tl.minimum(tl.maximum(w, 0), 1) - 0.5)  # g is 0 outside 0 <= w <= 1 (no overflow in exp)
            ch = (tl.exp(z) + tl.exp(-z)) / 2
            g = tl.where((w >= 0) & (w <= 1), mpr_gain / (ch * ch) / (2 * scale), 0)
        else:
            d = 1 + slope * tl.abs(xk)
            g = 1 / (d * d)
        g_out, gst = gvb, tl.load(g_spikes + at, mask=inside, other=0)
        if RESET == _HARD:
            gs = gst - g_out * (u - v_reset)
            gu = g_out * (1 - s)
        elif RESET == _SOFT:
            gs = gst - g_out * scale
            gu = g_out
        else:
            gs = gst
            gu = g_out
        if HAS_GM:
            gu += tl.load(g_membrane + at, mask=inside, other=0)
        if HAS_ACTIVE:
            gu = tl.where(act, gu + gs * g, gu)
            gc = tl.where(act, gu, 0)
        else:
            gu = gu + gs * g
            gc = gu
        g_i, g_j = gib + gc, gjb + gc
        tl.store(gx + at, g_i, mask=inside)
        if HAS_Y:
            tl.store(gy + at, g_j, mask=inside)
        if LEARN_MEM:  # the membrane after step t - 1's reset (v0 before the first step)
            up = tl.load(membrane + before, mask=inside, other=0)
            fired = up - v_th > 0
            if HAS_ACTIVE:
                fired = fired & (tl.load(active + before, mask=inside, other=0) != 0)
            v_prev = _after_reset(up, fired.to(up.dtype), v_th, v_reset, RESET)
            v_prev = tl.where(first, tl.load(v0 + e, mask=inside, other=0), v_prev)
            gam += gc * (v_prev - v_rest)
        if LEARN_SYN:
            i_prev = tl.where(first, tl.load(i0 + e, mask=inside, other=0),
                              tl.load(current + before, mask=inside, other=0))
            gas += g_i * i_prev
        if HAS_ACTIVE:
            gvb = tl.where(act, a_mem * gc, gu)
        else:
            gvb = a_mem * gc
        gib, gjb = a_syn * g_i, a_inh * g_j
        at -= width
    tl.store(gv + e, gvb, mask=inside)
    tl.store(gi + e, gib, mask=inside)
    tl.store(gj + e, gjb, mask=inside)
    if LEARN_MEM:
        tl.store(ga_mem + e, gam, mask=inside)
    if LEARN_SYN:
        tl.store(ga_syn + e, gas, mask=inside)


def _grid(width: int):
    return (triton.cdiv(width, BLOCK),)


def forward(x, y, c, units, reset, v, i, j, r, spikes, membrane, current, active):
    """:func:`neurons.lif_fused` forward loop on tensors of one GPU (arguments as its Numba loop's)."""
    steps, width = x.shape
    n = c.shape[1]
    _forward_kernel[_grid(width)](
        x, x if y is None else y, c, c if units is None else units, v, i, j, r, spikes, membrane,
        spikes if current is None else current, spikes if active is None else active, steps, width, n,
        RESET=reset, HAS_Y=y is not None, HAS_UNITS=units is not None, HAS_CURRENT=current is not None,
        HAS_ACTIVE=active is not None, BLOCK=BLOCK, enable_fp_fusion=False)


def backward(g_spikes, g_membrane, membrane, current, active, v0, i0, c, reset, slope, mpr, g_given,
             gv, gi, gj, gx, gy, ga_mem, ga_syn):
    """:func:`neurons.lif_fused` reverse loop on tensors of one GPU (arguments as its Numba loop's)."""
    steps, width = membrane.shape
    n = c.shape[1]
    constants = torch.tensor([slope, 3 / (2 * math.tanh(1.5))], dtype=membrane.dtype, device=membrane.device)
    surrogate = 2 if g_given is not None else (1 if mpr else 0)
    _backward_kernel[_grid(width)](
        g_spikes, membrane if g_membrane is None else g_membrane, membrane, membrane if current is None else current,
        membrane if active is None else active, v0, i0, c, constants, membrane if g_given is None else g_given,
        gv, gi, gj, gx, gx if gy is None else gy, gv if ga_mem is None else ga_mem, gv if ga_syn is None else ga_syn,
        steps, width, n, RESET=reset, SURROGATE=surrogate, HAS_GM=g_membrane is not None,
        HAS_ACTIVE=active is not None, HAS_Y=gy is not None, LEARN_MEM=ga_mem is not None,
        LEARN_SYN=ga_syn is not None, BLOCK=BLOCK, enable_fp_fusion=False)
