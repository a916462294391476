"""NIR: snntorch -> NIR -> neuro reproduces snntorch's spikes; neuro -> NIR -> neuro is lossless; bad files."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from deployment.nir_io import export_nir, import_nir, network_to_nir, nir_to_network
from neuro.network import Network, Population, Projection
from neuro.simulator import Simulator
from synapses import bernoulli
from synapses.csr import from_dense

snn = pytest.importorskip("snntorch")
from snntorch import utils  # noqa: E402


def _needs_nirtorch():
    pytest.importorskip("nirtorch", reason="snntorch's NIR export and import need nirtorch (pip install nirtorch)")

N_IN, N_H, N_OUT, T = 6, 10, 4, 80


def _snntorch_model(kind: str):
    torch.manual_seed(1)
    beta, thr = torch.full((N_H,), 0.9), torch.full((N_H,), 0.5)
    hidden = {"leaky": lambda: snn.Leaky(beta=beta, threshold=thr, init_hidden=True),
              "rleaky": lambda: snn.RLeaky(beta=beta, threshold=thr, linear_features=N_H, init_hidden=True),
              "synaptic": lambda: snn.Synaptic(alpha=torch.full((N_H,), 0.6), beta=beta, threshold=thr,
                                               init_hidden=True)}[kind]()
    model = torch.nn.Sequential(torch.nn.Linear(N_IN, N_H), hidden, torch.nn.Linear(N_H, N_OUT),
                                snn.Leaky(beta=torch.full((N_OUT,), 0.8), threshold=torch.full((N_OUT,), 0.5),
                                          init_hidden=True))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[0].bias.fill_(0.05)  # biases into the membrane (Leaky) and into the synaptic current (Synaptic)
    return model


def _snntorch_spikes(model, x):
    utils.reset(model)
    with torch.no_grad():
        out = [model(x[t]) for t in range(len(x))]
    return torch.stack([o[0] if isinstance(o, tuple) else o for o in out]).numpy().astype(bool)


@pytest.mark.parametrize("kind", ["leaky", "rleaky", "synaptic"])
def test_snntorch_export_is_reproduced_exactly(kind, tmp_path):
    _needs_nirtorch()
    from snntorch.export_nir import export_to_nir

    model = _snntorch_model(kind)
    x = (torch.rand(T, N_IN, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    expected = _snntorch_spikes(model, x)
    import nir

    path = tmp_path / "model.nir"
    nir.write(str(path), export_to_nir(model, x[0]))
    net = import_nir(path, convention="snntorch")
    assert any(p.synapses.delays.min() == 1 and p.pre == p.post for p in net.projections) == (kind == "rleaky")
    hidden = next(p for p in net.populations if p.model == "lif")
    assert np.all(hidden.params["bias_syn" if kind == "synaptic" else "bias"] != 0)
    out = net.metadata["outputs"][0]
    got = Simulator(net, dtype=np.float32).run(T, {"input": x.numpy().astype(bool)}).raster(out)
    assert expected.sum() > 20
    assert np.array_equal(got, expected)


def _snntorch_graph(model, sample):
    """``snntorch.export_to_nir`` without its last step: nir 1.0.8's ``infer_types`` fails on the Conv2d that
    snntorch 1.0 writes (``input_shape=None``); neuro takes a conv's input shape from the node before it."""
    import nirtorch
    from snntorch.export_nir import _extract_snntorch_module

    return nirtorch.extract_nir_graph(model, _extract_snntorch_module, sample, model_name="snntorch",
                                      ignore_submodules_of=[snn.RLeaky, snn.RSynaptic], ignore_dims=None)


def test_snntorch_conv_net_with_pooling_round_trips():
    _needs_nirtorch()
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=0.9, threshold=0.5,
                                                                                init_hidden=True),
                                torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5),
                                snn.Leaky(beta=0.8, threshold=0.3, init_hidden=True))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[4].weight.mul_(3.0)
    x = (torch.rand(T, 1, 2, 8, 8, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    expected = _snntorch_spikes(model, x)[:, 0]
    net = import_nir(_snntorch_graph(model, x[0]), convention="snntorch")
    assert [p.size for p in net.populations] == [128, 256, 5]
    got = Simulator(net, dtype=np.float32).run(T, {"input": x[:, 0].reshape(T, -1).numpy().astype(bool)})
    assert expected.sum() > 20
    assert np.array_equal(got.raster(net.metadata["outputs"][0]), expected)


def _rich_network():
    rng = np.random.default_rng(0)
    pops = (Population("in", 5, "spike_source"), Population("rate", 3, "poisson", {"rate": 30.0}),
            Population("E", 12, reset="soft", params=dict(tau_mem=rng.uniform(5e-3, 30e-3, 12), tau_syn=4e-3,
                                                          tau_syn_inh=9e-3, v_th=rng.uniform(0.8, 1.2, 12),
                                                          v_rest=-0.1, bias=0.01, t_ref=2e-3),
                       metadata={"mpr": True}),
            Population("O", 4, params=dict(tau_mem=10e-3, tau_syn=0.0, tau_syn_inh=0.0)))
    projs = (Projection("inE", "in", "E", bernoulli(5, 12, 0.5, weight=0.5, seed=1)),
             Projection("rE", "rate", "E", bernoulli(3, 12, 0.5, weight=0.3, seed=2)),
             Projection("EE", "E", "E", bernoulli(12, 12, 0.3, weight=-0.2, delay=lambda r, k: r.integers(1, 5, k),
                                                  seed=3), receptor="inh"),
             Projection("EO", "E", "O", bernoulli(12, 4, 0.5, weight=0.4, delay=0, seed=4)))
    return Network(pops, projs, dt=5e-4)


def test_round_trip_is_lossless_for_supported_fields(tmp_path):
    net = _rich_network()
    back = import_nir(export_nir(net, tmp_path / "net.nir"))
    assert back.dt == net.dt
    for p in net.populations:
        q = back.population(p.name)
        assert (q.size, q.model, q.reset) == (p.size, p.model, p.reset)
        assert q.params.keys() == p.params.keys()
        for k in p.params:
            np.testing.assert_array_equal(q.params[k], p.params[k])
    assert back.population("E").metadata.get("mpr") is True
    for p in net.projections:
        q = back.projection(p.name)
        assert (q.pre, q.post, q.receptor) == (p.pre, p.post, p.receptor)
        np.testing.assert_array_equal(q.synapses.to_dense(), p.synapses.to_dense())
        assert sorted(zip(q.synapses.pre_indices(), q.synapses.indices, q.synapses.delays)) == \
            sorted(zip(p.synapses.pre_indices(), p.synapses.indices, p.synapses.delays))
    x = np.random.default_rng(3).random((60, 5)) < 0.3
    a = Simulator(net, dtype=np.float64).run(60, {"in": x}, seed=4)
    b = Simulator(back, dtype=np.float64).run(60, {"in": x}, seed=4)
    assert np.array_equal(a.raster("E"), b.raster("E")) and a.counts("E").sum() > 0


def test_unsupported_fields_are_recorded_in_metadata():
    graph = network_to_nir(_rich_network())
    note = graph.nodes["E"].metadata["neuro_unsupported"]
    for what in ("refractory", "second synaptic channel", "MPR"):
        assert what in note
    assert "reset" not in note and graph.nodes["E"].metadata["reset_method"] == "subtract"
    assert graph.metadata["dt"] == 5e-4 and "Euler" in graph.metadata["neuro_discretisation"]


def test_our_export_runs_in_snntorch_import_nir():
    _needs_nirtorch()
    from snntorch.import_nir import import_from_nir

    rng = np.random.default_rng(0)
    pops = (Population("inp", 5, "spike_source"),
            Population("h", 8, params=dict(tau_mem=5e-3, tau_syn=0.0, v_th=0.5)),
            Population("o", 3, params=dict(tau_mem=10e-3, tau_syn=0.0, v_th=0.5)))
    net = Network(pops, (Projection("w1", "inp", "h", from_dense(rng.normal(0, 0.8, (8, 5)), 0)),
                         Projection("w2", "h", "o", from_dense(rng.normal(0, 0.8, (3, 8)), 0))))
    x = rng.random((60, 5)) < 0.4
    expected = Simulator(net, dtype=np.float32).run(60, {"inp": x}).raster("o")
    model = import_from_nir(network_to_nir(net, dt_nir=1e-4))  # snntorch assumes dt = 1e-4
    state, got = None, []
    with torch.no_grad():
        for t in range(60):
            out, state = model(torch.tensor(x[t], dtype=torch.float32), state)
            got.append(out.numpy())
    assert expected.sum() > 10
    assert np.array_equal(np.array(got).astype(bool), expected)


def test_malformed_nir_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"this is not HDF5")
    with pytest.raises(ValueError, match="not a readable NIR file"):
        import_nir(bad)
    with pytest.raises(FileNotFoundError):
        import_nir(tmp_path / "missing.nir")


def test_unsupported_node_is_named():
    import nir

    @dataclass(eq=False)
    class MaxPool2d(nir.NIRNode):  # a node type neuro does not know (nir 1.0 itself has no max pooling)
        kernel_size: np.ndarray

        def __post_init__(self):
            self.input_type, self.output_type = {"input": np.array([2])}, {"output": np.array([2])}

    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "pool": MaxPool2d(np.array([2, 2])),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "pool"), ("pool", "output")])
    with pytest.raises(ValueError, match="'pool' is a MaxPool2d; supported: .*Threshold, LI, CubaLI, I"):
        nir_to_network(graph)


def test_synaptic_bias_and_soft_reset_export_as_affine_bias_and_subtract():
    rng = np.random.default_rng(5)
    pops = (Population("in", 4, "spike_source"),
            Population("h", 6, reset="soft", params=dict(tau_mem=2e-3, tau_syn=1e-3, v_th=0.8,
                                                         bias_syn=rng.uniform(0, 0.05, 6))))
    net = Network(pops, (Projection("w", "in", "h", from_dense(rng.normal(0.3, 0.5, (6, 4)), 0)),), dt=1e-4)
    graph = network_to_nir(net)
    assert type(graph.nodes["w"]).__name__ == "Affine" and graph.nodes["h"].metadata["reset_method"] == "subtract"
    for node in graph.nodes.values():  # a foreign reader: NIR fields and reset_method only
        node.metadata = {k: v for k, v in (node.metadata or {}).items() if not k.startswith("neuro_")}
    graph.metadata = {}
    foreign = nir_to_network(graph)
    x = rng.random((100, 4)) < 0.3
    a = Simulator(net, dtype=np.float64).run(100, {"in": x}).raster("h")
    b = Simulator(foreign, dtype=np.float64).run(100, {"in": x}).raster("h")
    assert foreign.population("h").reset == "soft" and a.sum() > 20 and np.array_equal(a, b)
