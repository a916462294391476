"""Compile neuro's time semantics to Lava's: every connection process takes at least one step.

In neuro a projection of delay ``d`` delivers a spike of step ``t`` at ``t + d``, and ``d = 0``
(a trained model's feed-forward layers) reaches the target in the same step. In Lava each
``Dense`` hop adds one step. The exporter therefore runs population ``p`` ``shift[p]`` steps
behind neuro: its spike of neuro step ``t`` happens at Lava step ``t + shift[p]``. A projection
``q -> p`` of delay ``d`` then needs the Lava delay::

    lava_delay = d + shift[p] - shift[q]        (must be 1..64: Dense = 1, DelayDense = 2..64)

and the smallest shifts that make every Lava delay at least 1 are the longest paths::

    shift[p] = max(0, max over projections q -> p of shift[q] + 1 - min delay of q -> p)

Input populations keep shift 0. A layer at depth ``k`` of a feed-forward chain runs ``k`` steps
late; a recurrent projection of delay 1 stays 1; a skip connection across ``k`` layers gets
``k + 1`` steps (a ``DelayDense``). A cycle whose delays add up to fewer steps than it has
projections cannot run on Lava at all and is refused, as is a Lava delay beyond 64.
Worked example: ``docs/time.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuro.network import Network

MAX_LAVA_DELAY = 64  # Dense (1) + DelayDense (up to 63 more)


class TimingError(ValueError):
    """The network's delays cannot be expressed with Lava's one-step-per-hop connections."""


@dataclass(frozen=True)
class LavaTiming:
    """``shifts``: population -> steps Lava runs behind neuro; ``delays``: projection -> Lava delay per synapse."""

    shifts: dict
    delays: dict

    @property
    def max_shift(self) -> int:
        return max(self.shifts.values(), default=0)

    def describe(self) -> str:
        shifted = {k: v for k, v in self.shifts.items() if v}
        if not shifted:
            return "timing: no shift (every delay is already >= 1)"
        return "timing: Lava runs " + ", ".join(f"{k!r} {v} step(s)" for k, v in shifted.items()) + \
            " behind neuro (zero-delay projections; spikes are compared after undoing the shift)"


def _min_delays(network: Network) -> list:
    """``(pre, post, min delay, projection name)`` of every projection with synapses."""
    edges = []
    for proj in network.projections:
        s = proj.active()
        if s.nnz:
            edges.append((proj.pre, proj.post, int(s.delays.min()), proj.name))
    return edges


def _cycle_through(edges, shifts, start) -> str:
    """A readable cycle that keeps raising ``start``'s shift (for the error message)."""
    names = [start]
    for _ in range(len(shifts)):
        best = max((e for e in edges if e[1] == names[-1]), key=lambda e: shifts[e[0]] + 1 - e[2])
        if best[0] in names:
            return " -> ".join(names[names.index(best[0]):][::-1] + [best[0]])
        names.append(best[0])
    return " -> ".join(names[::-1])


def compile_timing(network: Network) -> LavaTiming:
    """The shifts and Lava delays of ``network`` (module docstring); raises :class:`TimingError`."""
    edges = _min_delays(network)
    shifts = {pop.name: 0 for pop in network.populations}
    for _ in range(len(shifts) + 1):
        changed = False
        for pre, post, d_min, _name in edges:
            need = shifts[pre] + 1 - d_min
            if need > shifts[post]:
                shifts[post], changed = need, True
        if not changed:
            break
    else:
        worst = max(shifts, key=shifts.get)
        raise TimingError(f"the cycle {_cycle_through(edges, shifts, worst)} has fewer delay steps than "
                          "projections; in Lava every projection takes at least one step, so this loop cannot "
                          "run there (give its feedback projection a delay that covers every hop)")
    delays = {}
    for proj in network.projections:
        s = proj.active()
        d = s.delays.astype(np.int64) + shifts[proj.post] - shifts[proj.pre]
        if d.size and d.max() > MAX_LAVA_DELAY:
            j = int(np.argmax(d))
            raise TimingError(f"projection {proj.name!r}: synapse {j} needs a Lava delay of {int(d[j])} steps "
                              f"(delay {int(s.delays[j])} + shift {shifts[proj.post]} of {proj.post!r} - shift "
                              f"{shifts[proj.pre]} of {proj.pre!r}); Lava holds 1..{MAX_LAVA_DELAY}")
        delays[proj.name] = d
    return LavaTiming(shifts, delays)
