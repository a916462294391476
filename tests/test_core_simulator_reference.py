"""The event simulator's kernels against a plain NumPy reference of docs/time.md, spike for spike.

Random heterogeneous networks (per-neuron and uniform parameters, all reset modes, refractory
periods, per-synapse weights and delays, zero-delay stages, recurrence, both receptors,
external currents, several trials) in float64: the reference adds inputs in the order that
docs/time.md prescribes (direct delay-1 events into the decayed current ``D``, every other input
summed in ``x`` first), so every spike and every final state must be identical.
"""

import numba
import numpy as np
import pytest

import synapses as S
from neuro import Network, Population, Projection, Simulator
from neuro.simulator import SPLIT_MIN
from neurons import lif


def reference_step(c, v, i_exc, i_inh, refr, d_exc, d_inh, x_exc, x_inh):
    """One step of ``neurons.lif``'s update, written with NumPy arrays; returns the spike mask.

    ``d_exc``, ``d_inh``: the decayed currents ``D[t]`` (docs/time.md), replaced by ``D[t+1] = a * i[t]``.
    """
    i_exc[:] = d_exc + x_exc + c[lif.BIAS_SYN]
    i_inh[:] = d_inh + x_inh
    d_exc[:] = c[lif.A_SYN] * i_exc
    d_inh[:] = c[lif.A_INH] * i_inh
    active = refr <= 0
    charged = c[lif.V_REST] + c[lif.A_MEM] * (v - c[lif.V_REST]) + i_exc + i_inh + c[lif.BIAS]
    v[:] = np.where(active, charged, v)
    refr[:] = np.where(refr > 0, refr - 1, refr)
    s = active & (v > c[lif.V_TH])
    mode = c[lif.RESET]
    v[:] = np.where(s & (mode == lif.RESET_HARD), c[lif.V_RESET], v)
    v[:] = np.where(s & (mode == lif.RESET_SOFT), v - (c[lif.V_TH] - c[lif.V_RESET]), v)
    refr[:] = np.where(s, c[lif.N_REF], refr)
    return s


def reference_run(net, steps, spikes_in, currents):
    """Simulate ``net`` (float64) step by step: ``{population: (times, local neurons)}`` of spikes.

    ``spikes_in``: ``{source: boolean raster [steps, n]}``; ``currents``: ``{population: [steps, n]}``.
    A delay-1 event from a population updated in the same or a later stage than its target is added
    to the target's ``D`` at once (the target has already been updated in this step); every other
    event is summed into ``x`` of its arrival step.
    """
    stage_of = {name: s for s, stage in enumerate(net.stages()) for name in stage}
    pops = {p.name: p for p in net.populations}
    rows = {}
    for proj in net.projections:
        s = proj.active()
        pre = s.pre_indices()
        order = np.argsort(pre, kind="stable")
        rows[proj.name] = (pre[order], s.indices[order], s.weights[order], s.delays[order])
    horizon = steps + max([int(r[3].max()) for r in rows.values() if r[3].size] + [0]) + 1
    x = {(p, rec): np.zeros((horizon, pops[p].size)) for p in pops for rec in ("exc", "inh")}
    state = {}
    for p in pops.values():
        if p.model == "lif":
            c = lif.discretize(p.params, net.dt, p.reset)
            v0, ie, ii = (np.array(p.initial.get(var, p.params["v_rest"] if var == "v" else 0.0), dtype=float)
                          * np.ones(p.size) for var in ("v", "i_exc", "i_inh"))
            state[p.name] = (c, v0, ie, ii, np.zeros(p.size), c[lif.A_SYN] * ie, c[lif.A_INH] * ii)
    out = {p: ([], []) for p in pops}
    for t in range(steps):
        for name, cur in currents.items():
            x[(name, "exc")][t] += cur[t]
        for stage in net.stages():
            fired = []
            for name in stage:
                if pops[name].model == "spike_source":
                    s = spikes_in[name][t]
                else:
                    s = reference_step(*state[name], x[(name, "exc")][t], x[(name, "inh")][t])
                fired.append((name, np.flatnonzero(s)))
            for name, ks in fired:
                out[name][0].extend([t] * ks.size)
                out[name][1].extend(ks.tolist())
                for k in ks:
                    for proj in net.projections:
                        if proj.pre == name:
                            pre, post, w, d = rows[proj.name]
                            direct = stage_of[proj.pre] >= stage_of[proj.post]
                            for j in np.flatnonzero(pre == k):
                                if d[j] == 1 and direct:
                                    state[proj.post][5 if proj.receptor == "exc" else 6][post[j]] += w[j]
                                else:
                                    x[(proj.post, proj.receptor)][t + d[j], post[j]] += w[j]
    return {p: (np.array(tk[0], np.int64), np.array(tk[1], np.int64)) for p, tk in out.items()}, state


def random_network(seed):
    rng = np.random.default_rng(seed)
    n_in, n_a, n_b, n_c = 20, 40, 30, 25
    hetero = {"tau_mem": rng.gamma(4.0, 5e-3, n_a), "tau_syn": rng.uniform(1e-3, 8e-3, n_a),
              "tau_syn_inh": rng.uniform(2e-3, 10e-3, n_a), "v_th": rng.uniform(0.6, 1.2, n_a),
              "v_reset": rng.uniform(-0.3, 0.1, n_a), "v_rest": rng.uniform(-0.1, 0.1, n_a),
              "bias": rng.uniform(0, 0.05, n_a), "bias_syn": rng.uniform(0, 0.01, n_a),
              "t_ref": rng.integers(0, 4, n_a) * 1e-3}
    uniform = {"tau_mem": 15e-3, "tau_syn": 4e-3, "tau_syn_inh": 6e-3, "v_th": 0.8, "t_ref": 2e-3, "bias": 0.03}
    pops = [Population("in", n_in, "spike_source"),
            Population("a", n_a, params=hetero, reset="soft", initial={"v": rng.uniform(-0.2, 0.8, n_a)}),
            Population("b", n_b, params=uniform, initial={"v": rng.uniform(0, 0.8, n_b)}),
            Population("c", n_c, params={**uniform, "tau_mem": np.where(rng.random(n_c) < 0.3, np.inf,
                                                                         rng.gamma(4.0, 5e-3, n_c)),
                                         "tau_syn": rng.uniform(1e-3, 8e-3, n_c)}, reset="none")]

    def conn(n_pre, n_post, p, scale, d_lo, d_hi, s):
        return S.bernoulli(n_pre, n_post, p, weight=lambda r, k: r.normal(scale, abs(scale) / 2, k),
                           delay=lambda r, k: r.integers(d_lo, d_hi + 1, k), seed=seed * 10 + s)

    projs = [Projection("in-a", "in", "a", conn(n_in, n_a, 0.3, 0.4, 0, 3, 1)),
             Projection("a-b", "a", "b", conn(n_a, n_b, 0.2, 0.3, 0, 0, 2)),  # zero delay: a stage before b
             Projection("b-a", "b", "a", conn(n_b, n_a, 0.2, -0.3, 1, 7, 3), receptor="inh"),
             Projection("a-a", "a", "a", conn(n_a, n_a, 0.1, 0.2, 1, 12, 4)),
             Projection("b-c", "b", "c", conn(n_b, n_c, 0.3, 0.25, 0, 2, 5)),
             Projection("a-c", "a", "c", conn(n_a, n_c, 0.2, -0.2, 2, 2, 6), receptor="inh")]
    return Network(pops, projs, dt=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulator_matches_the_reference_spike_for_spike(seed):
    net = random_network(seed)
    rng = np.random.default_rng(100 + seed)
    steps, trials = 150, 2
    inputs = []
    for _ in range(trials):
        inputs.append({"in": rng.random((steps, 20)) < 0.1, "b": rng.normal(0.0, 0.05, (steps, 30))})
    sim = Simulator(net, dtype=np.float64)
    assert set(sim.pop_layout[sim.pop_model == 0]) == {lif.PER_NEURON, lif.UNIFORM, lif.PER_NEURON_DECAYS}
    res = sim.run(steps, inputs)
    for r, spec in enumerate(inputs):
        ref, state = reference_run(net, steps, {"in": spec["in"]}, {"b": spec["b"]})
        for pop in ("a", "b", "c"):
            t, k = res.spikes(pop, r)
            np.testing.assert_array_equal(t, ref[pop][0], err_msg=f"{pop} trial {r}")
            np.testing.assert_array_equal(k, ref[pop][1], err_msg=f"{pop} trial {r}")
            for a, var in enumerate(("v", "i_exc", "i_inh")):
                np.testing.assert_array_equal(res.final(pop, var)[r], state[pop][1 + a], err_msg=f"{pop} {var}")
        assert all(ref[p][0].size > 20 for p in ("a", "b", "c")), "the network must be active to test anything"


def test_populations_fed_only_by_direct_events_match_the_reference():
    """``r`` receives only direct events (its own delay-1 recurrence, delay-1 feedback from the later stage
    ``s``), so its update reads no input buffer; ``s`` gets ``r``'s spikes at delay 0. Nonzero initial
    currents start ``D = a * i``. Spikes, final ``v`` and currents equal the reference; recording the
    currents at every step (the steps that keep ``i[t]``) changes nothing."""
    rng = np.random.default_rng(5)
    n_r, n_s = 60, 20
    pops = [Population("r", n_r, params={"tau_mem": rng.gamma(4.0, 5e-3, n_r), "tau_syn": 4e-3, "tau_syn_inh": 7e-3,
                                         "v_th": 1.0, "bias": 0.06, "t_ref": 2e-3},
                       initial={"v": rng.uniform(0, 1, n_r), "i_exc": rng.uniform(0, 0.2, n_r),
                                "i_inh": rng.uniform(-0.2, 0, n_r)}),
            Population("s", n_s, params={"tau_mem": 10e-3, "tau_syn": 3e-3, "v_th": 0.6})]
    w = lambda scale: (lambda r, k: r.normal(scale, abs(scale) / 2, k))  # noqa: E731
    projs = [Projection("rr", "r", "r", S.bernoulli(n_r, n_r, 0.1, weight=w(0.15), delay=1, seed=1)),
             Projection("rr-inh", "r", "r", S.bernoulli(n_r, n_r, 0.1, weight=w(-0.2), delay=1, seed=2),
                        receptor="inh"),
             Projection("rs", "r", "s", S.bernoulli(n_r, n_s, 0.2, weight=w(0.3), delay=0, seed=3)),
             Projection("sr", "s", "r", S.bernoulli(n_s, n_r, 0.2, weight=w(-0.3), delay=1, seed=4), receptor="inh")]
    net = Network(pops, projs, dt=1e-3)
    steps = 300
    sim = Simulator(net, dtype=np.float64)
    res = sim.run(steps)
    traced = sim.run(steps, record_state={"r": None, "s": None}, state_vars=("v", "i_exc", "i_inh"))
    ref, state = reference_run(net, steps, {}, {})
    for pop in ("r", "s"):
        t, k = res.spikes(pop)
        np.testing.assert_array_equal(t, ref[pop][0], err_msg=pop)
        np.testing.assert_array_equal(k, ref[pop][1], err_msg=pop)
        assert ref[pop][0].size > 20, "the network must be active to test anything"
        for a, var in enumerate(("v", "i_exc", "i_inh")):
            np.testing.assert_array_equal(res.final(pop, var)[0], state[pop][1 + a], err_msg=f"{pop} {var}")
            np.testing.assert_array_equal(traced.final(pop, var)[0], state[pop][1 + a], err_msg=f"{pop} {var}")
            np.testing.assert_array_equal(traced.trace(pop, var)[0, -1], state[pop][1 + a], err_msg=f"{pop} {var}")
    np.testing.assert_array_equal(traced.neurons[0], res.neurons[0])


def test_specialised_kernels_equal_the_per_neuron_kernel_in_float32():
    """Scalar coefficients (uniform populations, per-neuron decays) change no spike against per-neuron arrays."""
    net = random_network(3)
    fast = Simulator(net)
    slow = Simulator(net)
    slow.pop_layout[:] = lif.PER_NEURON
    assert (fast.pop_layout != slow.pop_layout).any()
    rng = np.random.default_rng(7)
    spec = {"in": rng.random((300, 20)) < 0.1}
    a, b = fast.run(300, spec, record_state={"b": None}), slow.run(300, spec, record_state={"b": None})
    np.testing.assert_array_equal(a.neurons[0], b.neurons[0])
    np.testing.assert_array_equal(a.times[0], b.times[0])
    np.testing.assert_array_equal(a.trace("b"), b.trace("b"))


def test_layout_classifies_how_coefficients_vary():
    p = {"tau_mem": np.array([0.01, 0.02]), "tau_syn": 5e-3, "tau_syn_inh": 5e-3, "v_th": 1.0, "v_reset": 0.0,
         "v_rest": 0.0, "bias": 0.0, "t_ref": 0.0}
    full = {k: np.broadcast_to(v, 2) for k, v in p.items()}
    assert lif.layout(lif.discretize({**full, "tau_mem": np.full(2, 0.01)}, 1e-3)) == lif.UNIFORM
    assert lif.layout(lif.discretize(full, 1e-3)) == lif.PER_NEURON_DECAYS
    assert lif.layout(lif.discretize({**full, "v_th": np.array([1.0, 2.0])}, 1e-3)) == lif.PER_NEURON
    assert lif.layout(lif.discretize({k: v[:0] for k, v in full.items()}, 1e-3)) == lif.PER_NEURON


def with_poisson(net, seed):
    """``net`` plus a Poisson source driving ``b`` (delays 0-2): the split kernel must draw it in order."""
    noise = Population("noise", 15, "poisson", params={"rate": 80.0})
    conn = S.bernoulli(15, 30, 0.3, weight=0.2, delay=lambda r, k: r.integers(0, 3, k), seed=seed)
    return Network(list(net.populations) + [noise], list(net.projections) + [Projection("noise-b", "noise", "b", conn)],
                   dt=net.dt)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_network_split_across_threads_gives_the_spikes_of_one_thread(seed, dtype):
    """Neurons split into 2 or 3 ranges (threads=2, 3): the spikes, traces and final state of threads=1, exactly."""
    net = with_poisson(random_network(seed), seed)
    rng = np.random.default_rng(200 + seed)
    steps = 150
    inputs = [{"in": rng.random((steps, 20)) < 0.1, "b": rng.normal(0.0, 0.05, (steps, 30))} for _ in range(2)]
    runs = {}
    for threads in (1, 2, 3):
        sim = Simulator(net, dtype=dtype, threads=threads)
        assert sim.bounds.size == threads + 1
        runs[threads] = sim.run(steps, inputs, seed=5, chunk=40, record_state={"a": None, "c": None},
                                state_vars=("v", "i_exc", "i_inh"))
    one = runs[1]
    assert all(one.spikes(p, r)[0].size > 20 for p in ("a", "b", "c", "noise") for r in range(2))
    for threads in (2, 3):
        split = runs[threads]
        for r in range(2):
            np.testing.assert_array_equal(split.times[r], one.times[r], err_msg=f"threads={threads} trial {r}")
            np.testing.assert_array_equal(split.neurons[r], one.neurons[r], err_msg=f"threads={threads} trial {r}")
        for key, trace in one.traces.items():
            np.testing.assert_array_equal(split.traces[key], trace, err_msg=f"{key}, threads={threads}")
        for var, state in one.final_state.items():
            np.testing.assert_array_equal(split.final_state[var], state, err_msg=f"{var}, threads={threads}")


def test_threads_are_checked_and_chosen_by_size():
    net = random_network(0)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            Simulator(net, threads=bad)
    assert Simulator(net).bounds.tolist() == [0, net.size]  # small: one range (trials in parallel)
    big = Simulator(Network([Population("p", SPLIT_MIN)]))
    assert big.bounds.size - 1 == numba.get_num_threads()
    assert big.bounds[0] == 0 and big.bounds[-1] == SPLIT_MIN and (np.diff(big.bounds) > 0).all()
