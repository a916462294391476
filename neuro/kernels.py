"""The compiled pieces of one simulator step, inlined into the time loops of :mod:`neuro.simulator`.

Input spikes (given or Poisson), the LIF update of a range of neurons, spike recording,
state traces, and the delivery of spikes through their synapses straight into the targets'
decayed currents ``D`` (``docs/time.md``): the spikes of the last steps are kept in a history
``hist[trial, (t mod H), j]`` (``hist_n`` of them per step), and at the start of step ``t`` those
of step ``t - d`` are delivered through their synapses of delay ``d``.
"""

from __future__ import annotations

import numba
from numba import njit

from neurons import lif


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


@njit(inline="always")
def update_population(v, d_exc, d_inh, refr, coef, layout, spiked, fired, nf, lo, hi):
    """:func:`neurons.lif.lif_step` on neurons ``lo..hi-1`` (any range inside one population), specialised to
    how their coefficients vary; their spikes are appended to ``fired`` from index ``nf`` on.

    ``d_exc``, ``d_inh`` hold the decayed currents ``D[t]`` with every input due at ``t`` already added
    (no input buffer), and receive ``D[t+1]``.
    """
    v, d_exc, d_inh, refr = v[lo:hi], d_exc[lo:hi], d_inh[lo:hi], refr[lo:hi]
    if layout == lif.UNIFORM:
        return lif.lif_step(v, d_exc, d_inh, refr, None, None, lif.uniform_coefficients(coef, lo), spiked, fired,
                            nf, lo, False, True)
    if layout == lif.PER_NEURON_DECAYS:
        return lif.lif_step(v, d_exc, d_inh, refr, None, None, lif.decay_coefficients(coef, lo, hi), spiked,
                            fired, nf, lo, False, True)
    return lif.lif_step(v, d_exc, d_inh, refr, None, None, lif.coefficients(coef, lo, hi), spiked, fired, nf, lo,
                        False, True)


@njit(inline="always")
def charge_population(v, d_exc, d_inh, refr, now_exc, now_inh, coef, layout, spiked, fired, nf, lo, hi, keep):
    """:func:`update_population` on neurons ``lo..hi-1``; with ``keep``, ``i[t]`` goes into ``now`` first
    (:func:`neurons.lif.current_now`; ``bias_syn`` read per neuron: only on the steps whose currents are kept)."""
    if keep:
        lif.current_now(d_exc[lo:hi], d_inh[lo:hi], now_exc[lo:hi], now_inh[lo:hi], lif.coefficients(coef, lo, hi))
    return update_population(v, d_exc, d_inh, refr, coef, layout, spiked, fired, nf, lo, hi)


@njit(inline="always")
def deliver_ranges(dec, r, idx, w, lo, hi, n_ranges):
    """Add synapses ``lo[i] .. hi[i]-1`` for ``i < n_ranges``, in order, into ``dec[r]``."""
    for i in range(n_ranges):
        for s in range(lo[i], hi[i]):
            dec[r, idx[s]] += w[s]


@njit(inline="always")
def deliver_runs(dec, r, syn, hist, slot, j0, j1, col, parts, q0, q1, lo, hi, n_ranges):
    """Queue the synapses of delay column ``col`` onto thread ranges ``q0 .. q1-1`` of the spikes
    ``hist[r, slot, j0:j1]``, in order, as ranges ``lo[i] .. hi[i]-1`` (from ``i = n_ranges`` on) for
    :func:`deliver_ranges` into ``dec[r]`` (trial ``r``'s decayed currents, excitatory ``0..n-1``,
    inhibitory ``n..2n-1``); delivers and empties the queue when it is full. Returns its new length.

    ``syn = (ptr, run, idx, w)``: row ``k``'s synapses are ``ptr[k] .. ptr[k+1]-1``, sorted by delay
    and then thread range; those of delay column ``c`` onto range ``q`` are
    ``ptr[k] + run[k, c * parts + q] .. ptr[k] + run[k, c * parts + q + 1] - 1`` (in projection and
    CSR order). Collecting the ranges first, then adding, keeps the loads of the row pointers out
    of the synapse loops (a row holds a few synapses of each delay: 4.2 against 6.2 ns per event).
    """
    ptr, run, idx, w = syn
    c0 = col * parts + q0
    c1 = col * parts + q1
    for j in range(j0, j1):  # (arrays indexed in full: a view costs reference counting)
        k = hist[r, slot, j]
        base = ptr[k]
        lo[n_ranges] = base + run[k, c0]
        hi[n_ranges] = base + run[k, c1]
        n_ranges += 1
        if n_ranges == lo.size:
            deliver_ranges(dec, r, idx, w, lo, hi, n_ranges)
            n_ranges = 0
    return n_ranges


@njit(inline="always")
def deliver_zero_delay(dec, r, syn, hist, slot, j0, j1, parts, q0, q1, lo, hi):
    """The zero-delay events of the spikes ``hist[r, slot, j0:j1]`` onto thread ranges ``q0 .. q1-1``, in order,
    into ``dec[r]`` (delay column 0 of :func:`deliver_runs`; ``lo``, ``hi``: its scratch)."""
    deliver_ranges(dec, r, syn[2], syn[3], lo, hi, deliver_runs(dec, r, syn, hist, slot, j0, j1, 0, parts, q0, q1,
                                                                  lo, hi, 0))


@njit(inline="always")
def deliver_history(dec, r, syn, hist, hist_n, t, delays, first, parts, q0, q1, lo, hi):
    """Every event due at step ``t`` of delay ``d >= 1``, into ``dec[r]`` onto thread ranges ``q0 .. q1-1``.

    ``delays[first:]``: the network's delays ``>= 1``, ascending (``delays[c]`` has delay column ``c``
    of :func:`deliver_runs`); for each, the spikes of step ``t - d`` (history slot ``(t - d) mod H``)
    in the order they were emitted. ``lo``, ``hi``: scratch for :func:`deliver_runs`.
    """
    slots = hist.shape[1]
    n_ranges = 0
    for c in range(first, delays.size):
        d = delays[c]
        if d > t:
            break
        slot = (t - d) % slots
        n_ranges = deliver_runs(dec, r, syn, hist, slot, 0, hist_n[r, slot], c, parts, q0, q1, lo, hi, n_ranges)
    deliver_ranges(dec, r, syn[2], syn[3], lo, hi, n_ranges)
