"""The ``neuro train`` configuration: defaults, validation, and the model it describes.

Schema (every key optional; the defaults are the built-in digits-as-N-MNIST run)::

    seed: 0                       # model init, heterogeneity, shuffling
    epochs: 8
    data:
      dataset: digits_nmnist      # digits_nmnist (generated offline) | nmnist (real files under root)
      root: ~/.cache/neuro/digits-nmnist  # dataset folder (digits_nmnist writes it once, then reuses it)
      n_train: 2700               # digits_nmnist only: samples per split written by the generator
      n_test: 900
      generator_seed: 0
      overwrite: false            # generated datasets: replace a cached copy written with other settings
      time_bins: 10               # tonic ToFrame n_time_bins over the whole recording
      downsample: 0.5             # tonic Downsample spatial_factor (34x34 -> 17x17)
      batch_size: 64
    model:
      layers:                     # hidden layers in order; the readout is appended
        - {type: dense, size: 256}            # dense | recurrent: size
                                              # conv: channels, kernel, stride (1), padding (0)
                                              # pool: kernel, kind (sum | avg), stride (kernel), padding (0);
                                              #   no neurons, over a conv layer's (or the input's) [C, H, W]
      readout: membrane           # membrane (non-spiking Readout, logits = mean v) | count (spike counts)
      reset: soft                 # hard | soft | none
      use_mpr: false              # MPR gradient (Guo et al. 2022)
      surrogate: fast_sigmoid     # ours, or any snntorch.surrogate function name (atan, sigmoid, ...)
      surrogate_slope: 25.0       # fast_sigmoid only
      dt: 1.0e-3
      tau_mem: 20.0e-3            # seconds (mean when heterogeneous)
      tau_mem_cv: 0.0             # > 0: per-neuron tau_mem ~ gamma(mean tau_mem, cv) (heterogeneity)
      tau_syn: 0.0                # 0: no synaptic current memory (the synapse bias maps onto the neuron bias)
      v_th: 1.0
      learn_tau: false
      qat: false                  # quantization-aware training: forward in Loihi fixed point (neuro.training.qat)
    optim:
      lr: 2.0e-3                  # Adam
      weight_decay: 0.0
      schedule: cosine            # cosine (to 0 over the epochs) | constant
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neuro.checks import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    boolean,
    check_memory,
    check_table,
    number,
    one_of,
    text,
)
from neuro.io import ConfigError, check_keys, merge_config
from neuro.network import check_units
from neuro.training.data import FILES, GENERATED
from neuro.training.layers import Conv, Dense, Readout, Recurrent, conv_output_shape
from neuro.training.model import READOUTS, SpikingNet
from neuro.training.pooling import POOL_KINDS, Pool, pool_output_shape
from neurons import RESET_MODES, sample_timescales
from neurons.surrogate import fast_sigmoid

DEFAULTS = {
    "seed": 0,
    "epochs": 8,
    "data": {"dataset": "digits_nmnist", "root": "~/.cache/neuro/digits-nmnist", "n_train": 2700, "n_test": 900,
             "generator_seed": 0, "overwrite": False, "time_bins": 10, "downsample": 0.5, "batch_size": 64},
    "model": {"layers": [{"type": "dense", "size": 256}], "readout": "membrane", "reset": "soft",
              "use_mpr": False, "surrogate": "fast_sigmoid", "surrogate_slope": 25.0, "dt": 1e-3,
              "tau_mem": 20e-3, "tau_mem_cv": 0.0, "tau_syn": 0.0, "v_th": 1.0, "learn_tau": False,
              "qat": False},
    "optim": {"lr": 2e-3, "weight_decay": 0.0, "schedule": "cosine"},
}
LAYER_KEYS = {"dense": ("size",), "recurrent": ("size",), "conv": ("channels", "kernel", "stride", "padding"),
              "pool": ("kernel", "kind", "stride", "padding")}
REQUIRED = {"dense": ("size",), "recurrent": ("size",), "conv": ("channels", "kernel"), "pool": ("kernel",)}
SCHEDULES = ("cosine", "constant")
DATASETS = tuple(GENERATED) + tuple(FILES)


def resolve(config: dict | None) -> dict:
    """Defaults merged with ``config`` (one level of sections), unknown keys and bad values rejected."""
    out = merge_config(config, DEFAULTS, "train config")
    _validate(out)
    check_units({k: out["model"][k] for k in ("tau_mem", "tau_syn", "dt")}, "train config: model.")
    return out


#: Every scalar key and the rule it must pass (:mod:`neuro.checks`); a new key adds one line here.
RULES = {
    "seed": NON_NEGATIVE_INT, "epochs": POSITIVE_INT,
    "data.dataset": one_of(DATASETS), "data.root": text,
    "data.n_train": POSITIVE_INT, "data.n_test": POSITIVE_INT, "data.generator_seed": NON_NEGATIVE_INT,
    "data.overwrite": boolean,
    "data.time_bins": POSITIVE_INT, "data.downsample": number(0, 1, low_open=True), "data.batch_size": POSITIVE_INT,
    "model.readout": one_of(READOUTS), "model.reset": one_of(RESET_MODES), "model.use_mpr": boolean,
    "model.surrogate": text, "model.surrogate_slope": POSITIVE, "model.dt": POSITIVE, "model.tau_mem": POSITIVE,
    "model.tau_mem_cv": NON_NEGATIVE, "model.tau_syn": NON_NEGATIVE, "model.v_th": POSITIVE,
    "model.learn_tau": boolean, "model.qat": boolean,
    "optim.lr": POSITIVE, "optim.weight_decay": NON_NEGATIVE, "optim.schedule": one_of(SCHEDULES),
}
LAYER_RULES = {"size": POSITIVE_INT, "channels": POSITIVE_INT, "kernel": POSITIVE_INT, "stride": POSITIVE_INT,
               "padding": NON_NEGATIVE_INT, "kind": one_of(POOL_KINDS)}


def _validate(cfg: dict) -> None:
    check_table(cfg, RULES, "train config")
    layers = cfg["model"]["layers"]
    if not isinstance(layers, list) or not layers:
        raise ConfigError("train config: model.layers must be a non-empty list of layer mappings")
    for i, spec in enumerate(layers):
        where = f"train config: model.layers[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) or spec["type"] not in LAYER_KEYS:
            raise ConfigError(f"{where}: needs 'type' in {sorted(LAYER_KEYS)}, got {spec!r}")
        check_keys(spec, ("type",) + LAYER_KEYS[spec["type"]], where)
        for key in REQUIRED[spec["type"]]:
            if key not in spec:
                raise ConfigError(f"{where}: missing {key!r}")
        check_table(spec, LAYER_RULES, where)
        if spec["type"] == "pool" and spec.get("kind") == "avg" and cfg["model"]["qat"]:
            raise ConfigError(f"{where}: an avg pool cannot be trained with qat (the fixed-point forward would "
                              "quantize W, the folded network W/k^2); use kind: sum")


def _check_memory(layers, shape) -> None:
    """Refuse layers that do not fit their input, or whose weights (with gradients and Adam's two
    moments: 16 bytes each) need more memory than is available, naming the layer."""
    total = 0
    for i, spec in enumerate(layers):
        where = f"train config: model.layers[{i}]"
        if spec["type"] in ("conv", "pool"):
            if len(shape) != 3:
                raise ConfigError(f"{where}: a {spec['type']} layer needs [C, H, W] inputs, got shape {shape}")
            try:
                out = conv_output_shape(shape, spec["channels"], spec["kernel"], spec.get("stride", 1),
                                        spec.get("padding", 0)) if spec["type"] == "conv" else \
                    pool_output_shape(shape, spec["kernel"], spec.get("stride"), spec.get("padding", 0))
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            n = spec["channels"] * shape[0] * spec["kernel"] ** 2 if spec["type"] == "conv" else 0
        else:
            out = (spec["size"],)
            n = math.prod(shape) * spec["size"] + (spec["size"] ** 2 if spec["type"] == "recurrent" else 0)
        total += 16 * n
        check_memory(total, f"{where} ({', '.join(LAYER_KEYS[spec['type']])}; with the layers before it)")
        shape = out


def spike_function(name: str, slope: float = 25.0):
    """Our ``fast_sigmoid`` or ``snntorch.surrogate.<name>()`` (same signature: spikes of ``v - v_th``)."""
    if name == "fast_sigmoid":
        return fast_sigmoid(slope)
    import snntorch.surrogate as surrogate

    factory = getattr(surrogate, name, None)
    if not callable(factory) or name.startswith("_"):
        raise ConfigError(f"train config: unknown surrogate {name!r}; use fast_sigmoid or a function of "
                          "snntorch.surrogate (atan, sigmoid, fast_sigmoid, triangular, ...)")
    return factory()


def build_model(model_cfg: dict, input_shape, n_classes: int, seed: int = 0) -> SpikingNet:
    """The :class:`SpikingNet` of ``model_cfg`` (resolved) for inputs ``input_shape`` (one step of one sample).

    Initial weights come from ``torch.manual_seed(seed)``; heterogeneous ``tau_mem``
    from ``numpy.random.default_rng(seed)``.
    """
    m = model_cfg
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    spike_fn = spike_function(m["surrogate"], m["surrogate_slope"])
    shape = tuple(int(d) for d in input_shape)
    layers = []

    def neurons(size):
        tau = m["tau_mem"] if m["tau_mem_cv"] == 0 else sample_timescales(
            size, m["tau_mem"], "gamma", cv=m["tau_mem_cv"], minimum=m["dt"], seed=rng)
        return {"dt": m["dt"], "reset": m["reset"], "use_mpr": m["use_mpr"], "spike_fn": spike_fn,
                "learn_tau": m["learn_tau"], "tau_mem": tau, "tau_syn": m["tau_syn"], "v_th": m["v_th"],
                "bias": m["tau_syn"] == 0, "qat": m["qat"]}

    _check_memory(m["layers"], shape)
    for spec in m["layers"]:
        if spec["type"] == "pool":
            layer = Pool(shape, spec["kernel"], spec.get("kind", "sum"), spec.get("stride"), spec.get("padding", 0))
        elif spec["type"] == "conv":
            stride, padding = spec.get("stride", 1), spec.get("padding", 0)
            out = conv_output_shape(shape, spec["channels"], spec["kernel"], stride, padding)
            layer = Conv(shape[0], spec["channels"], spec["kernel"], shape[1:], stride, padding,
                         **neurons(math.prod(out)))
        else:
            cls = Dense if spec["type"] == "dense" else Recurrent
            layer = cls(math.prod(shape), spec["size"], **neurons(spec["size"]))
        layers.append(layer)
        shape = layer.out_shape
    last = Readout if m["readout"] == "membrane" else Dense
    layers.append(last(math.prod(shape), n_classes, **neurons(n_classes)))
    return SpikingNet(layers, m["readout"])
