"""Connectivity (leaf package: imports only numpy, numba and scipy)."""

from synapses.connectivity import all_to_all, apply_dale, bernoulli, fixed_indegree, obeys_dale, small_world
from synapses.csr import CSR, from_coo, from_dense, from_scipy

__all__ = ["CSR", "all_to_all", "apply_dale", "bernoulli", "fixed_indegree", "from_coo", "from_dense",
           "from_scipy", "obeys_dale", "small_world"]
