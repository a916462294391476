"""GraNet on the event-driven :class:`neuro.Network`: masked training layers -> sparse CSR -> event simulator.

A :class:`~neuro.training.SpikingNet` (``Dense`` LIF layers, membrane ``Readout``;
the layers that convert to a ``Network`` exactly, ``docs/training.md``) is trained
with GraNet masks on its ``nn.Linear`` synapses (:mod:`neuro.compat.granet`).
:func:`sparse_network` converts it with :func:`neuro.training.convert.to_network`
and keeps in each projection only the synapses whose mask entry is 1,

    CSR_l = {(pre j, post i, W_l[i, j]) : mask_l[i, j] = 1}

(a kept weight that is exactly 0 is still stored; a masked one never is), so
``net.n_synapses`` equals the masks' non-zero count. :func:`event_metrics` runs the
test set through :class:`neuro.simulator.Simulator` (one trial per sample) and
reports its accuracy (``argmax_c mean_t v_c[t]`` of the readout), the agreement
with the torch forward pass (spikes and predicted classes), the stored synapses,
the synaptic operations measured from the simulated spikes (:func:`neuro.lnp.stats.sops`:
``SOPs = sum_t sum_i s_i[t] fanout_i``, input spikes included), and the simulator
wall time per sample (best of ``repeats`` runs, so JIT compilation is not counted),
next to the time of the same trained weights stored densely (``to_network``, zeros
kept: the same spikes, every synapse touched), timed alternately with it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuro.compat.common import Split
from neuro.network import Network
from neuro.training import Dense, Readout, SpikingNet
from neuro.training.convert import INPUT, to_network

DATASETS = ("rate_digits", "digits_nmnist")


class BatchFirst(nn.Module):
    """``net`` taking ``x[B, T, ...]`` (the compat training loop's layout) instead of ``[T, B, ...]``."""

    def __init__(self, net: SpikingNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(0, 1))


def spiking_net(n_inputs: int, hidden, n_classes: int, seed: int, **lif) -> BatchFirst:
    """``Dense(n_inputs, h_1) -> ... -> Readout(h_L, n_classes)`` with seeded initial weights."""
    sizes = [int(n_inputs), *(int(h) for h in hidden), int(n_classes)]
    if min(sizes) < 1 or len(sizes) < 3:
        raise ValueError(f"spiking_net needs positive sizes [inputs, hidden..., classes], got {sizes}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [Dense(a, b, **lif) for a, b in zip(sizes[:-2], sizes[1:-1])]
        layers.append(Readout(sizes[-2], sizes[-1], **lif))
    return BatchFirst(SpikingNet(layers))


def load_event_split(dataset: str, time_steps: int, seed: int = 0) -> Split:
    """Binary spike inputs ``x[N, T, features]`` (float32) for training and the event simulator.

    ``rate_digits``: scikit-learn digits rate-coded over ``time_steps`` steps
    (:func:`neuro.training.data.rate_coded_digits`, 1397 train / 400 test).
    ``digits_nmnist``: the generated digits-as-N-MNIST frames of ``neuro train``'s
    default data section (``time_steps`` bins, 2 x 17 x 17 flattened to 578 inputs).
    """
    from neuro.training import data

    if dataset == "rate_digits":
        frames = data.rate_coded_digits(time_steps, seed=seed)
    elif dataset == "digits_nmnist":
        from neuro.training.config import DEFAULTS as TRAIN_DEFAULTS

        frames = data.load_frames({**TRAIN_DEFAULTS["data"], "time_bins": time_steps})
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")

    def flat(x):
        return x.reshape(*x.shape[:2], -1).float()

    return Split(flat(frames.x_train), frames.y_train, flat(frames.x_test), frames.y_test)


def sparse_network(model: SpikingNet, input_shape) -> Network:
    """``to_network(model)`` with every projection reduced to the synapses its layer's ``weight_mask`` keeps.

    Layers without a mask stay dense (all entries stored). Only ``Dense``/``Readout``
    layers are supported (a convolution's mask lives in kernel space, not per synapse).
    """
    net = to_network(model, input_shape)
    layers = [layer for layer in model.layers if not isinstance(layer, nn.Flatten)]
    projections = []
    for layer, proj in zip(layers, net.projections, strict=True):
        if type(layer) not in (Dense, Readout):
            raise ValueError(f"sparse_network supports Dense and Readout layers, got {type(layer).__name__}")
        mask = getattr(layer.synapse, "weight_mask", None)
        if mask is not None:
            keep = mask.detach().cpu().numpy()[proj.synapses.indices, proj.synapses.pre_indices()] > 0
            proj = replace(proj, synapses=proj.synapses.select(keep), mask=None,
                           metadata={**proj.metadata, "masked_by": "granet"})
        projections.append(proj)
    return net.with_projections(tuple(projections))


@torch.no_grad()
def event_metrics(model: BatchFirst, x: torch.Tensor, y: torch.Tensor, repeats: int = 3,
                  dtype=np.float32) -> dict:
    """Run ``x[N, T, features]`` through the sparse ``Network`` in the event simulator (module doc)."""
    from neuro.lnp.stats import sops
    from neuro.simulator import Simulator

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    snn = model.net
    x_seq = x.transpose(0, 1)
    logits, outputs = snn(x_seq, record=True)
    net, stored_dense = sparse_network(snn, x.shape[2:]), to_network(snn, x.shape[2:])
    steps, batch = x_seq.shape[:2]
    inputs = [{INPUT: x_seq[:, b].numpy() > 0} for b in range(batch)]
    names = [p.name for p in net.populations[1:]]
    simulators = {"sparse": Simulator(net, dtype=dtype), "dense_storage": Simulator(stored_dense, dtype=dtype)}
    seconds, results = {key: [] for key in simulators}, {}
    for _ in range(repeats):  # alternate, so that both see the same machine load
        for key, simulator in simulators.items():
            start = time.perf_counter()
            results[key] = simulator.run(steps, inputs, record=True, record_state={names[-1]: None})
            seconds[key].append(time.perf_counter() - start)
    result = results["sparse"]
    sim_logits = torch.as_tensor(result.trace(names[-1], "v").mean(1))
    agree, spikes = [], 0
    for name, out in zip(names[:-1], outputs[:-1]):
        raster = np.stack([result.raster(name, b) for b in range(batch)], axis=1)  # [T, B, n]
        torch_spikes = out.reshape(raster.shape).numpy() > 0
        agree.append(float((raster == torch_spikes).mean()))
        spikes += int(torch_spikes.sum())
    return {"event_accuracy": float((sim_logits.argmax(1) == y).float().mean()),
            "prediction_agreement": float((sim_logits.argmax(1) == logits.argmax(1)).float().mean()),
            "spike_agreement": float(np.mean(agree)), "torch_hidden_spikes": spikes,
            "max_abs_diff_readout_v": float((sim_logits - logits).abs().max()),
            "n_synapses": net.n_synapses, "sops": float(sops(result).mean()),
            "sim_seconds_per_sample": min(seconds["sparse"]) / batch,
            "dense_storage_seconds_per_sample": min(seconds["dense_storage"]) / batch,
            "storage_speedup": min(seconds["dense_storage"]) / min(seconds["sparse"])}


def plot_network_runs(rows: list[dict], out_dir: Path) -> Path:
    """Event-simulator accuracy, SOPs, wall time per sample and storage speed-up vs density (mean ± std, seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.io import save_figure

    fields = [("event_accuracy", "event-simulator accuracy (%)", 100.0),
              ("sops", "SOPs per sample (simulated)", 1.0),
              ("sim_seconds_per_sample", "simulator time per sample (us)", 1e6),
              ("storage_speedup", "time stored densely / time sparse", 1.0)]
    fig, axes = plt.subplots(1, len(fields), figsize=(4.5 * len(fields), 4))
    methods = sorted({r["method"] for r in rows})
    lowest = min(1.0 - r["sparsity"] for r in rows)
    for ax, (field, label, scale) in zip(axes, fields):
        for method in methods:
            groups: dict = {}
            for r in rows:
                if r["method"] == method:
                    groups.setdefault(1.0 - r["sparsity"], []).append(scale * r[field])
            xs = sorted(groups)
            means = [np.mean(groups[d]) for d in xs]
            stds = [np.std(groups[d]) for d in xs]
            if method == "dense":
                ax.axhline(means[0], color="k", ls="--", label="dense")
            else:
                ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=method)
        ax.set_xlim(lowest / 1.5, 1.5)
        ax.set(xscale="log", xlabel="density (kept synapses / all)", ylabel=label)
        if field == "sops":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.suptitle("GraNet on the event-driven Network (sparse CSR)")
    fig.tight_layout()
    return save_figure(fig, Path(out_dir) / "granet_network.png")
