"""HLOP: continual learning with Hebbian lateral-connection orthogonal projection (Xiao et al., ICLR 2024).

``lateral`` (the lateral circuit and its Oja subspace rule), ``projection``
(projected gradients of Linear/Conv2d layers), ``model`` (a spiking MLP with
a lateral circuit per layer), ``tasks`` (task sequences), ``metrics`` (ACC,
BWT, FWT), ``methods`` and ``harness`` (HLOP and the baselines, run the same
way). See ``docs/hlop.md``.
"""
