"""Spiking layers built on LIFCell: snntorch interoperation, surrogates, MPR, layer-major evaluation."""

import pytest
import snntorch as snn
import snntorch.surrogate
import torch
from torch import nn

from neuro.training.layers import Conv, Dense, Readout, Recurrent
from neuro.training.model import SpikingNet


def _input(shape, steps=12, batch=4, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, *shape, generator=g) < p).float()


def _scaled(model, factor=3.0):
    """Larger initial weights so that every layer spikes."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)
    return model


def test_our_layers_sit_next_to_snntorch_layers():
    torch.manual_seed(0)
    model = _scaled(SpikingNet([nn.Linear(20, 16), snn.Leaky(beta=0.9, init_hidden=True), Dense(16, 12),
                                nn.Linear(12, 8), snn.Leaky(beta=0.8, init_hidden=True, output=True),
                                Readout(8, 3)]))
    x = _input((20,))
    logits, outputs = model(x, record=True)
    assert logits.shape == (4, 3)
    assert [o.shape[:2] for o in outputs] == [(12, 4)] * 6
    assert outputs[1].sum() > 0 and outputs[2].sum() > 0 and outputs[4].sum() > 0  # both kinds spike
    logits.sum().backward()
    assert model.layers[0].weight.grad.abs().sum() > 0  # gradient flows through our layer into snntorch's side
    assert torch.equal(model(x), logits.detach())  # snntorch hidden state is reset for every sequence


def test_snntorch_surrogate_is_accepted_as_spike_fn():
    x = _input((10,))
    grads, spikes = [], []
    for spike_fn in (None, snntorch.surrogate.atan()):
        torch.manual_seed(1)
        layer = _scaled(Dense(10, 6, spike_fn=spike_fn))
        s = layer(x)
        (s * torch.arange(1.0, 7.0)).sum().backward()
        spikes.append(s.detach())
        grads.append(layer.synapse.weight.grad.clone())
    assert torch.equal(spikes[0], spikes[1]) and spikes[0].sum() > 0
    assert not torch.allclose(grads[0], grads[1])


def test_mpr_changes_gradients_not_forward_spikes():
    x = _input((10,))
    results = []
    for use_mpr in (False, True):
        torch.manual_seed(2)
        model = _scaled(SpikingNet([Recurrent(10, 8, use_mpr=use_mpr), Readout(8, 3)]))
        logits, outputs = model(x, record=True)
        logits.pow(2).sum().backward()
        results.append((outputs[0].detach(), model.layers[0].synapse.weight.grad.clone()))
    (s0, g0), (s1, g1) = results
    assert torch.equal(s0, s1) and s0.sum() > 0
    assert not torch.allclose(g0, g1)


@pytest.mark.parametrize("make", [lambda: Dense(2 * 6 * 6, 5), lambda: Recurrent(2 * 6 * 6, 5),
                                  lambda: Conv(2, 3, 3, (6, 6), padding=1)])
def test_layer_major_forward_equals_stepping(make):
    torch.manual_seed(3)
    layer = _scaled(make())
    x = _input((2, 6, 6))
    coef, state = layer.begin(x.shape[1])
    stepped = []
    for xt in x:
        s, state = layer.step(xt, state, coef)
        stepped.append(s)
    assert torch.allclose(layer(x), torch.stack(stepped))


def test_heterogeneous_learnable_timescales():
    tau = torch.linspace(5e-3, 50e-3, 6).numpy()
    layer = _scaled(Dense(10, 6, tau_mem=tau, learn_tau=True))
    names = {n for n, _ in layer.named_parameters()}
    assert "cell.log_tau_mem" in names and "cell.log_tau_syn" not in names  # tau_syn = 0 stays fixed
    layer(_input((10,))).sum().backward()
    grad = layer.cell.log_tau_mem.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_readout_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a last layer"):
        SpikingNet([Dense(4, 3)], readout="membrane")
    with pytest.raises(ValueError, match="unknown readout"):
        SpikingNet([Readout(4, 3)], readout="max")
