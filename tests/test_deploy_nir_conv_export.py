"""Trained conv models export to NIR as Conv2d (+ Flatten) nodes, come back spike for spike, and snntorch reads them."""

import numpy as np
import pytest
import torch

from deployment.nir_io import export_nir, import_nir, network_to_nir
from neuro.simulator import Simulator
from neuro.training import config
from neuro.training.convert import to_network

SHAPE = (2, 9, 9)


def _conv_model(reset="soft", readout="membrane"):
    cfg = config.resolve({"model": {"layers": [{"type": "conv", "channels": 3, "kernel": 3, "stride": 2, "padding": 1},
                                               {"type": "dense", "size": 16}], "reset": reset, "readout": readout}})
    model = config.build_model(cfg["model"], SHAPE, 4, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # enough drive for many spikes
    return model


def _inputs(steps=40):
    return np.random.default_rng(0).random((steps, int(np.prod(SHAPE)))) < 0.3


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_conv_layers_export_as_conv2d_and_round_trip_spike_for_spike(reset, tmp_path):
    net = to_network(_conv_model(reset), SHAPE)
    graph = network_to_nir(net)
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert {"Conv2d", "Flatten"} <= kinds
    conv = next(node for node in graph.nodes.values() if type(node).__name__ == "Conv2d")
    assert conv.weight.shape == (3, 2, 3, 3) and np.any(conv.bias != 0)  # the layer bias rides on the conv
    back = import_nir(export_nir(net, tmp_path / "conv.nir"))
    x = _inputs()
    ours = Simulator(net, dtype=np.float64).run(40, {"input": x}, record_state={"layer2": None})
    theirs = Simulator(back, dtype=np.float64).run(40, {"input": x}, record_state={"layer2": None})
    for name in ("layer0", "layer1"):
        assert ours.raster(name).sum() > 20 and np.array_equal(ours.raster(name), theirs.raster(name)), name
    np.testing.assert_array_equal(ours.trace("layer2"), theirs.trace("layer2"))


def test_a_pruned_conv_projection_stays_a_linear_node_and_still_round_trips(tmp_path):
    net = to_network(_conv_model(), SHAPE)
    conv = net.projections[0]
    # pruned at random: some but not all synapses of a tap go (pruning every third synapse removes whole taps,
    # which leaves a convolution with zero taps, and that is exported as a Conv2d)
    keep = np.random.default_rng(1).random(conv.synapses.nnz) > 0.3
    net = net.with_projections((conv.__class__(conv.name, conv.pre, conv.post, conv.synapses.select(keep),
                                               metadata=conv.metadata),) + net.projections[1:])
    assert "Conv2d" not in {type(node).__name__ for node in network_to_nir(net).nodes.values()}
    back = import_nir(export_nir(net, tmp_path / "pruned.nir"))
    x = _inputs()
    assert np.array_equal(Simulator(net, dtype=np.float64).run(40, {"input": x}).raster("layer0"),
                          Simulator(back, dtype=np.float64).run(40, {"input": x}).raster("layer0"))


def snntorch_output(net, x, shape):
    """snntorch's ``import_from_nir`` of ``net``'s export, run on ``x[T, n]`` one sample of ``shape`` a step: its
    output spikes ``[T, n_out]`` (bool)."""
    pytest.importorskip("nirtorch")
    from snntorch.import_nir import import_from_nir

    snn = import_from_nir(network_to_nir(net, dt_nir=1e-4))  # snntorch assumes dt = 1e-4
    state, got = None, []
    with torch.no_grad():
        for step in x:
            out, state = snn(torch.tensor(step.reshape(1, *shape), dtype=torch.float32), state)
            got.append(out.numpy().reshape(-1))
    return np.array(got).astype(bool)


def test_snntorch_reads_a_hard_reset_conv_export_spike_for_spike():
    """snntorch's import_from_nir resets to zero, so a hard-reset model is the one it reproduces."""
    net = to_network(_conv_model("hard", "count"), SHAPE)
    x = _inputs(80)
    expected = Simulator(net, dtype=np.float32).run(80, {"input": x}).raster("layer2")
    assert expected.sum() >= 5
    assert np.array_equal(snntorch_output(net, x, SHAPE), expected)
