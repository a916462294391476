"""Two-process DistributedDataParallel training (gloo, CPU) matches one process on the same global batches:
`neuro train` (`fit`) and `fit_model` with a user's DataLoader and DistributedSampler."""

import sys
from pathlib import Path

import torch

from neuro.training import config
from neuro.training.api import load_weights
from neuro.training.data import rate_coded_digits
from neuro.training.distributed import spawn
from neuro.training.trainer import MODEL, fit

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: spawned ranks import the worker by name
from ddp_worker import fit_on_rank, net, train  # noqa: E402

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


def test_fit_model_with_a_distributed_sampler_matches_one_process(tmp_path):
    """2 ranks x 10 samples per step = one process x the same 20 samples (DistributedSampler's permutation
    depends on seed + epoch only; rank r takes its r::2 share): DDP averages the two ranks' mean gradients,
    which is the mean gradient of the 20, so the SGD updates agree up to float summation order (1e-7 here;
    assert_close). A much larger lr lets such a difference flip a spike and the runs part. The ranks hold
    bit-identical weights (initial weights broadcast, the same averaged gradients), and model.pt is rank 0's."""
    data = _data()
    spawn(2, fit_on_rank, data, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    single, initial = train(data), net().state_dict()
    written = load_weights(net(), tmp_path).state_dict()  # rank 0's model.pt
    assert all(not torch.equal(p, initial[n]) for n, p in single.named_parameters())  # trained: this can fail
    for name, value in single.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        assert torch.equal(written[name], ranks[0][name]), name
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-5, atol=1e-6, msg=name)
