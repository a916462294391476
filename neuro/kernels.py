"""The compiled pieces of one simulator step, inlined into the time loops of :mod:`neuro.simulator`.

Input spikes (given or Poisson), the LIF update of a range of neurons, spike recording,
state traces, and the delivery of a range of synapses into the ring buffer
``buf[trial, slot, neuron]`` (a spike at ``t`` through a synapse of delay ``d`` lands in
slot ``(t + d) mod slots``).
"""

from __future__ import annotations

import numba
from numba import njit, types
from numba.extending import overload

from neurons import lif


@njit(inline="always")
def step_inputs(buf_e, buf_i, r, t):
    """Ring-buffer slot of step ``t`` and trial ``r``'s excitatory and inhibitory inputs due at ``t`` (views)."""
    slot = t % buf_e.shape[1]
    return slot, buf_e[r, slot], buf_i[r, slot]


@njit(inline="always")
def xorshift_uniform(rng, r):
    """xorshift64* step of trial ``r``'s generator; a float in [0, 1)."""
    x = rng[r]
    x ^= x >> numba.uint64(12)
    x ^= x << numba.uint64(25)
    x ^= x >> numba.uint64(27)
    rng[r] = x
    return ((x * numba.uint64(2685821657736338717)) >> numba.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def fire_inputs(model, lo, hi, t, r, src_ptr, src_idx, prob, rng, fired, nf):
    """Spikes of input population ``lo..hi-1`` at step ``t`` of trial ``r``, appended to ``fired``.

    ``model`` 1 (``spike_source``): the given spikes; otherwise (``poisson``): a
    spike with probability ``prob[k]`` from the trial's generator. Returns the new count.
    """
    if model == 1:
        for q in range(src_ptr[r, t], src_ptr[r, t + 1]):
            k = src_idx[q]
            if lo <= k < hi:
                fired[nf] = k
                nf += 1
    else:
        for k in range(lo, hi):
            if xorshift_uniform(rng, r) < prob[k]:
                fired[nf] = k
                nf += 1
    return nf


@njit(inline="always")
def record_traces(trace, r, t, tr_idx, tr_vars, var0, var1, var2):
    """``trace[r, t, a, j]`` = state variable ``tr_vars[a]`` (0, 1, 2 -> ``var0..2``) of neuron ``tr_idx[j]``."""
    for j in range(tr_idx.size):
        k = tr_idx[j]
        for a in range(tr_vars.size):
            var = tr_vars[a]
            trace[r, t, a, j] = var0[r, k] if var == 0 else (var1[r, k] if var == 1 else var2[r, k])


@njit(inline="always")
def record_spike(rec_mask, rec_t, rec_n, n_rec, r, t, k):
    """Append ``(t, k)`` to trial ``r``'s spike record if neuron ``k`` is recorded."""
    if rec_mask[k]:
        rec_t[r, n_rec[r]] = t
        rec_n[r, n_rec[r]] = k
        n_rec[r] += 1


def part(x, lo, hi):
    """``x[lo:hi]``, or None when ``x`` is None."""
    return x[lo:hi]


@overload(part, inline="always")
def _part(x, lo, hi):
    if isinstance(x, types.NoneType):
        return lambda x, lo, hi: None
    return lambda x, lo, hi: x[lo:hi]


@njit(inline="always")
def update_population(v, d_exc, d_inh, refr, x_exc, x_inh, coef, layout, spiked, fired, nf, lo, hi):
    """:func:`neurons.lif.lif_step` on neurons ``lo..hi-1`` (any range inside one population), specialised to
    how their coefficients vary; their spikes are appended to ``fired`` from index ``nf`` on.

    ``d_exc``, ``d_inh`` hold the decayed currents ``D[t]`` and receive ``D[t+1]``; ``x_exc``,
    ``x_inh`` are the input buffer, or None for a population without one.
    """
    v, d_exc, d_inh, refr = v[lo:hi], d_exc[lo:hi], d_inh[lo:hi], refr[lo:hi]
    x_exc, x_inh = part(x_exc, lo, hi), part(x_inh, lo, hi)
    if layout == lif.UNIFORM:
        return lif.lif_step(v, d_exc, d_inh, refr, x_exc, x_inh, lif.uniform_coefficients(coef, lo), spiked, fired,
                            nf, lo, False, True)
    if layout == lif.PER_NEURON_DECAYS:
        return lif.lif_step(v, d_exc, d_inh, refr, x_exc, x_inh, lif.decay_coefficients(coef, lo, hi), spiked,
                            fired, nf, lo, False, True)
    return lif.lif_step(v, d_exc, d_inh, refr, x_exc, x_inh, lif.coefficients(coef, lo, hi), spiked, fired, nf, lo,
                        False, True)


@njit(inline="always")
def charge_population(v, d_exc, d_inh, refr, x_exc, x_inh, now_exc, now_inh, coef, layout, spiked, fired, nf, lo, hi,
                      has_x, keep):
    """:func:`update_population` on neurons ``lo..hi-1``, reading the input buffer only if ``has_x``
    (a population that only direct synapses reach); with ``keep``, ``i[t]`` goes into ``now`` first."""
    if has_x:
        if keep:
            keep_currents(d_exc, d_inh, x_exc, x_inh, now_exc, now_inh, coef, lo, hi)
        return update_population(v, d_exc, d_inh, refr, x_exc, x_inh, coef, layout, spiked, fired, nf, lo, hi)
    if keep:
        keep_currents(d_exc, d_inh, None, None, now_exc, now_inh, coef, lo, hi)
    return update_population(v, d_exc, d_inh, refr, None, None, coef, layout, spiked, fired, nf, lo, hi)


@njit(inline="always")
def keep_currents(d_exc, d_inh, x_exc, x_inh, now_exc, now_inh, coef, lo, hi):
    """:func:`neurons.lif.current_now` on neurons ``lo..hi-1``: ``now = i[t]``, computed before their update
    (``bias_syn`` read per neuron: this runs only on the steps whose currents are kept)."""
    lif.current_now(d_exc[lo:hi], d_inh[lo:hi], part(x_exc, lo, hi), part(x_inh, lo, hi), now_exc[lo:hi],
                    now_inh[lo:hi], lif.coefficients(coef, lo, hi))


@njit(inline="always")
def deliver(buf, r, base, slots, s0, s1, idx, w, d, dk):
    """Add synapses ``s0..s1-1`` (targets ``idx``, weights ``w``) into ``buf[r, (base + delay) mod slots]``.

    ``base < slots`` and every delay ``< slots``. ``dk``: the delay all of them share (one slot,
    no per-synapse lookup), or -1 (each synapse's own ``d``).
    """
    if dk >= 0:  # (indexed in full: a view per spike costs reference counting)
        slot = base + dk
        slot = slot - slots if slot >= slots else slot
        for syn in range(s0, s1):
            buf[r, slot, idx[syn]] += w[syn]
        return
    for syn in range(s0, s1):
        slot = base + d[syn]
        if slot >= slots:
            slot -= slots
        buf[r, slot, idx[syn]] += w[syn]


@njit(inline="always")
def deliver_spikes(buf, r, base, slots, csr, spikes, n_spikes, parts, q0, q1):
    """Deliver ``spikes[:n_spikes]``, in order, through their synapses onto thread ranges ``q0 .. q1-1``.

    ``csr = (ptr, idx, w, d, row_delay)``; row ``k``'s synapses onto range ``q`` are
    ``ptr[k * parts + q] .. ptr[k * parts + q + 1] - 1`` (one range: ``parts = 1``).
    """
    ptr, idx, w, d, row_delay = csr
    for j in range(n_spikes):
        k = spikes[j]
        deliver(buf, r, base, slots, ptr[k * parts + q0], ptr[k * parts + q1], idx, w, d, row_delay[k])


@njit(inline="always")
def deliver_direct(x, r, csr, spikes, n_spikes, parts, q0, q1):
    """Add ``spikes[:n_spikes]``'s direct synapses (``csr = (ptr, idx, w)``, rows grouped as in
    :func:`deliver_spikes`), in order, straight into ``x[r]`` (trial ``r``'s decayed currents ``D``)."""
    ptr, idx, w = csr
    for j in range(n_spikes):
        k = spikes[j]
        for syn in range(ptr[k * parts + q0], ptr[k * parts + q1]):
            x[r, idx[syn]] += w[syn]
