"""HLOP for any model: a lateral circuit on the input of every ``nn.Linear`` and ``nn.Conv2d``.

:class:`HebbianProjection` attaches to a model with hooks; the model's code is unchanged
(neuro layers, snntorch modules, plain torch)::

    hlop = HebbianProjection(model, first=16, increment=8)
    for task in tasks:
        hlop.begin_task()                 # add lateral neurons; from task 1 on, project the gradients
        for x, y in task:                 # ordinary training, SGD (Adam's per-weight scaling is not a projection)
            loss(model(x), y).backward(); optimizer.step()
            hlop.after_batch()            # Hebbian (Oja subspace) update from the inputs the layers saw
        hlop.end_task()                   # freeze the learned subspace

* A forward pre-hook records each layer's input while the model trains (an ``nn.Linear``
  called once per time step contributes every step; a convolution its unfolded
  ``C_in k_h k_w`` patches, subsampled to ``max_rows`` rows per batch).
* A gradient hook on each weight applies ``G <- G (I - H_0^T H_0)`` (the weight-hook form of
  :mod:`neuro.hlop.projection`, exact for non-spiking lateral neurons) once a subspace is frozen.
* Biases and other 1-D parameters cannot be projected: train them on task 0 only
  (:func:`neuro.hlop.projection.continual_parameters`; :func:`neuro.hlop.sequence.fit_tasks` does).

``first`` / ``increment`` (lateral neurons added before task 0 / later tasks) and ``lr``
(the Hebbian rate) are one value for all layers or one per layer; a layer's count is capped
at its free input dimensions. It is an ``nn.Module``: its state (the subspaces) checkpoints
with :func:`neuro.training.api.fit_model`'s ``callbacks``.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from neuro.hlop.lateral import LateralCircuit
from neuro.hlop.projection import conv_patches, project_weight_gradient

log = logging.getLogger(__name__)
LAYER_TYPES = (nn.Linear, nn.Conv2d)


def projectable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``nn.Linear`` and ``nn.Conv2d`` in ``model``."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LAYER_TYPES)]


def _per_layer(value, n: int, what: str) -> list:
    values = list(value) if isinstance(value, list | tuple) else [value] * n
    if len(values) != n:
        raise ValueError(f"HebbianProjection: {what} needs one value or one per layer ({n}), got {value!r}")
    return values


class HebbianProjection(nn.Module):
    """HLOP on ``model``'s Linear/Conv2d layers (module docstring); ``layers`` picks some by name."""

    def __init__(self, model: nn.Module, first: int | list[int] = 16, increment: int | list[int] = 8,
                 lr: float | list[float] = 0.05, layers: list[str] | None = None, max_rows: int = 4096,
                 **lateral):
        super().__init__()
        found = dict(projectable_layers(model))
        if layers is not None:
            unknown = [name for name in layers if name not in found]
            if unknown:
                raise ValueError(f"HebbianProjection: {unknown} are not Linear/Conv2d layers of the model; "
                                 f"it has {sorted(found)}")
            found = {name: found[name] for name in layers}
        if not found:
            raise ValueError("HebbianProjection: the model has no nn.Linear or nn.Conv2d layer to project")
        self.names = list(found)
        n = len(self.names)
        self.first, self.increment = _per_layer(first, n, "first"), _per_layer(increment, n, "increment")
        rates = _per_layer(lr, n, "lr")
        self.laterals = nn.ModuleList(LateralCircuit(_fan_in(m), lr=r, **lateral)
                                      for m, r in zip(found.values(), rates))
        self.max_rows, self.task, self.projecting = int(max_rows), -1, False
        self._seen: list[list[torch.Tensor]] = [[] for _ in self.names]
        self._handles = []
        for i, module in enumerate(found.values()):
            self._handles.append(module.register_forward_pre_hook(self._recorder(i)))
            self._handles.append(module.weight.register_hook(self._projector(i)))

    def _recorder(self, i: int):
        def hook(module, args):
            if module.training and torch.is_grad_enabled() and self.task >= 0:
                x = args[0].detach()
                rows = conv_patches(module, x) if isinstance(module, nn.Conv2d) else x
                rows = rows.reshape(-1, self.laterals[i].n_in)
                if len(rows) > self.max_rows:
                    rows = rows[:: -(-len(rows) // self.max_rows)]
                self._seen[i].append(rows)
        return hook

    def _projector(self, i: int):
        def hook(grad):
            lateral = self.laterals[i]
            if not self.projecting or lateral.n_frozen == 0:
                return grad
            return project_weight_gradient(grad, lateral.basis.to(grad))
        return hook

    def begin_task(self, generator: torch.Generator | None = None) -> list[int]:
        """Add lateral neurons for the next task; project gradients from task 1 on. Returns the counts added."""
        self.task += 1
        counts = self.first if self.task == 0 else self.increment
        added = []
        for name, lateral, k in zip(self.names, self.laterals, counts):
            free = lateral.n_in - lateral.n_frozen
            if int(k) > free:
                log.warning("HLOP layer %s: %d lateral neurons asked, only %d input dimensions free", name, k, free)
            lateral.add_subspace(min(int(k), free), generator)
            added.append(min(int(k), free))
        self.projecting = self.task > 0
        return added

    def after_batch(self) -> None:
        """Hebbian update of every circuit from the inputs recorded since the last call."""
        for lateral, seen in zip(self.laterals, self._seen):
            if seen:
                lateral.hebbian_update(torch.cat(seen).to(lateral.weight.device))
            seen.clear()

    def end_task(self) -> list[float]:
        """Freeze the subspaces learned on this task; each circuit's orthonormality error before clean-up."""
        self.after_batch()
        return [lateral.merge() for lateral in self.laterals]

    def remove(self) -> None:
        """Detach the hooks: the model trains as if HLOP had never been attached."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def get_extra_state(self) -> dict:
        return {"task": self.task, "projecting": self.projecting}

    def set_extra_state(self, state: dict) -> None:
        self.task, self.projecting = int(state["task"]), bool(state["projecting"])

    def extra_repr(self) -> str:
        return f"layers={self.names}, task={self.task}"


def _fan_in(module: nn.Module) -> int:
    return module.weight[0].numel()
