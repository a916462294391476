"""HLOP: continual learning with Hebbian lateral-connection orthogonal projection (Xiao et al., ICLR 2024).

``lateral`` (the lateral circuit and its Oja subspace rule), ``projection``
(projected gradients of Linear/Conv2d layers), ``model`` (a spiking MLP with
a lateral circuit per layer), ``tasks`` (task sequences), ``metrics`` (ACC,
BWT, FWT), ``methods`` and ``harness`` (HLOP and the baselines, run the same
way). For any model and any data: ``hooks`` (:class:`HebbianProjection`, HLOP attached to
the Linear/Conv2d layers of any ``nn.Module``) and ``sequence`` (:func:`fit_tasks`, a task
sequence of DataLoaders with its accuracy matrix, ACC and BWT). See ``docs/hlop.md``.
"""

from neuro.hlop.hooks import HebbianProjection
from neuro.hlop.sequence import LoaderTask, fit_tasks

__all__ = ["HebbianProjection", "LoaderTask", "fit_tasks"]
