"""First-contact fixes: the user's model stays unchanged, dataset cache overwrite, unit warnings, short reprs."""

import warnings

import numpy as np
import pytest
import torch

import synapses as S
from neuro import Network, Population, Projection
from neuro.network import UnitWarning


def test_compare_leaves_the_users_model_as_it_was():
    from neuro.training import Dense, Readout, SpikingNet
    from neuro.training.convert import compare

    torch.manual_seed(0)
    model = SpikingNet([Dense(6, 5), Readout(5, 3)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = (torch.rand(4, 2, 6) > 0.5).float()
    compare(model, x, np.float64)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model(x)  # still runs on float32 input


def test_a_dataset_cache_clash_names_the_option_and_overwrite_replaces_it(tmp_path):
    from neuro.training import config
    from neuro.training.data import load_frames

    data = {"root": str(tmp_path / "digits"), "n_train": 20, "n_test": 10, "time_bins": 3, "downsample": 0.25}
    first = load_frames(config.resolve({"data": data})["data"], progress=False)
    assert len(first.y_train) == 20
    bigger = {**data, "n_train": 24}
    with pytest.raises(ValueError, match="--overwrite-data or data.overwrite"):
        load_frames(config.resolve({"data": bigger})["data"], progress=False)
    again = load_frames(config.resolve({"data": {**bigger, "overwrite": True}})["data"], progress=False)
    assert len(again.y_train) == 24


def test_implausible_units_warn_and_plausible_ones_do_not():
    with pytest.warns(UnitWarning, match="tau_mem = 20 s.*did you mean 20e-3"):
        Population("net", 3, params={"tau_mem": 20})
    with pytest.warns(UnitWarning, match="dt = 1 s"):
        Network([Population("a", 2)], dt=1.0)
    with pytest.warns(UnitWarning, match="t_ref"):
        Population("net", 3, params={"t_ref": 2})
    with pytest.warns(UnitWarning, match="positive weights on the inhibitory receptor"):
        Projection("p", "a", "b", S.bernoulli(3, 3, 1.0, weight=0.5, seed=0), receptor="inh")
    from neuro.training import config

    with pytest.warns(UnitWarning, match="train config: model.tau_mem"):
        config.resolve({"model": {"tau_mem": 20}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Population("net", 3, params={"tau_mem": [20e-3, np.inf, 0.5], "t_ref": 2e-3})
        Projection("p", "a", "b", S.bernoulli(3, 3, 1.0, weight=-0.5, seed=0), receptor="inh")
        config.resolve({})


def test_reprs_are_short():
    n = 400
    pops = [Population("input", 50, "poisson"), Population("net", n, params={"tau_mem": np.full(n, 0.02)})]
    net = Network(pops, [Projection("in", "input", "net", S.bernoulli(50, n, 0.1, weight=0.1, seed=2))])
    assert len(repr(net)) < 200 and "net[400]" in repr(net)
    assert repr(pops[1]) == "Population('net', 400, 'lif', reset='hard')"
    assert "synapses" in repr(net.projections[0]) and len(repr(net.projections[0])) < 100
