"""Surrogate-gradient training of spiking networks built on the one LIF definition (:mod:`neurons.lif_torch`).

* :mod:`neuro.training.layers`: ``Dense``, ``Conv``, ``Recurrent`` (LIF) and the non-spiking ``Readout``.
* :mod:`neuro.training.pooling`: ``Pool``, sum or average pooling of spike maps (no neurons).
* :mod:`neuro.training.model`: ``SpikingNet``, layers over time ``[T, B, ...]``, membrane or count readout.
* :mod:`neuro.training.convert`: ``to_network`` (a trained model as a :class:`neuro.Network`), ``compare``.
* :mod:`neuro.training.config`: the ``neuro train`` schema, defaults and ``build_model``.
* :mod:`neuro.training.data`: event datasets as binary spike tensors, seeded shardable batches.
* :mod:`neuro.training.api`: ``fit_model(model, train_loader, val_loader, ...)`` for any model and data
  (checkpoints, exact resume, DDP, metrics, learning curve).
* :mod:`neuro.training.trainer`: ``fit`` (the config's model on ``FrameData``, via ``fit_model``), ``load_model``.
* :mod:`neuro.training.distributed`: DistributedDataParallel via torchrun or ``spawn``.
* :mod:`neuro.training.ablation`: hard vs soft reset vs soft reset + MPR (Guo et al. 2022).
"""

from neuro.training.api import fit_model, load_weights
from neuro.training.layers import Conv, Dense, LIFLayer, Readout, Recurrent
from neuro.training.model import SpikingNet
from neuro.training.pooling import Pool

__all__ = ["Conv", "Dense", "LIFLayer", "Pool", "Readout", "Recurrent", "SpikingNet", "fit_model", "load_weights"]
