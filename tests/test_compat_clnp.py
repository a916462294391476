"""CLNP: exactly zero backward transfer (MLP and spiking MLP) against naive fine-tuning, and its diagnostics."""

import copy

import pytest
import torch

from neuro.compat import clnp as C
from neuro.compat.common import load_digits_split
from neuro.io import ConfigError


@pytest.fixture(scope="module")
def tasks():
    return C.split_tasks(load_digits_split(seed=0), n_tasks=3, classes_per_task=2)


SMALL = {**C.DEFAULTS, "hidden": [32, 32], "epochs": 4, "batch_size": 32, "lr": 3e-3, "steps": 4}


@pytest.mark.parametrize("model", ["mlp", "snn"])
def test_clnp_has_exactly_zero_backward_transfer_where_naive_forgets(tasks, model):
    cfg = {**SMALL, "model": model}
    clnp = C.run_sequence(tasks, cfg, seed=0, method="clnp")
    naive = C.run_sequence(tasks, cfg, seed=0, method="naive")
    R = clnp["R"]
    for j in range(len(tasks)):
        assert all(R[i][j] == R[j][j] for i in range(j, len(tasks)))  # an old task's accuracy never moves
        assert R[j][j] > 0.8  # each task is learned (2 classes: chance 0.5)
    assert abs(clnp["bwt"]) < 1e-6
    free = [e["free"] for e in clnp["tasks"]]
    assert all(a >= b for prev, nxt in zip(free, free[1:]) for a, b in zip(prev, nxt))
    assert all(sum(e["reused"]) > 0 for e in clnp["tasks"][1:])
    assert clnp["tasks"][0]["reused"] == [0, 0]
    assert naive["bwt"] <= 0.0


def test_old_heads_give_bit_identical_logits_only_under_clnp(tasks):
    """The robust form of zero forgetting: task 0's logits after later tasks equal those right after task 0."""
    logits = {}
    for method in ("clnp", "naive"):
        model = C.build_model(SMALL, tasks[0].n_features, 2 * len(tasks), seed=1)
        state = C.CLNP(model, 2, torch.Generator().manual_seed(1))
        logits[method] = []
        for t, task in enumerate(tasks):
            if method == "clnp":
                state.reinitialise(t)
            optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
            for _ in range(30):
                optimizer.zero_grad()
                C.activity_l1_loss(1e-4)(state.head(t), task.x_train, task.y_train).backward()
                if method == "clnp":
                    state.mask_gradients(t)
                optimizer.step()
            if method == "clnp":
                state.graceful_prune(t, task.x_train, task.x_test, task.y_test, margin=0.0)
            with torch.no_grad():
                logits[method].append(state.head(0)(tasks[0].x_test).clone())
    assert all(torch.equal(logits["clnp"][0], later) for later in logits["clnp"][1:])
    assert not torch.equal(logits["naive"][0], logits["naive"][-1])


def trained_on_first_task(tasks):
    """A small model and its CLNP state after 40 Adam steps on task 0 (nothing pruned yet)."""
    model = C.build_model(SMALL, tasks[0].n_features, 2 * len(tasks), seed=2)
    state = C.CLNP(model, 2, torch.Generator().manual_seed(2))
    state.reinitialise(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        optimizer.zero_grad()
        C.activity_l1_loss(1e-3)(state.head(0), tasks[0].x_train, tasks[0].y_train).backward()
        optimizer.step()
    return model, state


def test_graceful_pruning_respects_the_margin_and_zeroes_pruned_neurons(tasks):
    model, state = trained_on_first_task(tasks)
    task = tasks[0]
    info = state.graceful_prune(0, task.x_train[:200], task.x_train[200:], task.y_train[200:], margin=0.02)
    assert info["val_after"] >= info["val_before"] - 0.02
    for index, owner in enumerate(state.owner):
        pruned = owner == C.FREE
        assert int(pruned.sum()) == info["pruned"][index]
        assert torch.all(model.layers[index].weight[pruned] == 0)
        assert torch.all(model.layers[index + 1].weight[:, pruned] == 0)
    assert state.reuse_counts(0) == [0, 0]


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        C.run_from_config({"epoch": 3}, tmp_path)
    with pytest.raises(ValueError, match="exceed"):
        C.split_tasks(load_digits_split(), 6, 2)
    with pytest.raises(ValueError, match="model must be"):
        C.build_model({**SMALL, "model": "cnn"}, 64, 4, 0)


def test_relative_threshold_does_not_depend_on_a_layers_activity_scale(tasks):
    model, state = trained_on_first_task(tasks)
    task = tasks[0]
    trained, activity = copy.deepcopy(model.state_dict()), state.activity(task.x_train[:200])

    def pruned(scale: float, threshold: str) -> list[int]:
        model.load_state_dict(trained)
        state.owner = [torch.full_like(owner, C.FREE) for owner in state.owner]
        state.activity = lambda x: [activity[0], scale * activity[1]]  # layer 2's activities on another scale
        return state.graceful_prune(0, task.x_train[:200], task.x_train[200:], task.y_train[200:], margin=0.02,
                                    threshold=threshold)["pruned"]

    assert pruned(1.0, "relative") == pruned(10.0, "relative")
    assert pruned(1.0, "absolute") != pruned(10.0, "absolute")  # one threshold: the scale decides who is pruned
    with pytest.raises(ValueError, match="threshold must be one of"):
        state.graceful_prune(0, task.x_train[:200], task.x_train[200:], task.y_train[200:], 0.02, threshold="max")
