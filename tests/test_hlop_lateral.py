"""The HLOP lateral circuit: Oja subspace convergence, per-task add/merge, the orthogonality safeguard."""

import pytest
import torch

from neuro.hlop.lateral import LateralCircuit


def low_rank_data(n, r, samples, seed, noise=0.01, basis=None):
    """Samples ``x = U diag(scales) c + noise`` with orthonormal ``U[n, r]`` (distinct variances)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(n, r, generator=g))[0] if basis is None else basis
    scales = torch.linspace(2.0, 1.0, r)
    x = (torch.randn(samples, r, generator=g) * scales) @ u.T + noise * torch.randn(samples, n, generator=g)
    return x, u


def principal_cosines(h, u):
    """Cosines of the principal angles between span(rows of h) and span(columns of u)."""
    q = torch.linalg.qr(h.T.double())[0]
    return torch.linalg.svdvals(q.T @ u.double())


def train(circuit, x, epochs=25, batch=64):
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            circuit.hebbian_update(x[start:start + batch])


def test_oja_rule_finds_the_top_subspace_as_an_orthonormal_basis():
    x, _ = low_rank_data(n=32, r=4, samples=512, seed=0)
    top = torch.linalg.svd(x, full_matrices=False)[2][:4].T
    circuit = LateralCircuit(32, lr=0.05)
    circuit.add_subspace(4, torch.Generator().manual_seed(1))
    start = principal_cosines(circuit.weight, top).min()
    train(circuit, x)
    assert start < 0.9
    assert principal_cosines(circuit.weight, top).min() > 0.99
    assert circuit.orthonormality_error() < 1e-2


def test_new_block_learns_the_residual_subspace_and_old_rows_stay_frozen():
    g = torch.Generator().manual_seed(2)
    u = torch.linalg.qr(torch.randn(40, 6, generator=g))[0]
    x_old, _ = low_rank_data(40, 3, 512, seed=3, basis=u[:, :3])
    x_new, _ = low_rank_data(40, 3, 512, seed=4, basis=u[:, 3:])
    circuit = LateralCircuit(40, lr=0.05)
    circuit.add_subspace(3, g)
    train(circuit, x_old)
    circuit.merge()
    old = circuit.weight.clone()
    circuit.add_subspace(3, g)
    train(circuit, torch.cat([x_old, x_new])[torch.randperm(1024, generator=g)])
    circuit.merge()
    assert torch.equal(circuit.weight[:3], old)
    assert principal_cosines(circuit.weight[3:], u[:, 3:]).min() > 0.99
    assert circuit.orthonormality_error() < 1e-4


def test_merge_orthonormalises_rows_that_did_not_converge():
    circuit = LateralCircuit(10, lr=0.01)
    circuit.add_subspace(3, torch.Generator().manual_seed(0))
    circuit.merge()
    circuit.add_subspace(4, torch.Generator().manual_seed(1))
    circuit.weight[3:] = circuit.weight[:1].repeat(4, 1) + 0.01 * torch.randn(4, 10)  # nearly the old row 0
    drift = circuit.merge()
    assert drift > 1.0
    assert circuit.orthonormality_error() < 1e-4
    x = torch.randn(5, 10)
    p = circuit.residual(x)
    assert torch.allclose(circuit.residual(p), p, atol=1e-5)  # I - H^T H is a projector


def test_capacity_and_bad_input_are_rejected():
    circuit = LateralCircuit(8)
    circuit.add_subspace(6)
    with pytest.raises(ValueError, match="merge"):
        circuit.add_subspace(1)
    circuit.merge()
    with pytest.raises(ValueError, match="2 are free"):
        circuit.add_subspace(3)
    with pytest.raises(ValueError, match="activity"):
        circuit.hebbian_update(torch.randn(4, 7))
    with pytest.raises(ValueError, match="n_in"):
        LateralCircuit(0)


def test_spiking_lateral_neurons_report_quantised_clipped_counts():
    circuit = LateralCircuit(4, spiking=True, spike_scale=2.0, spike_steps=4.0)
    y = circuit.lateral(torch.tensor([[0.3, -5.0, 1.1, 0.0]]), torch.eye(4))
    assert torch.allclose(y, torch.tensor([[0.5, -2.0, 1.0, 0.0]]))


def test_state_dict_round_trip_keeps_rows_and_frozen_count():
    circuit = LateralCircuit(12)
    circuit.add_subspace(5, torch.Generator().manual_seed(0))
    circuit.merge()
    copy = LateralCircuit(12)
    copy.load_state_dict(circuit.state_dict())
    assert copy.n_frozen == 5 and torch.equal(copy.weight, circuit.weight)


def test_a_diverging_hebbian_rule_is_reported_not_hidden():
    circuit = LateralCircuit(16, lr=5.0)
    circuit.add_subspace(4, torch.Generator().manual_seed(0))
    x = 10 * torch.rand(64, 16, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="diverged"):
        for _ in range(20):
            circuit.hebbian_update(x)
