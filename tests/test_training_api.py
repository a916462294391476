"""fit_model: any model (neuro layers, snntorch, plain torch) on any loader (a tonic dataset's), with resume."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuro.training import Dense, Readout, SpikingNet
from neuro.training.api import CHECKPOINT, MODEL, TrainingDiverged, fit_model, load_weights
from neuro.training.checkpoint import CheckpointError
from neuro.training.data import rate_coded_digits


@pytest.fixture(scope="module")
def digits():
    data = rate_coded_digits(time_steps=4, test_size=200, seed=0)
    return TensorDataset(data.x_train[:400], data.y_train[:400]), TensorDataset(data.x_test, data.y_test)


def _loaders(digits, seed=0):
    train, test = digits
    return (DataLoader(train, batch_size=40, shuffle=True, generator=torch.Generator().manual_seed(seed)),
            DataLoader(test, batch_size=100))


def test_snntorch_model_learns_through_the_api(digits, tmp_path):
    import snntorch as snn

    torch.manual_seed(0)
    model = SpikingNet([nn.Linear(64, 32), snn.Leaky(beta=0.9, init_hidden=True), Readout(32, 10)])
    train, test = _loaders(digits)
    history = fit_model(model, train, test, epochs=3, lr=5e-3, out=tmp_path, progress=False)
    assert history[-1]["test_acc"] > history[0]["test_acc"] + 0.3  # the untrained model, same run
    assert history[-1]["test_acc"] > 0.5
    files = {p.name for p in tmp_path.iterdir()}
    assert {"checkpoint.pt", "model.pt", "metrics.json", "metrics.csv", "learning_curve.png"} <= files
    assert [r["epoch"] for r in json.loads((tmp_path / "metrics.json").read_text())] == [0, 1, 2, 3]


def test_a_plain_torch_model_trains_with_time_first_false(digits):
    train, test = digits
    flat = [TensorDataset(d.tensors[0].float().mean(1), d.tensors[1]) for d in (train, test)]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    history = fit_model(model, DataLoader(flat[0], batch_size=40, shuffle=True), DataLoader(flat[1], 100),
                        epochs=3, lr=1e-2, time_first=False, progress=False)
    assert history[-1]["test_acc"] > history[0]["test_acc"] + 0.4


def test_resume_with_a_shuffling_loader_is_exact(digits, tmp_path):
    def run(out, **kw):
        torch.manual_seed(1)
        model = SpikingNet([Dense(64, 16), Readout(16, 10)])
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
        train, test = digits
        loader = DataLoader(train, batch_size=40, shuffle=True)  # order drawn from torch's global RNG
        return model, fit_model(model, loader, DataLoader(test, 100), epochs=2, out=out, optimizer=opt,
                                scheduler=sched, progress=False, config={"run": "a"}, **kw)

    full, h_full = run(tmp_path / "full")
    run(tmp_path / "cut", stop_after=1)
    torch.manual_seed(123)  # whatever the RNG is now: resume restores the checkpoint's
    resumed, h_res = run(tmp_path / "cut", resume=True)
    assert [r["epoch"] for r in h_res] == [0, 1, 2]
    assert h_res[-1]["test_loss"] == h_full[-1]["test_loss"]
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    with pytest.raises(ValueError, match="different config"):
        fit_model(resumed, digits[0], epochs=3, out=tmp_path / "cut", resume=True, config={"run": "b"},
                  progress=False)


def test_model_pt_loads_back_into_a_fresh_model(digits, tmp_path):
    def net():
        return SpikingNet([Dense(64, 16), Readout(16, 10)])

    torch.manual_seed(3)
    model = net()
    train, test = _loaders(digits)
    fit_model(model, train, test, epochs=2, lr=5e-3, out=tmp_path, stop_after=1, progress=False)
    assert not (tmp_path / MODEL).exists()  # written only when the last epoch is done
    fit_model(model, train, test, epochs=2, lr=5e-3, out=tmp_path, resume=True, progress=False)
    torch.manual_seed(4)
    fresh = net()
    x = next(iter(test))[0].transpose(0, 1).float()
    assert not torch.equal(fresh(x), model(x))  # other initial weights: the test below can fail
    assert load_weights(fresh, tmp_path) is fresh  # the out folder or the file itself
    assert torch.equal(fresh(x), model(x))
    with pytest.raises(CheckpointError, match=r"model\.pt: the weights do not fit"):
        load_weights(SpikingNet([Dense(64, 8), Readout(8, 10)]), tmp_path / MODEL)
    data = bytearray((tmp_path / MODEL).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"bad\.pt: (not a readable model file|model file is damaged)"):
        load_weights(net(), tmp_path / "bad.pt")


def test_a_tonic_dataset_loader_plugs_in(tmp_path):
    import tonic

    from neuro.data import digits_nmnist
    from neuro.data.datasets import NMNIST

    root = digits_nmnist.generate(tmp_path / "digits", n_train=60, n_test=30, seed=0, progress=False)
    sensor = tonic.transforms.Downsample(spatial_factor=0.25)
    to_frame = tonic.transforms.ToFrame(sensor_size=(9, 9, 2), n_time_bins=4)
    transform = tonic.transforms.Compose([sensor, to_frame, lambda f: (f > 0).astype(np.float32)])
    train = NMNIST(str(root), train=True, transform=transform)
    test = NMNIST(str(root), train=False, transform=transform)
    collate = tonic.collation.PadTensors(batch_first=True)  # [B, T, 2, 9, 9]
    torch.manual_seed(0)
    model = SpikingNet([nn.Flatten(), Dense(162, 32), Readout(32, 10)])
    history = fit_model(model, DataLoader(train, 20, shuffle=True, collate_fn=collate),
                        DataLoader(test, 30, collate_fn=collate), epochs=2, lr=5e-3, out=tmp_path / "run",
                        progress=False)
    assert len(history) == 3 and history[1]["train_loss"] is not None
    assert history[-1]["train_loss"] < history[1]["train_loss"] or history[-1]["test_acc"] > history[0]["test_acc"]
    assert (tmp_path / "run" / CHECKPOINT).is_file()


def test_bad_input_is_named(digits):
    model = SpikingNet([Dense(64, 8), Readout(8, 10)])
    with pytest.raises(TypeError, match="nn.Module"):
        fit_model(lambda x: x, digits[0])
    with pytest.raises(ValueError, match="epochs must be"):
        fit_model(model, digits[0], epochs=0)
    flat = [(torch.zeros(4, 64), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(ValueError, match="time_first=True needs batches"):
        fit_model(model, flat, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit_model(model, [], progress=False)
    bad = [(torch.full((4, 3, 64), float("nan")), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        fit_model(model, bad, progress=False)
