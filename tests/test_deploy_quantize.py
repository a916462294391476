"""Quantization to Loihi fixed point and the fixed-point engine (no Lava needed)."""

import numpy as np
import pytest

from deployment.examples import single_neuron_fixed
from deployment.lava_timing import TimingError, compile_timing
from deployment.quantize import QuantizationError, quantize
from neuro.fixed_point import FixedPointSimulator, FixedSynapses
from neuro.network import Network, Population, Projection
from neuro.simulator import Simulator
from neurons import loihi
from synapses import bernoulli
from synapses.csr import from_dense


def test_bias_integration_spikes_at_pinned_steps():
    # v grows by 100 << 6 = 6400 per step; vth << 6 = 64000: v > vth first at v = 70400 (step index 10)
    res = FixedPointSimulator(single_neuron_fixed(100, 6, 1000)).run(35)
    assert res.spikes("n")[0].tolist() == [10, 21, 32]


def test_soft_reset_and_refractory_steps():
    soft = FixedPointSimulator(single_neuron_fixed(100, 6, 1000, reset="soft")).run(35)
    # soft reset keeps 70400 - 64000 = 6400: next spike after 10 more steps
    assert soft.spikes("n")[0].tolist() == [10, 20, 30]
    refr = FixedPointSimulator(single_neuron_fixed(100, 6, 1000, n_ref=2)).run(35)
    assert refr.spikes("n")[0].tolist() == [10, 23]


def test_voltage_decay_truncates_towards_zero():
    # v = decay(v, dv) + bias: dv = 2048 halves v each step (truncating), bias 1000
    res = FixedPointSimulator(single_neuron_fixed(1000, 0, 100000, dv=2048)).run(5, record_state={"n": None})
    v = res.trace("n", "v")[0, :, 0]
    expected, x = [], 0
    for _ in range(5):
        x = x // 2 + 1000
        expected.append(x)
    assert v.tolist() == expected


def test_wrap24_folds_like_lava():
    from neurons.loihi import current_step

    assert current_step(0, 4095, (1 << 23) >> 6) == 1 << 23  # exactly 2^23 stays (Lava's one-sided fold)
    assert current_step(0, 4095, ((1 << 23) >> 6) + 1) == (1 << 23) + 64 - (1 << 24)
    assert current_step(0, 4095, -((1 << 23) >> 6)) == 1 << 23  # -2^23 folds up


def _small_network(seed=0, weight_fn=None):
    rng = np.random.default_rng(seed)
    n = 30
    pops = (Population("in", 10, "spike_source"),
            Population("E", n, params=dict(tau_mem=rng.uniform(10e-3, 30e-3, n), v_th=rng.uniform(0.8, 1.2, n),
                                           v_rest=-0.2, v_reset=-0.1)))
    weight = weight_fn or (lambda r, k: r.uniform(-0.2, 0.3, k))
    projs = (Projection("in_E", "in", "E", bernoulli(10, n, 0.4, weight=0.5, seed=seed)),
             Projection("EE", "E", "E", bernoulli(n, n, 0.2, weight=weight, delay=lambda r, k: r.integers(1, 4, k),
                                                  seed=seed + 1)))
    return Network(pops, projs)


def test_quantized_network_tracks_the_float_network():
    net = _small_network()
    fixed, report = quantize(net)
    assert {row[1] for row in report.rows} >= {"tau_mem", "tau_syn", "bias", "weight"}
    assert max(r[3] for r in report.rows if r[1] == "tau_mem") < 0.01
    x = np.random.default_rng(5).random((200, 10)) < 0.2
    ours = FixedPointSimulator(fixed).run(200, {"in": x}).counts("E")
    ref = Simulator(net, dtype=np.float64).run(200, {"in": x}).counts("E")
    assert ours.sum() > 0 and ref.sum() > 0
    assert abs(int(ours.sum()) - int(ref.sum())) <= 0.1 * ref.sum()


def test_refuses_weights_whose_range_loses_input_and_accepts_negligible_ones():
    """400 weights of 0.002 next to one of 1.0 carry 44% of the input and round to 0: refused.

    Half the weights 1e-6 next to 1.0 also round to 0 but carry nothing: accepted.
    """
    w = np.full((3, 400), 0.002)
    w[:, 0] = 1.0
    net = Network((Population("in", 400, "spike_source"), Population("E", 3)),
                  (Projection("p", "in", "E", from_dense(w, delays=1)),))
    with pytest.raises(QuantizationError, match=r"projection 'p'.*input of neuron 0 by 44\.4%.*399 of its synapses"):
        quantize(net)
    _, report = quantize(_small_network(weight_fn=lambda r, k: np.where(r.random(k) < 0.5, 1e-6, 1.0)))
    row = next(r for r in report.rows if r[:2] == ("EE", "weight"))
    assert row[3] < 0.02 and "rounded to 0" in row[4], row


@pytest.mark.parametrize("params, match", [
    (dict(v_th=0.0, v_reset=0.0), "v_th=0.0 <= v_reset"),
    (dict(tau_syn=np.inf, tau_syn_inh=np.inf), "tau_syn of neuron 0 is inf"),
    (dict(bias=1e4), "bias of neuron 0"),
    (dict(bias_syn=[0.0, 1e4, 0.0]), "bias_syn of neuron 1"),
    (dict(bias_syn=[0.0, 0.2, 0.0], tau_syn_inh=2e-3, receptor="inh"), "neuron 1 has a synaptic bias"),
])
def test_refuses_unrepresentable_neurons(params, match):
    params = dict(params)
    receptor = params.pop("receptor", "exc")
    net = Network((Population("in", 2, "spike_source"), Population("E", 3, params=params)),
                  (Projection("p", "in", "E", from_dense(np.ones((3, 2)) * 0.5 * (-1 if receptor == "inh" else 1)),
                              receptor),))
    with pytest.raises(QuantizationError, match=match):
        quantize(net)


def _chain(skip_delay=0, feedback=None):
    """in -> A -> B -> C with zero delays, a skip A -> C, optionally a feedback C -> A."""
    pops = (Population("in", 2, "spike_source"),) + tuple(Population(n, 3) for n in "ABC")
    projs = [Projection("in->A", "in", "A", from_dense(np.ones((3, 2)), delays=0)),
             Projection("A->B", "A", "B", from_dense(np.ones((3, 3)), delays=0)),
             Projection("B->C", "B", "C", from_dense(np.ones((3, 3)), delays=0)),
             Projection("A->C", "A", "C", from_dense(np.ones((3, 3)), delays=skip_delay))]
    if feedback is not None:
        projs.append(Projection("C->A", "C", "A", from_dense(np.ones((3, 3)), delays=feedback)))
    return Network(pops, tuple(projs))


def test_zero_delay_chain_shifts_one_step_per_layer_and_skips_get_the_difference():
    timing = compile_timing(_chain())
    assert timing.shifts == {"in": 0, "A": 1, "B": 2, "C": 3}
    assert {name: set(d.tolist()) for name, d in timing.delays.items()} == \
        {"in->A": {1}, "A->B": {1}, "B->C": {1}, "A->C": {2}}  # the skip across B waits one more step
    timing = compile_timing(_chain(skip_delay=3))  # a delayed skip keeps its delay on top of the shift difference
    assert timing.shifts["C"] == 3 and set(timing.delays["A->C"].tolist()) == {5}


def test_feedback_keeps_its_delay_in_the_shifted_frame_and_short_loops_are_refused():
    timing = compile_timing(_chain(feedback=3))  # a loop of 3 hops with 3 steps: exactly Lava's minimum
    assert set(timing.delays["C->A"].tolist()) == {1}
    with pytest.raises(TimingError, match="cycle .*A.*fewer delay steps than projections"):
        compile_timing(_chain(feedback=2))
    with pytest.raises(TimingError, match="projection 'A->C': synapse 0 needs a Lava delay of 65"):
        compile_timing(_chain(skip_delay=63))
    with pytest.raises(TimingError, match="Lava delay of 65"):
        quantize(_chain(skip_delay=63))  # refused before anything is quantized


def test_fixed_types_validate_ranges():
    with pytest.raises(ValueError, match="dv of neuron 0 is 5000"):
        single_neuron_fixed(0, 0, 10, dv=5000)
    with pytest.raises(ValueError, match="8-bit"):
        FixedSynapses(np.array([300]))
    with pytest.raises(ValueError, match="mixed 8-bit Loihi weights are -256..254 and even"):
        FixedSynapses(np.array([255, -3]), sign_mode="mixed")
    assert loihi.effective_threshold([1]).tolist() == [64]


def test_trials_run_independently():
    net = _small_network(seed=3)
    sim = FixedPointSimulator(quantize(net)[0])
    rng = np.random.default_rng(7)
    xs = [rng.random((80, 10)) < 0.2 for _ in range(2)]
    both = sim.run(80, [{"in": x} for x in xs])
    for r, x in enumerate(xs):
        alone = sim.run(80, {"in": x})
        assert np.array_equal(both.raster("E", r), alone.raster("E"))
    assert not np.array_equal(both.raster("E", 0), both.raster("E", 1))
