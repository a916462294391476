"""Quantization-aware training: the forward pass is the exporter's fixed point, and it still learns."""

import numpy as np
import pytest
import torch

from deployment.quantize import quantize
from neuro.fixed_point import FixedPointSimulator
from neuro.io import ConfigError
from neuro.training import config
from neuro.training.convert import to_network

SHAPE = (2, 6, 6)


@pytest.mark.parametrize("layers, extra", [
    ([{"type": "dense", "size": 24}], {}),
    ([{"type": "conv", "channels": 3, "kernel": 3, "stride": 2, "padding": 1}, {"type": "dense", "size": 16}], {}),
    ([{"type": "recurrent", "size": 20}], {"tau_mem_cv": 0.5, "tau_syn": 5e-3, "reset": "hard"}),
], ids=["dense", "conv", "recurrent"])
def test_qat_forward_is_the_fixed_point_engine_spike_for_spike(layers, extra):
    cfg = config.resolve({"model": {"layers": layers, "qat": True, **extra}})
    model = config.build_model(cfg["model"], SHAPE, 3, seed=0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # enough drive for many spikes
    x = (torch.rand(8, 5, *SHAPE, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    with torch.no_grad():
        _, outputs = model(x, record=True)
    net = to_network(model, SHAPE)
    fixed, _ = quantize(net)
    names = [p.name for p in net.populations[1:]]
    result = FixedPointSimulator(fixed).run(8, [{"input": x[:, b].reshape(8, -1).numpy() > 0} for b in range(5)],
                                            record_state={names[-1]: None})
    for name, out in zip(names[:-1], outputs[:-1]):
        ours = np.stack([result.raster(name, b) for b in range(5)], axis=1)
        np.testing.assert_array_equal(out.reshape(8, 5, -1).numpy() > 0, ours)
        assert ours.sum() > 50
    v = result.trace(names[-1], "v").transpose(1, 0, 2) / fixed.metadata["readout_scale"][names[-1]]
    np.testing.assert_allclose(v, outputs[-1].numpy(), atol=1e-12)
    float_model = config.build_model({**cfg["model"], "qat": False}, SHAPE, 3, seed=0).double()
    float_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        _, float_outputs = float_model(x, record=True)
    assert not torch.equal(float_outputs[-1], outputs[-1])  # the float forward differs: QAT is not a no-op


def test_qat_learns_like_float_training():
    """Same data, seed and budget: QAT reaches an accuracy close to float training, far above chance."""
    rng = np.random.default_rng(0)
    y = torch.as_tensor(rng.integers(0, 3, 384))
    x = rng.random((384, 8) + SHAPE) < 0.08
    for c in range(3):
        x[y.numpy() == c, :, 0, 2 * c:2 * c + 2] |= rng.random(((y == c).sum().item(), 8, 2, 6)) < 0.5
    x = torch.as_tensor(x, dtype=torch.float32).transpose(0, 1)
    accuracy = {}
    for qat in (False, True):
        cfg = config.resolve({"model": {"layers": [{"type": "dense", "size": 24}], "qat": qat}})
        model = config.build_model(cfg["model"], SHAPE, 3, seed=0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for i in range(40):
            batch = slice(32 * (i % 8), 32 * (i % 8 + 1))
            loss = torch.nn.functional.cross_entropy(model(x[:, batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy[qat] = float((model(x[:, 256:]).argmax(1) == y[256:]).float().mean())
    assert accuracy[True] > 0.8 and accuracy[True] > accuracy[False] - 0.1, accuracy


def test_qat_must_be_a_boolean():
    with pytest.raises(ConfigError, match="model.qat must be true or false"):
        config.resolve({"model": {"qat": "yes"}})
