import numpy as np
import pytest

from neuro import Network, Population, Projection
from neuro.builders import build_hrsnn
from neuro.lnp.capacity import memory_capacity
from synapses import from_dense

RELAY = {"tau_mem": 1e-3, "tau_syn": 0.0, "tau_syn_inh": 0.0}  # fires once per input spike, forgets at once


def _relays(lags):
    """Input (16 neurons) copied one-to-one onto one LIF relay population per lag (in samples of 10 steps)."""
    pops = [Population("input", 16, model="spike_source")]
    projs = []
    for lag in lags:
        pops.append(Population(f"d{lag}", 16, params=RELAY))
        projs.append(Projection(f"to_d{lag}", "input", f"d{lag}", from_dense(2.0 * np.eye(16), delays=1 + 10 * lag)))
    return Network(tuple(pops), tuple(projs))


def test_delay_lines_hold_the_input_for_their_lag_and_a_single_relay_does_not():
    chain = memory_capacity(_relays([0, 3, 6]), delays=7, populations=["d0", "d3", "d6"], tau_filter=5e-3)
    single = memory_capacity(_relays([0]), delays=7, populations=["d0"], tau_filter=5e-3)
    assert single.by_delay[0] > 0.8  # the code of the current sample is readable
    for lag in (3, 6):  # each relay line recalls the sample `lag` ago as well as d0 recalls the current one
        assert chain.by_delay[lag] > 0.8 and single.by_delay[lag] < 0.05
    assert chain.total > single.total + 1.5


def test_memory_capacity_is_seeded_and_bounded():
    net = build_hrsnn(n=60, k=6, seed=0)
    a, b = memory_capacity(net, delays=3, seed=1), memory_capacity(net, delays=3, seed=1)
    np.testing.assert_array_equal(a.by_delay, b.by_delay)
    assert np.all((a.by_delay >= 0) & (a.by_delay <= 1)) and a.as_dict()["total"] == pytest.approx(a.total)


def test_memory_capacity_arguments_are_checked():
    net = _relays([0])
    with pytest.raises(ValueError, match="delays"):
        memory_capacity(net, delays=40, populations=["d0"])
    with pytest.raises(ValueError, match="no state populations"):
        memory_capacity(net)
