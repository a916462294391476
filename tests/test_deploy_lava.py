"""Lava against neuro spike for spike: built-in LIF (split), the custom SoftResetLIF, wraps, hangs, failures.

Each Lava run costs a few seconds of process start-up; the networks are small on purpose.
"""

import os
import re

import numpy as np
import pytest

from deployment import lava_compat

if not lava_compat.available():
    pytest.skip("lava-nc is not importable (install it with `make install`)", allow_module_level=True)

from deployment.examples import hetero_ei_network, single_neuron_fixed  # noqa: E402
from deployment.lava_export import LavaError, LavaTimeout, fixed_graph, run_graph  # noqa: E402
from neuro.cli import main  # noqa: E402
from neuro.fixed_point import FixedNeurons, FixedPointNetwork, FixedPointSimulator, FixedSynapses  # noqa: E402
from neuro.network import Network, Population, Projection  # noqa: E402
from synapses.csr import from_dense  # noqa: E402


def _group_gone(pid):
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_neuro_verify_fixed_and_float_match_lava_spike_for_spike(tmp_path, capsys):
    """``neuro verify`` on a heterogeneous E/I network: both modes identical, table, exit 0, PNG."""
    path = hetero_ei_network(50, seed=0).save(tmp_path / "net.npz")  # E: 2 LIF processes, I: SoftResetLIF
    rc = main(["verify", str(path), "--steps", "100", "--rate", "150", "--seed", "2", "--timeout", "240",
               "--plot", str(tmp_path / "verify.png")])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = re.findall(r"^(fixed|float)\s+(E|I)\s+.*?\s(\d+)\s+(\d+)\s+(\d+)\s+100\.00%", out, re.MULTILINE)
    assert {(m, p) for m, p, *_ in rows} == {(m, p) for m in ("fixed", "float") for p in "EI"}, out
    assert all(int(ours) == int(lava) == int(matched) > 10 for *_, ours, lava, matched in rows), out
    assert "all spikes identical: yes" in out and "2x LIF" in out and "NOT a built-in Loihi neuron" in out
    assert "tau_mem" in out and "weight_exp" in out  # the quantization report
    assert (tmp_path / "verify.png").stat().st_size > 0


def test_lava_pins_the_bias_integration_spike_times():
    """v grows by 100 << 6 per step and resets to 0 above 1000 << 6: spikes at steps 10, 21, 32 (0-based)."""
    lava = run_graph(fixed_graph(single_neuron_fixed(100, 6, 1000), {}, 35), timeout=120)
    assert lava.spikes["n"][0].tolist() == [10, 21, 32]
    assert FixedPointSimulator(single_neuron_fixed(100, 6, 1000)).run(35).spikes("n")[0].tolist() == [10, 21, 32]


def test_overflowing_currents_wrap_exactly_as_lava():
    """Sparse weights 254/-256 << 7 from inputs firing every step: each Dense sum exceeds 16 bits and u wraps at 24."""
    steps, n = 12, 4
    mask = np.zeros((n, 10))
    mask[np.arange(n), np.arange(n)] = mask[np.arange(n), np.arange(n) + 5] = 1  # density 0.2 -> Lava Sparse
    net = Network((Population("in", 10, "spike_source"), Population("n", n)),
                  (Projection("p", "in", "n", from_dense(mask)),))
    full = lambda x: np.full(n, x, np.int64)  # noqa: E731
    neurons = FixedNeurons(du=full(100), dv=full(300), vth=full(131071), bias_mant=full(0), bias_exp=full(0),
                           v0=full(0), u0=full(0), du_inh=full(100), u_inh0=full(0), n_ref=full(0))
    w = np.array([254, -256] * n, np.int64)
    fixed = FixedPointNetwork(net, {"n": neurons}, {"p": FixedSynapses(w, 7, "mixed")})
    t = np.repeat(np.arange(steps), 10)
    k = np.tile(np.arange(10), steps)
    ours = FixedPointSimulator(fixed).run(steps, {"in": (t, k)}, record_state={"n": None}, state_vars=("u",))
    u = ours.trace("n", "u")[0]
    assert np.abs(np.diff(u, axis=0)).max() > 2**23  # a wrap: u jumps across the 24-bit range
    graph = fixed_graph(fixed, {"in": (t, k)}, steps)
    assert "Sparse" in graph.describe()
    lava = run_graph(graph, timeout=120)
    got = ours.spikes("n")
    order = np.lexsort((got[1], got[0]))
    assert got[0].size > 0
    assert np.array_equal(lava.spikes["n"][0], got[0][order]) and np.array_equal(lava.spikes["n"][1], got[1][order])


def test_hang_times_out_and_leaves_no_process():
    net = hetero_ei_network(14, seed=0)
    from deployment.quantize import quantize
    from deployment.verify import source_spikes

    fixed, _ = quantize(net)
    graph = fixed_graph(fixed, source_spikes(net, 100_000, seed=0), 100_000)
    with pytest.raises(LavaTimeout, match="did not finish 100000 steps within 2 s") as info:
        run_graph(graph, timeout=2)
    _group_gone(info.value.pid)


def test_lava_failure_is_a_clear_error_and_leaves_no_process():
    net = hetero_ei_network(14, seed=0)
    from deployment.quantize import quantize
    from deployment.verify import source_spikes

    fixed, _ = quantize(net)
    graph = fixed_graph(fixed, source_spikes(net, 5, seed=0), 5)
    graph.blocks[0].weights = graph.blocks[0].weights[:, :1]  # shape no longer matches its source
    with pytest.raises(LavaError, match="Lava failed") as info:
        run_graph(graph, timeout=120)
    _group_gone(info.value.pid)
