"""HLOP on any model (hooks on Linear/Conv2d): an snntorch model, 30 classes over 3 tasks, against fine-tuning."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuro.hlop.hooks import HebbianProjection
from neuro.hlop.sequence import LoaderTask, fit_tasks
from neuro.training.api import fit_model

T = 4


def permuted_tasks(n_tasks, steps=T):
    """Task j: digits with the j-th pixel permutation, labels 10 j + digit (class-incremental, 10 n classes)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = torch.tensor(digits.data / 16, dtype=torch.float32), torch.tensor(digits.target)
    tasks = []
    for j in range(n_tasks):
        perm = torch.randperm(64, generator=torch.Generator().manual_seed(j))
        xs, ys = x[:, perm].unsqueeze(1).expand(-1, steps, -1), y + 10 * j
        tasks.append(LoaderTask(f"perm{j}", DataLoader(TensorDataset(xs[:1200], ys[:1200]), 64, shuffle=True),
                                DataLoader(TensorDataset(xs[1200:], ys[1200:]), 600)))
    return tasks


class SnnTorchNet(nn.Module):
    def __init__(self, classes, hidden=128):
        import snntorch as snn

        super().__init__()
        self.fc1, self.lif = nn.Linear(64, hidden, bias=False), snn.Leaky(beta=0.8, threshold=0.5)
        self.fc2 = nn.Linear(hidden, classes, bias=False)

    def forward(self, x):  # x [T, B, 64]
        mem, out = self.lif.init_leaky(), 0
        for xt in x:
            spk, mem = self.lif(self.fc1(xt), mem)
            out = out + self.fc2(spk)
        return out / len(x)


def test_hlop_keeps_old_classes_of_an_snntorch_model_where_finetuning_forgets():
    torch.manual_seed(0)
    tasks, init = permuted_tasks(3), SnnTorchNet(30)
    hlop = fit_tasks(copy.deepcopy(init), tasks, hlop={"first": [20, 40], "increment": [10, 20], "lr": [0.1, 0.05]},
                     epochs=3)
    finetune = fit_tasks(copy.deepcopy(init), tasks, epochs=3)
    assert finetune["matrix"][0, 0] > 0.7 and hlop["matrix"][0, 0] > 0.7  # both learned task 0
    assert hlop["BWT"] > finetune["BWT"] + 0.4
    assert hlop["ACC"] > finetune["ACC"] + 0.3
    assert max(max(d) for d in hlop["orthonormality_error_before_merge"]) < 1.0


def test_projected_conv_and_linear_gradients_are_orthogonal_to_the_frozen_subspace():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    hlop = HebbianProjection(model, first=[6, 10], increment=2, lr=0.05)
    x = torch.rand(32, 2, 6, 6)
    hlop.begin_task()
    for _ in range(20):
        model(x).sum().backward()
        hlop.after_batch()
    hlop.end_task()
    hlop.begin_task()
    model.zero_grad()
    nn.functional.cross_entropy(model(torch.rand(8, 2, 6, 6)), torch.arange(8) % 5).backward()
    for (name, layer), lateral in zip([("0", model[0]), ("3", model[3])], hlop.laterals):
        g = layer.weight.grad.reshape(layer.weight.shape[0], -1)
        assert lateral.n_frozen > 0
        assert torch.linalg.norm(g @ lateral.basis.T) < 1e-5 * max(1.0, float(torch.linalg.norm(g))), name
    hlop.remove()
    model.zero_grad()
    nn.functional.cross_entropy(model(torch.rand(8, 2, 6, 6)), torch.arange(8) % 5).backward()
    g = model[3].weight.grad
    assert torch.linalg.norm(g @ hlop.laterals[1].basis.T) > 1e-3  # unprojected once removed


def test_its_state_checkpoints_with_fit_model(tmp_path):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    hlop = HebbianProjection(model, first=2, increment=1)
    hlop.begin_task()
    data = [(torch.rand(16, 8), torch.randint(0, 3, (16,)))] * 3
    fit_model(model, data, epochs=1, out=tmp_path, time_first=False, progress=False, callbacks=[hlop])
    fresh = HebbianProjection(nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)), first=2, increment=1)
    fit_model(nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)), data, epochs=1, out=tmp_path,
              time_first=False, progress=False, resume=True, callbacks=[fresh])
    assert fresh.task == 0
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(hlop.laterals, fresh.laterals))


def test_bad_use_is_named():
    with pytest.raises(ValueError, match="no nn.Linear or nn.Conv2d"):
        HebbianProjection(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="not Linear/Conv2d layers"):
        HebbianProjection(nn.Sequential(nn.Linear(3, 2)), layers=["fc9"])
    with pytest.raises(ValueError, match="one value or one per layer"):
        HebbianProjection(nn.Sequential(nn.Linear(3, 2)), first=[1, 2])
    with pytest.raises(TypeError, match="hlop must be"):
        fit_tasks(nn.Linear(3, 2), [LoaderTask("a", [], [])], hlop="yes")
    with pytest.raises(TypeError, match="LoaderTask"):
        fit_tasks(nn.Linear(3, 2), [([], [])])


def test_fit_tasks_resumes_mid_sequence_with_the_uninterrupted_result(tmp_path):
    flat = [(t.name, t.train.dataset.tensors, next(iter(t.test))) for t in permuted_tasks(3)]

    def run(out=None, **kw):  # a fresh model, fresh loaders (shuffled by torch's global RNG): a new process
        torch.manual_seed(5)
        model = nn.Sequential(nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 30))
        tasks = [LoaderTask(name, DataLoader(TensorDataset(x[:240, 0], y[:240]), 40, shuffle=True),
                            [(xt[:, 0], yt)]) for name, (x, y), (xt, yt) in flat]
        return model, fit_tasks(model, tasks, hlop={"first": [8, 8], "increment": 4}, time_first=False, out=out,
                                lr=0.1, **{"epochs": 3, **kw})

    full_model, full = run()
    _, cut = run(tmp_path, stop_after=1)
    assert cut["tasks_done"] == 1 and cut["matrix"].shape == (1, 3) and "ACC" not in cut
    assert (tmp_path / "tasks.pt").is_file()
    torch.manual_seed(999)  # whatever the RNG is now: resume restores the checkpoint's
    resumed_model, resumed = run(tmp_path, resume=True)
    assert resumed["tasks_done"] == 3 and full["matrix"][2, 2] > full["initial"][2] + 0.15  # it learned
    assert np.array_equal(resumed["matrix"], full["matrix"]) and resumed["ACC"] == full["ACC"]
    assert resumed["orthonormality_error_before_merge"] == full["orthonormality_error_before_merge"]
    for k, v in full_model.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k
    with pytest.raises(ValueError, match="written for another run"):
        run(tmp_path, resume=True, epochs=4)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(tmp_path / "empty", resume=True)
