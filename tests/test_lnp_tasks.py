import numpy as np
import pytest

from neuro import Simulator
from neuro.builders import build_hrsnn
from neuro.lnp.tasks import (
    classify_digits,
    evaluate,
    filtered_states,
    lorenz63,
    mackey_glass,
    population_code,
    predict_series,
    regular_spikes,
    ridge_fit,
)


def test_mackey_glass_and_lorenz_are_bounded_chaotic_series():
    x = mackey_glass(600)
    assert x.shape == (600,) and 0.2 < x.min() < x.max() < 1.5 and x.std() > 0.1
    z = lorenz63(600)
    assert -25 < z.min() < 0 < z.max() < 25 and (np.diff(np.sign(z)) != 0).sum() >= 2  # switches wings


def test_regular_spikes_have_the_requested_rates():
    rates = np.tile([0.0, 50.0, 200.0], (1000, 1))
    counts = regular_spikes(rates, 1e-3, seed=0).sum(axis=0)
    np.testing.assert_allclose(counts, [0, 50, 200], atol=1)
    code = population_code(np.array([0.0, 1.0]), 5, 100, 100.0, 1e-3, seed=0)
    assert code[:100, 0].sum() > code[:100, 4].sum() and code[100:, 4].sum() > code[100:, 0].sum()


def test_filtered_states_match_a_direct_sum():
    net = build_hrsnn(n=40, k=4, seed=0)
    res = Simulator(net).run(60, trials=2, seed=0)
    states = filtered_states(res, ["exc", "inh"], 10, 20e-3)
    t, k = res.spikes("inh", 1)
    end = 39  # last step of sample 3
    sel = (t <= end) & (k == 2)
    np.testing.assert_allclose(states[1, 3, 32 + 2], np.exp(-(end - t[sel]) * 1e-3 / 20e-3).sum())


def test_series_readout_beats_the_mean_predictor():
    net = build_hrsnn(n=120, k=12, seed=0)
    res = predict_series(net, "lorenz", n_train=600, n_test=200, segment=100, washout=20)
    assert res.metric == "nrmse" and res.value < 0.6  # predicting the mean gives 1
    assert res.rates.shape == (120,) and res.sops_per_second > 0


def test_digits_readout_beats_chance():
    net = build_hrsnn(n=120, k=12, seed=0)
    res = classify_digits(net, steps_per_image=30, n_images=400)
    assert res.value > 0.5  # chance is 0.1
    with pytest.raises(ValueError, match="64 neurons"):
        classify_digits(build_hrsnn(n=40, k=4, n_input=10, seed=0), n_images=10)
    with pytest.raises(ValueError, match="unknown task"):
        evaluate(net, "cifar")


def test_ridge_matches_the_normal_equations_and_picks_small_alpha_for_clean_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8))
    y = x @ rng.standard_normal(8) + 2.0
    pred = ridge_fit(x, y, alphas=[1.0])(x)
    xc = x - x.mean(0)
    coef = np.linalg.solve(xc.T @ xc + np.eye(8), xc.T @ (y - y.mean()))
    np.testing.assert_allclose(pred, xc @ coef + y.mean(), atol=1e-10)
    assert np.abs(ridge_fit(x, y)(x) - y).max() < 1e-3  # noiseless: the smallest alpha wins


def test_tasks_need_an_input_population():
    with pytest.raises(ValueError, match="named 'input'"):
        predict_series(build_hrsnn(n=40, k=4, n_input=0, seed=0))


def test_evaluate_averages_over_input_realisations():
    net = build_hrsnn(n=60, k=6, seed=0)
    opts = {"n_train": 200, "n_test": 100, "segment": 100, "washout": 20}
    single = [predict_series(net, "lorenz", seed=s, **opts) for s in (5, 6)]
    assert single[0].value != single[1].value  # the spike phases change the score
    both = evaluate(net, "lorenz", seed=5, repeats=2, **opts)
    assert both.value == pytest.approx(np.mean([r.value for r in single]))
    np.testing.assert_allclose(both.rates, np.mean([r.rates for r in single], axis=0))
    with pytest.raises(ValueError, match="repeats"):
        evaluate(net, "lorenz", repeats=0, **opts)
