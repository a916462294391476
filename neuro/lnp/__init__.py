"""Lyapunov noise pruning (LNP) of heterogeneous recurrent SNNs, its analyses and tasks.

Chakraborty, Kang, Kumar & Mukhopadhyay, "Sparse Spiking Neural Network: Exploiting
Heterogeneity in Timescales for Pruning Recurrent SNN" (ICLR 2024). See ``docs/lnp.md`` for
the algorithm as implemented here and which parts are our reconstruction.
"""

from neuro.lnp.lyapunov import largest_lyapunov, linear_exponents, lyapunov_spectrum, perturbation_exponent
from neuro.lnp.pipeline import LNP_DEFAULTS, baseline_prune, lnp_prune, prune_network
from neuro.lnp.stats import firing_stats, sops
from neuro.lnp.tasks import evaluate

__all__ = ["LNP_DEFAULTS", "baseline_prune", "evaluate", "firing_stats", "largest_lyapunov", "linear_exponents",
           "lnp_prune", "lyapunov_spectrum", "perturbation_exponent", "prune_network", "sops"]
