"""Neuron dynamics (leaf package: imports only numpy, numba, scipy and torch)."""

from neurons import kernel_cache

kernel_cache.configure()  # before any kernel is compiled: a cache keyed by every kernel file's source

from neurons.heterogeneity import sample_timescales  # noqa: E402
from neurons.lif import LIF, RESET_MODES  # noqa: E402
from neurons.sources import POISSON, SPIKE_SOURCE  # noqa: E402
from neurons.spec import NeuronModel, ParamSpec  # noqa: E402

#: Every neuron model a ``Population`` may name.
MODELS: dict[str, NeuronModel] = {m.name: m for m in (LIF, SPIKE_SOURCE, POISSON)}


def get_model(name: str) -> NeuronModel:
    """The model called ``name``; a clear error listing the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown neuron model {name!r}; known models: {sorted(MODELS)}") from None


__all__ = ["LIF", "MODELS", "POISSON", "RESET_MODES", "SPIKE_SOURCE", "NeuronModel", "ParamSpec",
           "get_model", "sample_timescales"]
