"""Run a network in Lava and in neuro's engines on the same input spikes and compare spike for spike.

* ``fixed``: :func:`deployment.quantize.quantize` -> neuro's fixed-point engine
  (:class:`~neuro.fixed_point.FixedPointSimulator`) vs Lava ``Loihi2SimCfg(select_tag="fixed_pt")``.
  Must be identical: both run the same integer arithmetic.
* ``float``: neuro's float simulator (float64) on the original network vs Lava's float models
  (``floating_pt``) on the normalised network. Identical unless a membrane potential lands
  within float rounding of its threshold (a tie).

:func:`verify_network` is the one call for scripts and the demo; ``report.table()`` prints the
per-population match table and ``report.all_match`` says whether every spike agreed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deployment.lava_export import DEFAULT_MAX_GROUPS, fixed_graph, float_graph, run_graph
from deployment.quantize import DEFAULT_HEADROOM, QuantizationReport, is_readout, quantize
from neuro.fixed_point import FixedPointSimulator
from neuro.network import Network
from neuro.simulator import Simulator

MODES = ("fixed", "float")
FLOAT_TOLERANCE = 1e-9  # float readouts: largest |v_neuro - v_Lava| relative to the largest |v|
CUSTOM_WARNING = ("SoftResetLIF is a custom Lava process (CPU float and bit-accurate models), NOT a built-in "
                  "Loihi neuron")


@dataclass
class MatchRow:
    mode: str
    population: str
    processes: str
    ours: int
    lava: int
    matched: int
    first_mismatch: tuple | None

    @property
    def identical(self) -> bool:
        return self.ours == self.lava == self.matched

    @property
    def percent(self) -> float:
        total = max(self.ours, self.lava)
        return 100.0 if total == 0 else 100.0 * self.matched / total


@dataclass
class VerificationReport:
    """Per (mode, population) spike counts of both sides and how many ``(t, neuron)`` spikes coincide."""

    steps: int
    rows: list = field(default_factory=list)
    quantization: QuantizationReport | None = None
    notes: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    spikes: dict = field(default_factory=dict)  # (mode, population) -> (neuro (t, k), Lava (t, k))
    membranes: dict = field(default_factory=dict)  # (mode, readout) -> largest |v_neuro - v_Lava|: fixed in
    # integer units, float relative to the largest |v|

    @property
    def all_match(self) -> bool:
        exact = all(diff <= (0 if mode == "fixed" else FLOAT_TOLERANCE) for (mode, _), diff in self.membranes.items())
        return bool(self.rows) and all(r.identical for r in self.rows) and exact

    @property
    def uses_custom_process(self) -> bool:
        return any("SoftResetLIF" in r.processes for r in self.rows)

    def table(self) -> str:
        head = (f"{'mode':<6} {'population':<14} {'Lava processes':<28} {'neuro':>8} {'Lava':>8} {'matched':>8} "
                f"{'match':>8}  first mismatch (step, neuron)")
        lines = [f"Lava vs neuro, {self.steps} steps", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.mode:<6} {r.population:<14} {r.processes:<28} {r.ours:>8} {r.lava:>8} {r.matched:>8} "
                         f"{r.percent:>7.2f}%  {'-' if r.first_mismatch is None else r.first_mismatch}")
        for (mode, pop), diff in self.membranes.items():
            lines.append(f"{mode:<6} {pop:<14} readout membrane: largest |neuro - Lava| = {diff:.3g}"
                         + (" (integer units)" if mode == "fixed" else " (relative)"))
        lines.append(f"all spikes identical: {'yes' if self.all_match else 'NO'}")
        lines += [f"note: {n}" for n in self.notes]
        if self.uses_custom_process:
            lines.append(f"warning: {CUSTOM_WARNING}")
        lines += [f"time {k}: {v:.1f} s" for k, v in self.seconds.items()]
        return "\n".join(lines)


def _pairs(t, k) -> np.ndarray:
    return np.unique(np.asarray(t, np.int64) * (1 << 32) + np.asarray(k, np.int64))


def compare(ours, lava) -> tuple[int, int, int, tuple | None]:
    """Counts and the first differing ``(step, neuron)`` of two ``(t, k)`` spike lists."""
    a, b = _pairs(*ours), _pairs(*lava)
    common = np.intersect1d(a, b, assume_unique=True)
    diff = np.setxor1d(a, b, assume_unique=True)
    first = None if diff.size == 0 else (int(diff[0] >> 32), int(diff[0] & 0xFFFFFFFF))
    return a.size, b.size, common.size, first


def source_spikes(network: Network, steps: int, inputs=None, seed: int = 0) -> dict:
    """The spikes of every input population (given rasters, or Poisson draws of ``seed``) as ``(t, k)``."""
    for name in inputs or {}:
        if network.population(name).model == "lif":
            raise ValueError(f"Lava export takes spike inputs only; population {name!r} is LIF (drive it through "
                             "a spike_source population and a projection)")
    names = [p.name for p in network.populations if p.model != "lif"]
    result = Simulator(network, dtype=np.float64).run(steps, inputs, seed=seed, record=names)
    return {name: result.spikes(name) for name in names}


def _processes(graph, population) -> str:
    kinds = [g.process for g in graph.groups if g.population == population]
    return f"{len(kinds)}x {kinds[0]}" if len(set(kinds)) == 1 else "+".join(kinds)


def verify_network(network: Network, steps: int, inputs=None, seed: int = 0, timeout: float = 300.0,
                   modes=MODES, hetero: str = "auto", max_groups: int = DEFAULT_MAX_GROUPS,
                   headroom: int = DEFAULT_HEADROOM, progress: bool = False) -> VerificationReport:
    """Export ``network`` to Lava, run ``steps`` steps in each mode, compare with neuro (module docstring).

    ``inputs`` are spike inputs as for :meth:`neuro.simulator.Simulator.run` (Poisson populations draw
    from ``seed``). ``progress`` shows a bar over the modes (each is one Lava run of seconds to
    minutes). ``timeout`` bounds each Lava run (seconds); a hang raises
    :class:`~deployment.lava_export.LavaTimeout`, a crash :class:`~deployment.lava_export.LavaError`.
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {list(modes)}")
    spikes = source_spikes(network, steps, inputs, seed)
    report = VerificationReport(steps)
    lif_pops = [p.name for p in network.populations if p.model == "lif"]
    readouts = {p.name: None for p in network.populations if is_readout(network, p)} or None
    from tqdm import tqdm

    bar = tqdm(modes, desc="Lava", unit="mode", disable=not progress)
    for mode in bar:
        bar.set_postfix_str(f"{mode}: neuro and Lava, {steps} steps")
        if mode == "fixed":
            fixed, report.quantization = quantize(network, headroom)
            ours = FixedPointSimulator(fixed).run(steps, inputs, seed=seed, record=lif_pops, record_state=readouts)
            graph = fixed_graph(fixed, spikes, steps, hetero, max_groups)
            frame = {name: (0.0, 1.0) for name in readouts or ()}
        else:
            ours = Simulator(network, dtype=np.float64).run(steps, inputs, seed=seed, record=lif_pops,
                                                            record_state=readouts)
            graph = float_graph(network, spikes, steps, hetero, max_groups)
            frame = {name: _normalised_frame(network, name) for name in readouts or ()}
        lava = run_graph(graph, timeout)
        report.seconds[f"Lava {mode}"] = lava.seconds
        report.notes += [f"{mode}: {n}" for n in graph.notes]
        empty = (np.empty(0, np.int64), np.empty(0, np.int64))
        for pop in lif_pops:
            report.spikes[(mode, pop)] = (ours.spikes(pop), lava.spikes.get(pop, empty))
            counts = compare(*report.spikes[(mode, pop)])
            report.rows.append(MatchRow(mode, pop, _processes(graph, pop), *counts))
        for pop in readouts or ():
            offset, unit = frame[pop]
            v_ours = (ours.trace(pop, "v")[0] - offset) / unit
            diff = float(np.abs(v_ours - lava.states[pop]).max())
            report.membranes[(mode, pop)] = diff if mode == "fixed" else diff / max(np.abs(v_ours).max(), 1e-300)
    return report


def _normalised_frame(network, name) -> tuple[np.ndarray, np.ndarray]:
    """Lava's float models run each neuron normalised to reset 0 and threshold 1: ``v' = (v - v_reset) / theta``."""
    p = network.population(name).params
    return p["v_reset"], p["v_th"] - p["v_reset"]


def plot_report(report: VerificationReport, path, max_neurons: int = 100):
    """Raster per (mode, population): neuro's spikes as dots, Lava's as rings, mismatches in red; saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    keys = list(report.spikes)
    fig, axes = plt.subplots(len(keys), 1, figsize=(9, 2.2 * len(keys)), squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], keys):
        (t_a, k_a), (t_b, k_b) = report.spikes[key]
        a, b = set(zip(t_a.tolist(), k_a.tolist())), set(zip(t_b.tolist(), k_b.tolist()))
        for spikes, style in ((a & b, dict(c="k", s=4)), (a - b, dict(c="r", s=12)),
                              (b - a, dict(facecolors="none", edgecolors="r", s=20))):
            pts = np.array([p for p in spikes if p[1] < max_neurons]).reshape(-1, 2)
            ax.scatter(pts[:, 0], pts[:, 1], marker="o", linewidths=0.6, **style)
        row = next(r for r in report.rows if (r.mode, r.population) == key)
        ax.set_ylabel(f"{key[1]}\nneuron")
        ax.set_title(f"{key[0]}: {row.matched}/{max(row.ours, row.lava)} spikes identical ({row.percent:.2f}%)",
                     fontsize=9)
    axes[-1, 0].set_xlabel("time step (black: neuro = Lava; red dot: neuro only; red ring: Lava only)")
    return save_figure(fig, path)
