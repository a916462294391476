"""A trained SpikingNet converted to a neuro.Network gives the same spikes in the event simulator (float64)."""

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from neuro.training.convert import compare, conv_synapses, to_network
from neuro.training.layers import Conv, Dense, Readout, Recurrent
from neuro.training.model import SpikingNet


def _spiking(model, factor=3.0):
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)
    return model.double()


def _check_same_outputs(model, input_shape, steps=15, batch=3):
    torch.manual_seed(10)
    x = (torch.rand(steps, batch, *input_shape) < 0.3).double()
    result = compare(model, x, dtype=np.float64)
    assert list(result) == [f"layer{i}" for i in range(len(model.layers))]
    for name, r in result.items():
        if "spikes" in r:
            assert r["spikes"] > 0, f"{name} is silent: the test would prove nothing"
            assert r["spike_agreement"] == 1.0, name
        else:
            assert r["max_abs_diff_v"] < 1e-12, name


def test_feedforward_conv_dense_model_matches_simulator():
    torch.manual_seed(0)
    tau = np.random.default_rng(0).uniform(5e-3, 40e-3, 16)
    model = _spiking(SpikingNet([Conv(2, 3, 3, (6, 6), stride=1, padding=1, reset="hard"),
                                 Dense(3 * 6 * 6, 16, tau_mem=tau, reset="soft",
                                       spike_fn=snn.surrogate.atan()),  # float32 spikes cast to float64
                                 Readout(16, 4)]))
    _check_same_outputs(model, (2, 6, 6))


def test_recurrent_model_matches_simulator():
    torch.manual_seed(1)
    model = _spiking(SpikingNet([Recurrent(12, 10, reset="soft", v_th=0.8), Dense(10, 5, reset="none", bias=False,
                                                                                  tau_syn=5e-3)], readout="count"))
    _check_same_outputs(model, (12,))


@pytest.mark.parametrize("conv, size", [
    (nn.Conv2d(2, 3, 3, stride=2, padding=1), (7, 5)),
    (nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=2), (8, 7)),
    (nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=2), (11,)),
])
def test_unrolled_convolution_equals_torch(conv, size):
    torch.manual_seed(2)
    conv = conv.double()
    x = torch.rand(conv.in_channels, *size, dtype=torch.float64)
    dense = conv_synapses(conv, size).to_dense()  # [post, pre]
    bias = conv.bias.reshape(-1, *(1,) * len(size))
    out = conv(x[None]).detach()
    expected = (out - bias.detach()).numpy().ravel()
    # subtracting the bias again cancels digits: the error scales with the output, not with each entry
    np.testing.assert_allclose(dense @ x.numpy().ravel(), expected, rtol=1e-12, atol=1e-12 * float(out.abs().max()))


def test_unconvertible_layers_are_named():
    model = SpikingNet([nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True), Readout(4, 2)])
    with pytest.raises(ValueError, match="layer 0 .*Linear.* has no Network equivalent"):
        to_network(model, (4,))



def test_a_synapse_bias_into_a_slow_current_converts_exactly():
    torch.manual_seed(3)
    model = _spiking(SpikingNet([Dense(6, 8, tau_syn=4e-3, v_th=0.6), Readout(8, 3, tau_syn=5e-3)]))
    with torch.no_grad():
        model.layers[0].synapse.bias.fill_(0.2)
    net = to_network(model, (6,))
    params = net.population("layer0").params
    assert np.all(params["bias_syn"] == 0.2) and np.all(params["bias"] == 0)
    _check_same_outputs(model, (6,))
