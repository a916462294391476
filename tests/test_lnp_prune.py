import numpy as np
import pytest

from neuro.builders import build_hrsnn
from neuro.lnp.baselines import activity_selection, random_selection
from neuro.lnp.graph import recurrent_of
from neuro.lnp.lyapunov import largest_lyapunov, perturbation_exponent
from neuro.lnp.neuron_prune import betweenness_scores, select_top
from neuro.lnp.pipeline import BASELINES, baseline_prune, lnp_prune, network_size
from neuro.lnp.sparsify import sampling_probabilities, sparsify_synapses
from neuro.lnp.stabilize import mean_rate, stabilize
from synapses import obeys_dale

LYAP = {"steps": 300, "warmup": 100}


def test_sampling_probabilities_hit_the_target():
    scores = np.random.default_rng(0).exponential(size=1000)
    p = sampling_probabilities(scores, 300)
    assert abs(p.sum() - 300) < 1e-6 and p.max() <= 1
    assert np.all(np.diff(p[np.argsort(scores)]) >= -1e-12)  # monotone in the score


def test_sparsify_keeps_the_fraction_reweights_and_keeps_dale():
    net = build_hrsnn(n=120, k=12, seed=0)
    rec = recurrent_of(net)
    keep, w, p = sparsify_synapses(rec, 0.4, seed=0)
    assert abs(keep.mean() - 0.4) < 0.05
    np.testing.assert_allclose(w[keep], rec.weight[keep] / p[keep])
    assert np.all(np.sign(w) == np.sign(rec.weight))
    again = sparsify_synapses(rec, 0.4, seed=0)[0]
    assert np.array_equal(keep, again)


def test_neuron_selection_keeps_the_fraction_per_population():
    rec = recurrent_of(build_hrsnn(n=100, k=10, seed=0))
    scores = betweenness_scores(rec, np.ones(rec.n_synapses, bool), rec.weight, pivots=20, seed=0)
    masks = select_top(rec, scores, 0.5)
    assert masks["exc"].sum() == 40 and masks["inh"].sum() == 10


@pytest.mark.parametrize("min_factor", [0.1, 1.0])
def test_stabilize_brings_the_exponent_to_zero_or_below(min_factor):
    net = build_hrsnn(n=100, k=10, seed=0)
    assert largest_lyapunov(net, **LYAP) > 0
    stable, info = stabilize(net, lyapunov=LYAP, iterations=3, min_factor=min_factor)
    assert info["lambda_after"] <= 0 and largest_lyapunov(stable, **LYAP) <= 0
    if min_factor < 1:
        assert info["tau_factor"] < 1
    else:  # the timescales are kept, the coupling is scaled
        assert info["tau_factor"] == 1 and info["weight_factor"] < 1
        for pop in ("exc", "inh"):
            tau = stable.population(pop).params["tau_mem"]
            np.testing.assert_array_equal(tau, net.population(pop).params["tau_mem"])


def test_rest_lever_silences_the_autonomous_network_and_keeps_it_driven_stable():
    net = build_hrsnn(n=100, k=10, seed=0)
    assert mean_rate(net) > 1  # drive 1.5: the dense network fires without input
    driven = {**LYAP, "input_rate": 10.0}
    quiet, info = stabilize(net, lyapunov=driven, iterations=3, rest=0.9)
    assert info["drive_factor"] == pytest.approx(0.9 / 1.5)
    assert info["autonomous_rate"] == 0 and mean_rate(quiet, steps=2000) == 0
    assert info["lambda_after"] <= 0 and largest_lyapunov(quiet, **driven) <= 0
    # silent, so even finite perturbations only leak away: the distance shrinks at a rate between
    # the fastest and the slowest membrane's, the true exponents are log a_i < 0
    direct = perturbation_exponent(quiet, steps=200, eps=0.1, trials=4)
    tau = np.concatenate([quiet.population(p).params["tau_mem"] for p in ("exc", "inh")])
    assert direct.converged == 1 and direct.diverged == 0
    assert -1 / tau.min() <= direct.per_second <= -1 / tau.max() < 0
    with pytest.raises(ValueError, match="rest"):
        stabilize(net, lyapunov=driven, rest=1.0)


def test_rate_preserving_stabilisation_lowers_the_rate_and_stays_stable():
    net = build_hrsnn(n=100, k=10, seed=0)
    plain, _ = stabilize(net, lyapunov=LYAP, iterations=3)
    kept, info = stabilize(net, lyapunov=LYAP, iterations=3, preserve_rate=True)
    assert info["lambda_after"] <= 0 and info["drive_factor"] < 1
    assert 0 < mean_rate(kept) < mean_rate(plain)


@pytest.mark.parametrize("score", ["lyapunov", "betweenness"])
def test_lnp_and_baselines_reach_the_same_size(score):
    net = build_hrsnn(n=100, k=10, seed=0)
    cfg = {"lyapunov": LYAP, "iterations": 3, "pivots": 16, "neuron_score": score}
    pruned, info = lnp_prune(net, cfg, seed=0)
    before, after = network_size(net), network_size(pruned)
    assert sum(after["neurons"].values()) <= 0.6 * sum(before["neurons"].values())
    assert after["synapses"] <= 0.5 * before["synapses"]
    assert info["lambda_after"] <= 0
    for proj in pruned.projections:
        if proj.pre in ("exc", "inh"):
            assert obeys_dale(proj.active(), np.full(proj.synapses.n_pre, proj.pre == "exc"))
    rates = np.random.default_rng(0).random(100)
    dense_weights = recurrent_of(net).weight
    for method in BASELINES:
        base, binfo = baseline_prune(net, method, after, rates, cfg, seed=0)
        assert network_size(base) == after
        if method.endswith("_stabilised"):  # LNP's step 3: silent at rest, driven exponent <= 0
            assert binfo["lambda_after"] <= 0 and binfo["drive_factor"] < 1  # rest lowered the drive
        else:  # selection only, as the paper's baselines: every kept synapse keeps its dense weight
            assert binfo["weight_factor"] == 1 and np.isin(recurrent_of(base).weight, dense_weights).all()
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_prune(net, "lnp", after, rates, cfg)


def test_activity_selection_prefers_active_neurons():
    rec = recurrent_of(build_hrsnn(n=50, k=6, seed=0))
    rates = np.arange(50, dtype=float)
    neurons, keep = activity_selection(rec, rates, {"exc": 10, "inh": 5}, 20)
    assert np.flatnonzero(neurons["exc"]).tolist() == list(range(30, 40))
    assert keep.sum() == 20
    rnd, rkeep = random_selection(rec, {"exc": 10, "inh": 5}, 20, seed=0)
    assert rnd["exc"].sum() == 10 and rkeep.sum() == 20


def test_delocalize_option_spreads_the_leading_eigenvectors_at_the_same_size():
    net = build_hrsnn(n=100, k=10, seed=0)
    cfg = {"lyapunov": LYAP, "iterations": 3}
    plain, _ = lnp_prune(net, cfg, seed=0)
    spread, info = lnp_prune(net, {**cfg, "delocalize": True}, seed=0)
    assert network_size(spread) == network_size(plain) and info["lambda_after"] <= 0
    record = info["delocalisation"]
    assert record["n_ipr_after"] < record["n_ipr_before"] and record["rounds"] >= 1
