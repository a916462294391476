"""Two-process DistributedDataParallel training (gloo, CPU) matches one process on the same global batches."""

import torch

from neuro.training import config
from neuro.training.data import rate_coded_digits
from neuro.training.distributed import spawn
from neuro.training.trainer import MODEL, fit

CFG = {"seed": 4, "epochs": 1, "data": {"batch_size": 40},
       "model": {"layers": [{"type": "recurrent", "size": 24}], "tau_mem": 40e-3}, "optim": {"lr": 5e-3}}


def _data():
    data = rate_coded_digits(time_steps=5, test_size=100, seed=1)
    data.x_train, data.y_train = data.x_train[:200], data.y_train[:200]  # 5 steps of 40 samples
    return data


def test_two_processes_match_one(tmp_path):
    cfg = config.resolve(CFG)
    data = _data()
    single, _ = fit(cfg, data, progress=False)
    spawn(2, fit, cfg, data, tmp_path, False)  # each rank trains on its 20 samples of every batch of 40
    parallel = torch.load(tmp_path / MODEL, weights_only=True)["state_dict"]
    initial = config.build_model(cfg["model"], data.input_shape, data.n_classes, cfg["seed"]).state_dict()
    moved = {name for name, value in single.state_dict().items() if not torch.equal(value, initial[name])}
    assert {"layers.0.synapse.weight", "layers.0.recurrent.weight", "layers.1.synapse.weight"} <= moved
    for name, value in single.state_dict().items():
        torch.testing.assert_close(parallel[name], value, rtol=1e-4, atol=1e-5, msg=name)
