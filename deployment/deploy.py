"""Deploy a trained classifier: quantize, run samples in neuro's fixed-point engine and in Lava, decode, compare.

The samples run back to back in one Lava run per chunk, each in a slot of ``interval = T + D``
steps (``T`` input steps, ``D`` the largest delay): every population is reset at the start of
its slot (:mod:`deployment.lava_export`). neuro's fixed-point engine runs each sample as its own
trial of ``interval`` steps; the first ``T`` steps of every sample must agree spike for spike
(and the readout membrane exactly). The class is decoded as the torch model does:

* membrane readout: ``argmax_k sum_{t<T} v_k[t]`` (the mean up to a common factor);
* spike-count readout: ``argmax_k sum_{t<T} s_k[t]``.

Ties go to the lowest class index, as ``torch.argmax``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from deployment.lava_export import DEFAULT_MAX_GROUPS, fixed_graph, run_graph
from deployment.quantize import DEFAULT_HEADROOM, QuantizationReport, is_readout, quantize
from neuro.fixed_point import FixedPointSimulator
from neuro.network import Network


@dataclass
class LayerMatch:
    """Spikes of one population over all samples (first ``T`` steps of each): neuro, Lava, coinciding."""

    population: str
    neuro: int = 0
    lava: int = 0
    matched: int = 0
    identical_samples: int = 0

    @property
    def identical(self) -> bool:
        return self.neuro == self.lava == self.matched


@dataclass
class DeployReport:
    """Accuracies (float, neuro fixed point, Lava fixed_pt), per-layer spike match, timing."""

    samples: int
    steps: int
    interval: int
    accuracy: dict = field(default_factory=dict)
    layers: list = field(default_factory=list)
    readout_identical_samples: int | None = None
    class_agreement: float = 0.0
    seconds: dict = field(default_factory=dict)
    quantization: QuantizationReport | None = None
    notes: list = field(default_factory=list)
    example: dict = field(default_factory=dict)  # sample 0: population -> (neuro, Lava) spikes (t, k) or v [T, n]
    classes: dict = field(default_factory=dict)  # per sample: "label", "float", "neuro fixed point", "Lava fixed_pt"

    @property
    def compared(self) -> bool:
        """Whether Lava ran (``lava=False`` runs neuro's fixed-point engine only)."""
        return "Lava fixed_pt" in self.accuracy

    @property
    def all_match(self) -> bool:
        if not self.compared:
            return False
        spikes = all(m.identical and m.identical_samples == self.samples for m in self.layers)
        readout = self.readout_identical_samples in (None, self.samples)
        return spikes and readout

    def table(self) -> str:
        acc = "  ".join(f"{k} {v:.4f}" for k, v in self.accuracy.items())
        lines = [f"{self.samples} samples x {self.steps} steps (Lava slot {self.interval} steps)",
                 f"accuracy: {acc}"]
        if not self.compared:
            return "\n".join(lines + [f"time {k}: {v:.3f} s" for k, v in self.seconds.items()] +
                             [f"note: {n}" for n in self.notes])
        lines += ["",
                 f"{'population':<14} {'neuro':>9} {'Lava':>9} {'matched':>9} {'identical samples':>18}"]
        for m in self.layers:
            lines.append(f"{m.population:<14} {m.neuro:>9} {m.lava:>9} {m.matched:>9} "
                         f"{m.identical_samples:>10}/{self.samples}")
        if self.readout_identical_samples is not None:
            lines.append(f"readout membrane identical in {self.readout_identical_samples}/{self.samples} samples")
        lines.append(f"Lava class = neuro fixed-point class in {self.class_agreement:.2%} of samples")
        lines.append(f"all spikes identical: {'yes' if self.all_match else 'NO'}")
        lines += [f"time {k}: {v:.3f} s" for k, v in self.seconds.items()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("quantization", "layers", "example")}
        out["layers"] = [asdict(m) for m in self.layers]
        out["all_match"] = self.all_match if self.compared else None
        if self.quantization is not None:
            out["quantization"] = [dict(zip(("where", "parameter", "max_abs_err", "max_rel_err", "note"), row))
                                   for row in self.quantization.rows]
        return out

    def write_json(self, path) -> None:
        from neuro.io import write_json

        write_json(path, self.to_json())


def _input_population(network: Network) -> str:
    sources = [p.name for p in network.populations if p.model != "lif"]
    if len(sources) != 1 or network.population(sources[0]).model != "spike_source":
        raise ValueError(f"deploy needs exactly one spike_source input population, got {sources}")
    return sources[0]


def _output_population(network: Network):
    lif = [p for p in network.populations if p.model == "lif"]
    leaves = [p for p in lif if not any(q.pre == p.name for q in network.projections)]
    if len(leaves) != 1:
        raise ValueError(f"deploy needs one output population (no outgoing projections), got "
                         f"{[p.name for p in leaves]}")
    return leaves[0]


def _keep_steps(b, t, k, steps):
    keep = t < steps
    return b[keep].astype(np.int64), t[keep].astype(np.int64), k[keep].astype(np.int64)


def _trial_spikes(trials, steps):
    """``(sample, t, k)`` with ``t < steps`` from one ``(t, k)`` per trial (neuro's engine)."""
    parts = [(np.full(t.size, b), t, k) for b, (t, k) in enumerate(trials)]
    b, t, k = (np.concatenate(x) for x in zip(*parts)) if parts else (np.empty(0, np.int64),) * 3
    return _keep_steps(b, t, k, steps)


def _slot_spikes(spikes, steps, interval):
    """``(sample, t, k)`` with ``t < steps`` from one run of consecutive ``interval``-step slots (Lava)."""
    t_all, k = spikes
    b, t = np.divmod(t_all, interval)
    return _keep_steps(b, t, k, steps)


def _match(population, ours, lava, samples, steps, n) -> LayerMatch:
    key = lambda b, t, k: (b * steps + t) * n + k  # noqa: E731
    a, c = np.unique(key(*ours)), np.unique(key(*lava))
    common = np.intersect1d(a, c, assume_unique=True)
    differs = np.unique(np.setxor1d(a, c, assume_unique=True) // (steps * n))
    return LayerMatch(population, a.size, c.size, common.size, samples - differs.size)


def _first_sample(spikes) -> tuple[np.ndarray, np.ndarray]:
    b, t, k = spikes
    return t[b == 0], k[b == 0]


def plot_example(report: DeployReport, path, max_neurons: int = 64):
    """Sample 0 on both engines: a raster per spiking layer (neuro dots, Lava rings) and the readout membrane
    (neuro lines, Lava markers), with the accuracies in the title; saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    fig, axes = plt.subplots(len(report.example), 1, figsize=(8, 2.4 * len(report.example)), squeeze=False,
                             sharex=True)
    for ax, (pop, (ours, lava)) in zip(axes[:, 0], report.example.items()):
        if isinstance(ours, tuple):
            for (t, k), style in ((ours, dict(c="k", s=6)), (lava, dict(facecolors="none", edgecolors="C1", s=30))):
                keep = k < max_neurons
                ax.scatter(t[keep], k[keep], marker="o", linewidths=0.8, **style)
            ax.set_ylabel(f"{pop}\nneuron")
        else:
            for j in range(ours.shape[1]):
                ax.plot(ours[:, j], color=f"C{j % 10}", lw=1)
                ax.plot(lava[:, j], "o", color=f"C{j % 10}", ms=3, mfc="none")
            ax.set_ylabel(f"{pop}\nv (integer units)")
    acc = ", ".join(f"{k} {100 * v:.2f}%" for k, v in report.accuracy.items())
    axes[0, 0].set_title(f"sample 0 (neuro: dots/lines, Lava: rings)  |  {report.samples} samples: {acc}", fontsize=8)
    axes[-1, 0].set_xlabel("time step")
    return save_figure(fig, path)


def _counts(spikes, n_samples, n) -> np.ndarray:
    """Spike counts ``[samples, n]`` from ``(sample, t, k)``."""
    counts = np.zeros((n_samples, n), np.int64)
    np.add.at(counts, (spikes[0], spikes[2]), 1)
    return counts


@dataclass
class _Side:
    """One engine's outputs over all samples: ``(sample, t, k)`` per spiking population, readout ``v[N, T, n]``."""

    spikes: dict
    v: np.ndarray | None


def _run_fixed(fixed, source, padded, spiking, readout, steps) -> _Side:
    n_samples, interval = padded.shape[:2]
    result = FixedPointSimulator(fixed).run(interval, [{source: padded[b]} for b in range(n_samples)],
                                            record=spiking + ([readout] if readout else []),
                                            record_state={readout: None} if readout else None, state_vars=("v",))
    spikes = {pop: _trial_spikes([result.spikes(pop, b) for b in range(n_samples)], steps) for pop in spiking}
    return _Side(spikes, result.trace(readout, "v")[:, :steps] if readout else None)


def _run_lava(fixed, source, padded, spiking, readout, steps, options, report) -> _Side:
    """Lava ``fixed_pt`` on ``options["chunk"]`` samples per run; adds its times and graph to ``report``."""
    from tqdm import tqdm

    n_samples, interval, n_in = padded.shape
    parts, states, lava_seconds, export_seconds = {pop: [] for pop in spiking}, [], 0.0, 0.0
    chunk = options["chunk"]
    for lo in tqdm(range(0, n_samples, chunk), desc="Lava fixed_pt", unit="chunk", disable=not options["progress"]):
        hi = min(lo + chunk, n_samples)
        t, k = np.nonzero(padded[lo:hi].reshape(-1, n_in))
        begin = time.perf_counter()
        graph = fixed_graph(fixed, {source: (t, k)}, (hi - lo) * interval, options["hetero"],
                            options["max_groups"], interval, steps)
        export_seconds += time.perf_counter() - begin
        lava = run_graph(graph, options["timeout"])
        lava_seconds += lava.seconds
        for pop in spiking:
            t_l, k_l = lava.spikes.get(pop, (np.empty(0, np.int64),) * 2)
            parts[pop].append((t_l + lo * interval, k_l))
        if readout:
            states.append(lava.states[readout])
        if lo == 0:
            report.notes.append(graph.describe())
    report.seconds.update({"export (graph build)": export_seconds, "Lava": lava_seconds,
                           "Lava per sample": lava_seconds / n_samples})
    spikes = {pop: _slot_spikes(tuple(np.concatenate(x) for x in zip(*parts[pop])), steps, interval)
              for pop in spiking}
    v = np.concatenate(states).reshape(n_samples, interval, -1)[:, :steps] if readout else None
    return _Side(spikes, v)


def _classes(side: _Side, output, n_samples) -> np.ndarray:
    """The decoded class per sample: membrane readout ``argmax sum_t v``, else spike counts."""
    if side.v is not None:
        return side.v.sum(1).argmax(1)
    return _counts(side.spikes[output.name], n_samples, output.size).argmax(1)


def deploy_samples(network: Network, x, labels, float_logits=None, *, headroom: int = DEFAULT_HEADROOM,
                   hetero: str = "auto", max_groups: int = DEFAULT_MAX_GROUPS, chunk: int = 100,
                   timeout: float = 600.0, progress: bool = True, lava: bool = True) -> DeployReport:
    """Run binary samples ``x[N, T, ...]`` through neuro's fixed-point engine and Lava ``fixed_pt`` (module docstring).

    ``float_logits[N, classes]`` (the float model's output) gives the float accuracy.
    ``chunk`` samples share one Lava run, bounded by ``timeout`` seconds; ``lava=False`` runs
    neuro's fixed-point engine only (its spikes are Lava's, as every deploy run checks).
    """
    x = np.asarray(x)
    labels = np.asarray(labels)
    if x.ndim < 3 or x.shape[0] != labels.shape[0]:
        raise ValueError(f"x must be [N, T, ...] with one label per sample, got x {x.shape}, labels {labels.shape}")
    n_samples, steps = x.shape[:2]
    flat = x.reshape(n_samples, steps, -1)
    if not np.isin(flat, (0, 1)).all():
        raise ValueError("deploy takes binary input spikes (x > 0)")
    if int(chunk) != chunk or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    source, output = _input_population(network), _output_population(network)
    if flat.shape[2] != network.population(source).size:
        raise ValueError(f"samples have {flat.shape[2]} inputs, population {source!r} has "
                         f"{network.population(source).size}")
    start = time.perf_counter()
    fixed, qreport = quantize(network, headroom)
    readout = output.name if is_readout(network, output) else None
    delay = max([int(p.active().delays.max()) for p in network.projections if p.active().nnz] + [0])
    interval = steps + delay
    spiking = [p.name for p in network.populations if p.model == "lif" and p.name != readout]
    report = DeployReport(n_samples, steps, interval, quantization=qreport)
    report.seconds["quantize"] = time.perf_counter() - start
    padded = np.zeros((n_samples, interval, flat.shape[2]), bool)
    padded[:, :steps] = flat > 0

    start = time.perf_counter()
    ours = _run_fixed(fixed, source, padded, spiking, readout, steps)
    report.seconds["neuro fixed point"] = time.perf_counter() - start
    report.classes["label"] = labels.tolist()
    if float_logits is not None:
        report.classes["float"] = np.asarray(float_logits).argmax(1).tolist()
    ours_cls = _classes(ours, output, n_samples)
    report.classes["neuro fixed point"] = ours_cls.tolist()
    if not lava:
        report.notes.append("Lava not run (lava=False): neuro fixed point only")
        return _with_accuracy(report)
    options = {"chunk": int(chunk), "timeout": timeout, "hetero": hetero, "max_groups": max_groups,
               "progress": progress}
    theirs = _run_lava(fixed, source, padded, spiking, readout, steps, options, report)
    for pop in spiking:
        report.layers.append(_match(pop, ours.spikes[pop], theirs.spikes[pop], n_samples, steps,
                                    network.population(pop).size))
        report.example[pop] = tuple(_first_sample(side.spikes[pop]) for side in (ours, theirs))
    if readout:
        report.readout_identical_samples = int(np.all(ours.v == theirs.v, axis=(1, 2)).sum())
        report.example[readout] = (ours.v[0], theirs.v[0])
    lava_cls = _classes(theirs, output, n_samples)
    report.classes["Lava fixed_pt"] = lava_cls.tolist()
    report.class_agreement = float((ours_cls == lava_cls).mean())
    return _with_accuracy(report)


def _with_accuracy(report: DeployReport) -> DeployReport:
    labels = np.asarray(report.classes["label"])
    report.accuracy = {k: float((np.asarray(v) == labels).mean()) for k, v in report.classes.items() if k != "label"}
    return report


def sample_subset(n_test: int, samples: int | None, seed: int = 0) -> np.ndarray:
    """Indices of ``samples`` test samples drawn without replacement by ``seed`` (in order), or all of them.

    Test sets are often stored class by class, so the first ``samples`` would miss classes.
    """
    if samples is None or samples >= n_test:
        return np.arange(n_test)
    if int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    return np.sort(np.random.default_rng(seed).choice(n_test, int(samples), replace=False))


def deploy_run(run_dir, samples: int | None = None, seed: int = 0, **kwargs) -> DeployReport:
    """Deploy the model of a ``neuro train`` output folder on its test set (``samples`` of it, drawn by ``seed``)."""
    from pathlib import Path

    import torch

    from neuro.training.convert import to_network
    from neuro.training.data import load_frames
    from neuro.training.trainer import MODEL, load_model

    run_dir = Path(run_dir)
    if not (run_dir / MODEL).is_file():
        raise ValueError(f"{run_dir}: no {MODEL} (pass the output folder of a finished `neuro train` run)")
    model, cfg, input_shape = load_model(run_dir / MODEL)
    data = load_frames(cfg["data"], kwargs.get("progress", True))
    subset = sample_subset(len(data.y_test), samples, seed)
    x, y = data.x_test[subset], data.y_test[subset]
    qat_layers = [m for m in model.modules() if getattr(m, "qat", False)]
    with torch.no_grad():
        logits = model(x.transpose(0, 1).float()).numpy()
        float_logits = logits
        if qat_layers:  # the float model: the same weights without the fixed-point forward
            try:
                for layer in qat_layers:
                    layer.qat = False
                float_logits = model(x.transpose(0, 1).float()).numpy()
            finally:
                for layer in qat_layers:
                    layer.qat = True
    report = deploy_samples(to_network(model, input_shape), x.numpy(), y.numpy(), float_logits, **kwargs)
    if len(subset) < len(data.y_test):
        report.notes.append(f"{len(subset)} of {len(data.y_test)} test samples, drawn with seed {seed}")
    if qat_layers:
        classes = dict(report.classes)
        report.classes = {"label": classes.pop("label"), "float": classes.pop("float"),
                          "QAT forward (torch)": logits.argmax(1).tolist(), **classes}
        _with_accuracy(report)
        report.notes.append("trained with quantization-aware training (model.qat): 'float' is the same weights "
                            "run without the fixed-point forward")
    return report
