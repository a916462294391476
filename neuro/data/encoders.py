"""Spike encoders for static (or slowly varying) data, on numpy arrays and torch tensors.

Every encoder returns spikes with time first, ``[T, *data.shape]``, of the
same kind as its input (numpy in, numpy out; torch in, torch out on the same
device), float32 unless the torch input is another floating dtype.

* :func:`rate`: Bernoulli rate code. ``s[t, i] = 1`` with probability ``gain * x_i``
  independently at every step: the discrete-time version of a Poisson process
  of rate ``gain * x_i / dt``; ``E[mean_t s[t, i]] = gain * x_i``.
* :func:`latency`: time-to-first-spike code, one spike per input, brighter
  earlier. Linear: ``t_i = round((1 - x_i) * (T - 1))``. Log (Weber-like: equal
  intensity ratios give equal delays): ``t_i = round((T - 1) * ln(x_i) / ln(threshold))``,
  so ``x = 1`` fires at step 0 and ``x = threshold`` at ``T - 1``. Inputs
  ``x_i <= threshold`` never spike.
* :func:`delta`: send-on-delta code of a sequence ``x[t]``: a reference ``r``
  starts at ``x[0]`` (or 0 with ``from_zero``); ``+1`` when ``x[t] - r >= threshold``,
  ``-1`` when ``r - x[t] >= threshold`` (or nothing, without ``off_spikes``), and
  ``r = x[t]`` after each spike. Slow drifts spike once they accumulate.

``rate`` and ``latency`` require ``x`` in [0, 1]. ``rate`` is random and takes
``seed`` (an int, or a ``numpy.random.Generator`` for numpy input, a
``torch.Generator`` for torch input); the same seed gives the same spikes
(numpy and torch draw different streams).
"""

from __future__ import annotations

import numpy as np
import torch


def _check_unit_interval(data, name: str) -> None:
    low, high = float(data.min()), float(data.max())
    if low < 0 or high > 1:
        raise ValueError(f"{name} needs inputs in [0, 1], got values in [{low:.3g}, {high:.3g}]; normalise first")


def _check_steps(num_steps) -> int:
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    return int(num_steps)


def _float(data):
    """``data`` as a float array/tensor (float32 unless torch input already is floating)."""
    if isinstance(data, torch.Tensor):
        return data if data.is_floating_point() else data.float()
    return np.asarray(data, dtype=np.float32)


def _uniform(shape, like, seed):
    if isinstance(like, torch.Tensor):
        if isinstance(seed, np.random.Generator):
            raise ValueError("a numpy Generator seed needs numpy input; pass an int or torch.Generator for tensors")
        generator = seed if isinstance(seed, torch.Generator) else torch.Generator(like.device).manual_seed(int(seed))
        return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    if isinstance(seed, torch.Generator):
        raise ValueError("a torch.Generator seed needs torch input; pass an int or numpy Generator for numpy data")
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def rate(data, num_steps: int, gain: float = 1.0, seed=0):
    """Bernoulli/Poisson rate code: ``[T, *shape]`` spikes with P(spike) = ``gain * data`` per step."""
    num_steps = _check_steps(num_steps)
    data = _float(data)
    _check_unit_interval(data, "rate")
    if not 0 < gain <= 1:
        raise ValueError(f"gain must be in (0, 1] so that gain * x is a probability, got {gain}")
    probability = gain * data
    spikes = _uniform((num_steps, *data.shape), data, seed) < probability
    return spikes.to(data.dtype) if isinstance(data, torch.Tensor) else spikes.astype(np.float32)


def latency(data, num_steps: int, method: str = "linear", threshold: float = 0.01):
    """Time-to-first-spike code ``[T, *shape]``: one spike per input above ``threshold`` (module docstring)."""
    num_steps = _check_steps(num_steps)
    data = _float(data)
    _check_unit_interval(data, "latency")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    xp = torch if isinstance(data, torch.Tensor) else np
    if method == "linear":
        spike_time = (1 - data) * (num_steps - 1)
    elif method == "log":
        spike_time = (num_steps - 1) * xp.log(data.clip(threshold, 1)) / float(np.log(threshold))
    else:
        raise ValueError(f"method must be 'linear' or 'log', got {method!r}")
    steps = xp.arange(num_steps).reshape((num_steps,) + (1,) * data.ndim)
    if xp is torch:
        steps = steps.to(data.device)
    spikes = (steps == xp.round(spike_time)[None]) & (data > threshold)[None]
    return spikes.to(data.dtype) if xp is torch else spikes.astype(np.float32)


def delta(data, threshold: float, off_spikes: bool = True, from_zero: bool = False):
    """Send-on-delta code of a sequence ``data [T, ...]``: +1/-1 spikes where it changed by ``threshold``.

    Without ``off_spikes`` the -1 events still move the reference but are not emitted.
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    data = _float(data)
    if data.ndim < 1 or data.shape[0] < 1:
        raise ValueError(f"delta needs a sequence with time first, [T, ...], got shape {tuple(data.shape)}")
    spikes = data * 0
    reference = data[0] * 0 if from_zero else data[0] * 1
    for t in range(data.shape[0]):
        up = data[t] - reference >= threshold
        down = reference - data[t] >= threshold
        spikes[t][up] = 1
        if off_spikes:
            spikes[t][down] = -1
        moved = up | down
        reference[moved] = data[t][moved]
    return spikes
