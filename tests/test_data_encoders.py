"""Rate, latency and delta encoders on numpy and torch."""

import numpy as np
import pytest
import torch

from neuro.data import encoders

LEVELS = np.linspace(0, 1, 11, dtype=np.float32)


@pytest.mark.parametrize("convert", [np.asarray, torch.tensor])
def test_rate_mean_matches_intensity_and_is_seeded(convert):
    steps = 4000
    spikes = encoders.rate(convert(LEVELS), steps, seed=7)
    assert tuple(spikes.shape) == (steps, 11) and type(spikes) is type(convert(LEVELS))
    mean = np.asarray(spikes.mean(0))
    # 5 standard errors of a Bernoulli mean
    assert np.all(np.abs(mean - LEVELS) <= 5 * np.sqrt(LEVELS * (1 - LEVELS) / steps) + 1e-9)
    assert np.array_equal(np.asarray(encoders.rate(convert(LEVELS), steps, seed=7)), np.asarray(spikes))
    assert not np.array_equal(np.asarray(encoders.rate(convert(LEVELS), steps, seed=8)), np.asarray(spikes))
    half = np.asarray(encoders.rate(convert(LEVELS), steps, gain=0.5, seed=7)).mean(0)
    assert np.all(np.abs(half - 0.5 * LEVELS) <= 5 * np.sqrt(0.25 / steps))


@pytest.mark.parametrize("method", ["linear", "log"])
@pytest.mark.parametrize("convert", [np.asarray, torch.tensor])
def test_latency_one_spike_brighter_earlier(method, convert):
    spikes = np.asarray(encoders.latency(convert(LEVELS), 25, method=method))
    assert spikes.shape == (25, 11)
    assert spikes[:, 0].sum() == 0 and np.all(spikes[:, 1:].sum(0) == 1)
    times = spikes[:, 1:].argmax(0)
    assert np.all(np.diff(times) <= 0) and times[-1] == 0 and times[0] > times[-1]
    if method == "linear":
        np.testing.assert_array_equal(times, np.round((1 - LEVELS[1:]) * 24))


@pytest.mark.parametrize("convert", [np.asarray, torch.tensor])
def test_delta_on_a_step_and_a_ramp(convert):
    sequence = np.zeros((12, 3), np.float32)
    sequence[5:, 0] = 1.0          # step up at t = 5
    sequence[:7, 1] = 1.0          # step down at t = 7
    sequence[:, 2] = np.arange(12) * 0.125  # slow ramp, 0.125 per step
    spikes = np.asarray(encoders.delta(convert(sequence), threshold=0.3))
    assert spikes[:, 0].tolist() == [0] * 5 + [1] + [0] * 6
    assert spikes[:, 1].tolist() == [0] * 7 + [-1] + [0] * 4
    assert spikes[:, 2].sum() == 3 and set(np.flatnonzero(spikes[:, 2])) == {3, 6, 9}
    no_off = np.asarray(encoders.delta(convert(sequence), threshold=0.3, off_spikes=False))
    assert no_off[:, 1].sum() == 0
    from_zero = np.asarray(encoders.delta(convert(sequence[:, 1:2]), threshold=0.3, from_zero=True))
    assert from_zero[:, 0].tolist() == [1] + [0] * 6 + [-1] + [0] * 4


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encoders.rate(np.array([0.5, 1.5]), 10)
    with pytest.raises(ValueError, match="num_steps"):
        encoders.latency(np.array([0.5]), 0)
    with pytest.raises(ValueError, match="method"):
        encoders.latency(np.array([0.5]), 5, method="exp")
    with pytest.raises(ValueError, match="threshold"):
        encoders.delta(np.zeros((3, 2)), threshold=0)
