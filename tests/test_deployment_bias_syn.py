"""``bias_syn`` (a constant current into the synaptic channel) in Loihi fixed point and in the Lava export.

In fixed point it is ``u = wrap24(decay(u, du + 1) + (a << 6) + bias_syn)`` (neurons/loihi.py); Lava's LIF has no such
parameter (its bias goes into ``v``), so a population with one runs as the custom SoftResetLIF process, which
adds it to ``u``. Without a current memory (``tau_syn = 0``) it is a bias into ``v`` and Lava's LIF holds it.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from deployment import lava_compat
from deployment.lava_export import fixed_graph
from deployment.quantize import quantize
from neuro.fixed_point import FixedNeurons, FixedPointNetwork, FixedPointSimulator
from neuro.network import Network, Population, Projection
from synapses.csr import from_dense

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: the helpers sit beside this file
from test_deploy_nir_nodes import _inputs, braille  # noqa: E402


def test_a_synaptic_bias_charges_u_by_the_integer_equation():
    """One neuron, no input: ``u[t] = decay(u[t-1], du + 1) + B`` and ``v[t] = decay(v[t-1], dv) + u[t]``, written
    out with Python integers (truncation towards zero), against the fixed-point engine's trace."""
    one = lambda x: np.array([x], np.int64)  # noqa: E731
    du, dv, b_mant, b_exp = 300, 200, 1500, 3
    neurons = FixedNeurons(du=one(du), dv=one(dv), vth=one(100000), bias_mant=one(0), bias_exp=one(0), v0=one(0),
                           u0=one(0), du_inh=one(du), u_inh0=one(0), n_ref=one(0), bias_syn_mant=one(b_mant),
                           bias_syn_exp=one(b_exp))
    net = Network((Population("n", 1),), ())
    trace = FixedPointSimulator(FixedPointNetwork(net, {"n": neurons}, {})).run(
        30, record_state={"n": None}, state_vars=("u", "v"))

    def decay(x, d):
        p = x * (4096 - d)
        return p // 4096 if p >= 0 else -((-p) // 4096)

    u = v = 0
    expected_u, expected_v = [], []
    for _ in range(30):
        u = decay(u, du + 1) + (b_mant << b_exp)
        v = decay(v, dv) + u
        expected_u.append(u)
        expected_v.append(v)
    assert trace.trace("n", "u")[0, :, 0].tolist() == expected_u
    assert trace.trace("n", "v")[0, :, 0].tolist() == expected_v
    assert expected_u[1] != expected_u[0]  # a ramp: no constant bias into v gives this v


def test_without_a_current_memory_it_is_a_bias_and_lavas_lif_holds_it():
    def net(**params):
        return Network((Population("in", 3, "spike_source"), Population("E", 4, params=dict(tau_syn=0.0, **params))),
                       (Projection("p", "in", "E", from_dense(np.full((4, 3), 0.3), delays=1)),))

    bias = np.array([0.0, 0.01, 0.02, -0.01])
    via_syn, _ = quantize(net(bias_syn=bias))
    via_v, _ = quantize(net(bias=bias))
    a, b = via_syn.neurons["E"], via_v.neurons["E"]
    assert np.array_equal(a.bias_mant, b.bias_mant) and np.any(a.bias_mant != 0) and not np.any(a.bias_syn_mant)
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert "SoftResetLIF" not in fixed_graph(via_syn, {"in": empty}, 10).describe()


@pytest.mark.skipif(not lava_compat.available(), reason="lava-nc is not importable (install it with `make install`)")
def test_the_braille_bias_graph_runs_in_lava_spike_for_spike_in_fixed_and_float_point():
    """NIR's Braille RNN with Affine biases (CubaLIF: bias_syn in both layers, a recurrent projection, zero-delay
    layers run one step apart in Lava) -> quantize -> Lava's bit-accurate and float models."""
    from deployment.nir_io import nir_to_network
    from deployment.verify import verify_network

    net = nir_to_network(braille(True, seed=3), convention="nir")
    assert all(np.any(p.params["bias_syn"] != 0) for p in net.populations[1:])
    x = _inputs((12,), 120, 1, p=0.3, seed=2)[0]
    report = verify_network(net, 120, inputs={"input": x}, timeout=300, headroom=64)
    assert {(r.mode, r.population) for r in report.rows} == {(m, p) for m in ("fixed", "float")
                                                             for p in ("lif1.lif", "lif2")}
    for row in report.rows:
        assert row.ours == row.lava == row.matched > 100 and row.first_mismatch is None, row
        assert row.processes == "1x SoftResetLIF"
    assert any(r[1] == "bias_syn" for r in report.quantization.rows)
