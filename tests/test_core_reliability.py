"""Hostile input to the core: CSR indices, sizes beyond memory, text for numbers, Poisson rates above 1/dt."""

import numpy as np
import pytest

from neuro.config import network_from_config
from neuro.io import ConfigError
from neuro.network import Network, Population, Projection
from synapses.csr import CSR, from_coo


@pytest.mark.parametrize("indices, message", [
    ([2**32 + 1], "targets neuron 4294967297"), ([1.5], "whole numbers, got 1.5"), ([np.nan], "whole numbers"),
    (["1"], "must be integers"), ([-1], "targets neuron -1"), (np.array([2**63], np.uint64), "int64 range"),
])
def test_csr_indices_are_checked_before_any_cast(indices, message):
    with pytest.raises(ValueError, match=message):
        CSR(1, 3, [0, 1], indices, 1.0, 1)


def test_whole_float_indices_are_accepted_and_sizes_must_be_whole():
    assert CSR(1, 3, [0.0, 1.0], [2.0], 1.0, 1).indices.tolist() == [2]
    with pytest.raises(ValueError, match="n_post must be a whole number"):
        CSR(1, 2.5, [0, 1], [1], 1.0, 1)
    with pytest.raises(ValueError, match="presynaptic indices must be whole numbers"):
        from_coo([0.5], [1], 1.0, 1, 2, 2)


def test_a_network_file_with_out_of_range_indices_is_refused(tmp_path):
    net = Network((Population("a", 3),), (Projection("p", "a", "a", CSR(3, 3, [0, 1, 1, 1], [1], 1.0, 1)),))
    path = net.save(tmp_path / "net.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["proj0/indices"] = np.array([2**32 + 1], np.int64)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="targets neuron 4294967297"):
        Network.load(path)


def _config(pop=None, proj=None, **top):
    return {"populations": [{"name": "a", "size": 10, **(pop or {})}],
            "projections": [{"pre": "a", "post": "a", "connectivity": {"kind": "bernoulli", "p": 0.5},
                             **(proj or {})}], **top}


@pytest.mark.parametrize("cfg, message", [
    (_config(pop={"size": 300_000_000_000}), r"populations\[0\].size needs about .* GiB"),
    (_config(proj={"delay": 1e12}), r"projections\[0\].delay \(max 1000000000000 steps\) needs about"),
    (_config(proj={"connectivity": {"kind": "bernoulli", "p": "0.1"}}), r"p must be a finite number in \[0, 1\]"),
    (_config(proj={"connectivity": {"kind": "bernoulli"}}), "bernoulli needs \\['p'\\]"),
    (_config(proj={"weight": "heavy"}), r"projections\[0\].weight: expected a number"),
    (_config(proj={"weight": float("inf")}), r"projections\[0\]: weight of synapse"),
    (_config(seed="abc"), "seed must be an integer"), (_config(dt=0), "dt must be a finite number > 0"),
    (_config(pop={"size": "10"}), "size must be an integer >= 1, got '10' \\(text"),
])
def test_bad_simulate_configs_name_the_key(cfg, message):
    with pytest.raises(ConfigError, match=message):
        network_from_config(cfg)


def test_a_poisson_rate_above_one_over_dt_is_refused_not_capped():
    with pytest.raises(ValueError, match="Poisson rate of 2000 Hz exceeds 1/dt = 1000 Hz"):
        Network((Population("in", 2, "poisson", {"rate": 2000.0}),), dt=1e-3)
    assert Network((Population("in", 2, "poisson", {"rate": 1000.0}),), dt=1e-3).size == 2
