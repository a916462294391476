"""Connectivity builders: degrees, Dale's law, seeds, conversions, validation."""

import numpy as np
import pytest
import scipy.sparse as sp

import synapses as S


def test_bernoulli_density_seed_and_no_autapses():
    a = S.bernoulli(400, 400, 0.1, weight=lambda r, n: r.normal(0, 1, n), autapses=False, seed=3)
    b = S.bernoulli(400, 400, 0.1, weight=lambda r, n: r.normal(0, 1, n), autapses=False, seed=3)
    c = S.bernoulli(400, 400, 0.1, autapses=False, seed=4)
    assert a.nnz == pytest.approx(0.1 * 400 * 399, rel=0.03)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.indptr, c.indptr)
    assert not np.any(a.pre_indices() == a.indices)
    pairs = a.pre_indices() * 400 + a.indices
    assert len(np.unique(pairs)) == a.nnz  # no duplicate synapses


def test_fixed_indegree_gives_exact_in_degrees():
    c = S.fixed_indegree(300, 200, 25, seed=1)
    np.testing.assert_array_equal(c.in_degree(), 25)
    rec = S.fixed_indegree(100, 100, 99, autapses=False, seed=1)
    np.testing.assert_array_equal(rec.in_degree(), 99)
    assert not np.any(rec.pre_indices() == rec.indices)
    with pytest.raises(ValueError, match="in-degree"):
        S.fixed_indegree(10, 10, 10, autapses=False)


def test_small_world_degrees_and_rewiring():
    ring = S.small_world(50, 4, 0.0, seed=0)
    np.testing.assert_array_equal(ring.out_degree(), 4)
    np.testing.assert_array_equal(ring.in_degree(), 4)
    assert set(ring.indices[ring.indptr[0]:ring.indptr[1]]) == {1, 2, 48, 49}
    rewired = S.small_world(200, 6, 0.3, seed=1)
    np.testing.assert_array_equal(rewired.out_degree(), 6)
    lattice = S.small_world(200, 6, 0.0, seed=1)
    changed = np.mean(rewired.to_dense() != lattice.to_dense()) * 200 * 200 / 2 / rewired.nnz
    assert 0.2 < changed < 0.4
    assert not np.any(rewired.pre_indices() == rewired.indices)


def test_all_to_all_and_dense_and_scipy_round_trips():
    full = S.all_to_all(3, 4, weight=0.5, autapses=True)
    assert full.nnz == 12
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 7)) * (rng.random((5, 7)) < 0.4)
    csr = S.from_dense(w, delays=2)
    np.testing.assert_array_equal(csr.to_dense(), w)
    assert (csr.n_pre, csr.n_post) == (7, 5) and np.all(csr.delays == 2)
    np.testing.assert_array_equal(S.from_scipy(sp.csr_matrix(w)).to_dense(), w)
    np.testing.assert_array_equal(csr.to_scipy().toarray(), w)


def test_dale_law():
    exc = np.arange(100) < 80
    c = S.apply_dale(S.bernoulli(100, 100, 0.2, weight=lambda r, n: r.normal(0, 1, n), seed=2), exc)
    assert S.obeys_dale(c, exc)
    pre = c.pre_indices()
    assert np.all(c.weights[exc[pre]] >= 0) and np.all(c.weights[~exc[pre]] <= 0)
    assert not S.obeys_dale(c, ~exc)


def test_select_keeps_rows_consistent():
    c = S.bernoulli(50, 60, 0.3, weight=lambda r, n: r.normal(size=n), seed=5)
    keep = np.random.default_rng(0).random(c.nnz) < 0.5
    sub = c.select(keep)
    assert sub.nnz == keep.sum()
    np.testing.assert_allclose(sub.to_dense(), c.with_weights(c.weights * keep).to_dense())


def test_csr_validation_errors():
    with pytest.raises(ValueError, match="outside"):
        S.CSR(2, 2, [0, 1, 2], [0, 5], [1.0, 1.0], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        S.CSR(2, 2, [0, 1, 2], [0, 1], [1.0, np.nan], [1, 1])
    with pytest.raises(ValueError, match="delays"):
        S.CSR(2, 2, [0, 1, 2], [0, 1], [1.0, 1.0], [1, -1])
    with pytest.raises(ValueError, match="indptr"):
        S.CSR(2, 2, [0, 2, 1], [0, 1], [1.0, 1.0], [1, 1])
    with pytest.raises(ValueError, match="probability"):
        S.bernoulli(3, 3, 1.5)
