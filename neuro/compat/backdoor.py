"""BadNets-style patch-trigger backdoor on scikit-learn digits: an offline testbed for backdoor defenses.

Poisoning (Gu et al. 2017, all-to-one): a fraction ``rate`` of the training set,
drawn from non-target images, gets the trigger stamped into its bottom-right
corner and its label set to ``target``. Metrics on the held-out test set:

- clean accuracy ``CA = P(f(x) = y)`` over clean test images;
- attack success rate ``ASR = P(f(T(x)) = target | y != target)``, the fraction of
  triggered non-target test images classified as the target.

The trigger is stamped on whatever resolution it is given: the RNP experiment
upsamples the images first (:func:`upsample_images`), so a ``k x k`` trigger
covers ``k^2 / (8u)^2`` of a ``8u x 8u`` image (CIFAR's 3x3 on 32x32 is 0.9%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuro.compat.common import load_digits_split, train_classifier

TRIGGER_PATTERNS = ("solid", "grid")


@dataclass(frozen=True)
class Trigger:
    """A ``size x size`` patch in the bottom-right corner: ``solid`` (all max) or ``grid`` (checkerboard, RNP)."""

    size: int = 3
    pattern: str = "solid"

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"trigger size must be >= 1, got {self.size}")
        if self.pattern not in TRIGGER_PATTERNS:
            raise ValueError(f"unknown trigger pattern {self.pattern!r}; expected one of {TRIGGER_PATTERNS}")

    def patch(self) -> np.ndarray:
        """The patch values in [0, 1]; the grid's bottom-right pixel is on."""
        if self.pattern == "solid":
            return np.ones((self.size, self.size))
        i, j = np.indices((self.size, self.size))
        return ((i + j) % 2 == 0).astype(float)[::-1, ::-1].copy()

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Return a copy of ``images[..., H, W]`` (values in [0, 1]) with the patch stamped bottom-right."""
        out = np.array(images, dtype=np.float32, copy=True)
        if out.shape[-1] < self.size or out.shape[-2] < self.size:
            raise ValueError(f"trigger of size {self.size} does not fit images of shape {out.shape[-2:]}")
        out[..., -self.size:, -self.size:] = self.patch()
        return out


def load_digits_images(test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split of sklearn digits: ``(x_train, y_train, x_test, y_test)``, images ``[N, 8, 8]`` in [0, 1]."""
    split = load_digits_split(seed, test_fraction)
    return (split.x_train.numpy().reshape(-1, 8, 8), split.y_train.numpy(),
            split.x_test.numpy().reshape(-1, 8, 8), split.y_test.numpy())


def poison(x: np.ndarray, y: np.ndarray, trigger: Trigger, rate: float, target: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-to-one poisoning of ``round(rate * N)`` non-target samples; returns ``(x, y, poisoned_indices)``."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"poison rate must be in [0, 1], got {rate}")
    candidates = np.flatnonzero(y != target)
    n_poison = int(round(rate * len(y)))
    if n_poison > len(candidates):
        raise ValueError(f"poison rate {rate} needs {n_poison} non-target samples, only {len(candidates)} exist")
    idx = np.sort(rng.choice(candidates, size=n_poison, replace=False))
    x_out, y_out = np.array(x, copy=True), np.array(y, copy=True)
    x_out[idx] = trigger.apply(x[idx])
    y_out[idx] = target
    return x_out, y_out, idx


def upsample_images(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of ``[..., H, W]`` images: every pixel becomes a ``factor x factor`` block."""
    if factor < 1:
        raise ValueError(f"upsample factor must be >= 1, got {factor}")
    return np.asarray(images, dtype=np.float32).repeat(factor, axis=-2).repeat(factor, axis=-1)


def to_tensor(images: np.ndarray, upsample: int = 1) -> torch.Tensor:
    """``[N, H, W]`` numpy -> ``[N, 1, H*u, W*u]`` float tensor (nearest-neighbour upsampling by ``u``)."""
    return torch.as_tensor(upsample_images(images, upsample)).unsqueeze(1)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Class predictions in eval mode (the mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    preds = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return preds


def clean_accuracy(preds: torch.Tensor, labels) -> float:
    """``CA = mean(pred == label)`` over clean images."""
    labels = torch.as_tensor(labels)
    return int((preds == labels).sum()) / len(labels)


def attack_success_rate(preds_triggered: torch.Tensor, labels, target: int) -> float:
    """``ASR = mean(pred == target)`` over triggered images whose true label is not ``target``."""
    labels = torch.as_tensor(labels)
    keep = labels != target
    if not bool(keep.any()):
        raise ValueError("attack success rate needs at least one non-target image")
    return int((preds_triggered[keep] == target).sum()) / int(keep.sum())


def backdoor_metrics(model: nn.Module, x_test: np.ndarray, y_test: np.ndarray, trigger: Trigger, target: int,
                     upsample: int = 1) -> dict:
    """``{"clean_acc", "asr"}`` of ``model`` on the clean and triggered test images."""
    ca = clean_accuracy(predict(model, to_tensor(x_test, upsample)), y_test)
    asr = attack_success_rate(predict(model, to_tensor(trigger.apply(x_test), upsample)), y_test, target)
    return {"clean_acc": ca, "asr": asr}


class BasicBlock(nn.Module):
    """Pre-2016 ResNet basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResidualCNN(nn.Module):
    """Small CIFAR-style ResNet: BN stem, then stages of ``blocks`` basic blocks (width doubles, stride 2)."""

    def __init__(self, width: int = 32, stages: int = 2, blocks: int = 1, n_classes: int = 10):
        super().__init__()
        if width < 1 or stages < 1 or blocks < 1:
            raise ValueError(f"width, stages and blocks must be >= 1, got {width}, {stages}, {blocks}")
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, c = [], width
        for s in range(stages):
            c_out = width * 2 ** s
            for b in range(blocks):
                layers.append(BasicBlock(c, c_out, 2 if (s > 0 and b == 0) else 1))
                c = c_out
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x):
        h = self.layers(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))


def train_backdoored(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
                     batch_size: int, seed: int, weight_decay: float = 5e-4) -> list[float]:
    """Minibatch SGD (momentum 0.9, cosine lr) on cross-entropy; returns the per-epoch mean loss."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    return train_classifier(model, x, torch.as_tensor(y), opt, epochs=epochs, batch_size=batch_size, seed=seed,
                            scheduler=sched, desc="train backdoored model")
