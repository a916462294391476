"""The one network description: populations and projections as validated plain data.

A :class:`Network` is read by every engine and exporter and mutated by none;
builders return new networks. It validates itself on construction and
round-trips losslessly through ``.npz`` (:meth:`Network.save` / :meth:`Network.load`).

Times are in seconds. A value far outside the plausible range of its unit
(:data:`PLAUSIBLE`: ``tau_mem=20`` is 20 s, surely meant as 20 ms) is accepted with a
:class:`UnitWarning`; so is a projection of positive weights on the inhibitory receptor
(they stay excitatory: the receptor picks the synaptic time constant, the sign is the weight's).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neuro.io import atomic_path
from neurons import get_model
from neurons.spec import ParamSpec, check_values
from synapses.csr import CSR

RECEPTORS = ("exc", "inh")
FORMAT_VERSION = 1
#: Largest plausible value (seconds) of each time parameter; ``inf`` is allowed where the model allows it.
PLAUSIBLE = {"tau_mem": 1.0, "tau_syn": 1.0, "tau_syn_inh": 1.0, "t_ref": 0.1, "dt": 0.1}


class UnitWarning(UserWarning):
    """A number that is valid but implausible in its unit (seconds), or a sign that does not do what it seems."""


def check_units(values: dict, where: str) -> None:
    """Warn (:class:`UnitWarning`) for each finite time value of ``values`` above :data:`PLAUSIBLE`."""
    for name, limit in PLAUSIBLE.items():
        if name not in values:
            continue
        v = np.asarray(values[name], dtype=np.float64)
        big = v[np.isfinite(v) & (v > limit)]
        if big.size:
            v = float(big.max())
            hint = f"; did you mean {v:g}e-3 s?" if v * 1e-3 <= limit else ""
            warnings.warn(f"{where}{name} = {v:g} s is implausibly long (limit {limit:g} s): times are in "
                          f"seconds{hint}", UnitWarning, stacklevel=4)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Population:
    """``size`` neurons of one model with per-neuron parameter arrays.

    ``params`` may give scalars (broadcast) or arrays of length ``size``;
    missing parameters take the model's defaults. ``reset`` is ``hard``,
    ``soft`` or ``none`` (LIF only); the default ``hard`` is the classic LIF, while the
    training layers (:mod:`neuro.training.layers`) default to ``soft``, which a converted
    model keeps: pass ``reset="soft"`` to match them. ``initial`` holds initial state per neuron
    (e.g. ``{"v": array}``; default: ``v = v_rest``, no current).
    """

    name: str
    size: int
    model: str = "lif"
    params: dict = field(default_factory=dict)
    reset: str = "hard"
    initial: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        where = f"population {self.name!r}: "
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"population name must be a non-empty string without '/', got {self.name!r}")
        if int(self.size) != self.size or self.size < 1:
            raise ValueError(f"{where}size must be a positive integer, got {self.size!r}")
        model = get_model(self.model)
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "params", model.fill(self.size, self.params, where))
        check_units(self.params, where)
        allowed_resets = model.options.get("reset", ("hard",))
        if self.reset not in allowed_resets:
            raise ValueError(f"{where}unknown reset mode {self.reset!r}; expected one of {allowed_resets}")
        initial = {}
        for var, value in dict(self.initial).items():
            if var not in model.state:
                raise ValueError(f"{where}unknown state variable {var!r} in initial; known: {model.state}")
            value = np.broadcast_to(np.asarray(value, dtype=np.float64), (self.size,))
            check_values(value, f"initial {var}", ParamSpec(0.0, ""), where)
            initial[var] = _frozen(value)
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __repr__(self) -> str:
        return f"Population({self.name!r}, {self.size}, {self.model!r}, reset={self.reset!r})"


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from population ``pre`` to ``post`` (CSR rows = presynaptic neurons).

    ``delays`` are whole time steps (``>= 0``; a delay of 0 delivers within the
    step and is allowed only on acyclic paths). ``receptor`` selects the
    postsynaptic current the synapses feed (``exc`` uses ``tau_syn``, ``inh``
    uses ``tau_syn_inh``). ``mask`` marks synapses that exist (pruning);
    masked-out synapses are kept in the data but never transmit.
    """

    name: str
    pre: str
    post: str
    synapses: CSR
    receptor: str = "exc"
    mask: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        where = f"projection {self.name!r}: "
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"projection name must be a non-empty string without '/', got {self.name!r}")
        if not isinstance(self.synapses, CSR):
            raise TypeError(f"{where}synapses must be a synapses.CSR, got {type(self.synapses).__name__}")
        if self.receptor not in RECEPTORS:
            raise ValueError(f"{where}unknown receptor {self.receptor!r}; expected one of {RECEPTORS}")
        mask = np.ones(self.synapses.nnz, bool) if self.mask is None else np.asarray(self.mask)
        if mask.dtype != bool or mask.shape != (self.synapses.nnz,):
            raise ValueError(f"{where}mask must be boolean with one entry per synapse "
                             f"({self.synapses.nnz}), got {mask.dtype} {mask.shape}")
        object.__setattr__(self, "mask", _frozen(mask))
        object.__setattr__(self, "metadata", dict(self.metadata))
        if self.receptor == "inh" and self.synapses.nnz and (self.synapses.weights[mask] > 0).any():
            warnings.warn(f"{where}positive weights on the inhibitory receptor stay excitatory (the receptor "
                          "only selects tau_syn_inh); make inhibitory weights negative", UnitWarning, stacklevel=3)

    def __repr__(self) -> str:
        return (f"Projection({self.name!r}, {self.pre!r} -> {self.post!r}, {int(self.mask.sum())} synapses, "
                f"receptor={self.receptor!r})")

    def active(self) -> CSR:
        """The synapses that transmit (mask applied)."""
        return self.synapses if self.mask.all() else self.synapses.select(self.mask)


@dataclass(frozen=True, eq=False)
class Network:
    """Populations, projections and the time step ``dt`` (seconds)."""

    populations: tuple
    projections: tuple = ()
    dt: float = 1e-3
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        pops = tuple(self.populations)
        projs = tuple(self.projections)
        if not (isinstance(self.dt, (int, float)) and np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be a positive finite number of seconds, got {self.dt!r}")
        if not pops:
            raise ValueError("a network needs at least one population")
        check_units({"dt": self.dt}, "network: ")
        for p in pops:
            if p.model == "poisson" and np.any(p.params["rate"] * self.dt > 1):
                raise ValueError(f"population {p.name!r}: a Poisson rate of {p.params['rate'].max():g} Hz exceeds "
                                 f"1/dt = {1 / self.dt:g} Hz (at most one spike per step); lower the rate or dt")
        _unique([p.name for p in pops], "population")
        _unique([p.name for p in projs], "projection")
        sizes = {p.name: p.size for p in pops}
        for proj in projs:
            for end in ("pre", "post"):
                if getattr(proj, end) not in sizes:
                    raise ValueError(f"projection {proj.name!r}: unknown {end} population "
                                     f"{getattr(proj, end)!r}; known: {sorted(sizes)}")
            n_pre, n_post = sizes[proj.pre], sizes[proj.post]
            if (proj.synapses.n_pre, proj.synapses.n_post) != (n_pre, n_post):
                raise ValueError(f"projection {proj.name!r}: synapses are {proj.synapses.n_pre}x"
                                 f"{proj.synapses.n_post} (pre x post) but populations {proj.pre!r} and "
                                 f"{proj.post!r} have {n_pre} and {n_post} neurons")
            if self.population(proj.post, pops).model != "lif":
                raise ValueError(f"projection {proj.name!r}: target {proj.post!r} is an input population "
                                 "and cannot receive synapses")
        object.__setattr__(self, "populations", pops)
        object.__setattr__(self, "projections", projs)
        object.__setattr__(self, "dt", float(self.dt))
        object.__setattr__(self, "metadata", dict(self.metadata))
        self.stages()  # rejects zero-delay cycles

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}[{p.size}]" for p in self.populations)
        return (f"Network({len(self.populations)} populations ({pops}), {len(self.projections)} projections, "
                f"{self.n_synapses} synapses, dt={self.dt:g} s)")

    # --- queries -------------------------------------------------------------------------------
    def population(self, name: str, pops=None) -> Population:
        for p in pops or self.populations:
            if p.name == name:
                return p
        raise KeyError(f"no population named {name!r}")

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(f"no projection named {name!r}")

    @property
    def size(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def n_synapses(self) -> int:
        return int(sum(p.mask.sum() for p in self.projections))

    def stages(self) -> list[list[str]]:
        """Populations grouped into update stages: a zero-delay projection always goes to a later stage.

        Raises ``ValueError`` if zero-delay projections form a cycle.
        """
        level = {p.name: 0 for p in self.populations}
        zero = [(p.pre, p.post, p.name) for p in self.projections if (p.synapses.delays[p.mask] == 0).any()]
        for _ in range(len(level) + 1):
            changed = False
            for pre, post, _name in zero:
                if level[post] <= level[pre]:
                    level[post] = level[pre] + 1
                    changed = True
            if not changed:
                break
        else:
            names = sorted({n for _, _, n in zero})
            raise ValueError(f"zero-delay projections form a cycle (among {names}); "
                             "recurrent paths need a delay of at least 1 step")
        return [[n for n in level if level[n] == s] for s in range(max(level.values()) + 1)]

    def with_projections(self, projections) -> Network:
        return replace(self, projections=tuple(projections))

    # --- persistence ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write losslessly to ``.npz`` (plain arrays and a JSON header; no pickles), atomically."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        header: dict[str, Any] = {"format": "neuro.Network", "version": FORMAT_VERSION, "dt": self.dt,
                                  "metadata": self.metadata, "populations": [], "projections": []}
        for i, p in enumerate(self.populations):
            header["populations"].append({"name": p.name, "size": p.size, "model": p.model, "reset": p.reset,
                                          "params": list(p.params), "initial": list(p.initial),
                                          "metadata": p.metadata})
            for k, v in p.params.items():
                arrays[f"pop{i}/param/{k}"] = v
            for k, v in p.initial.items():
                arrays[f"pop{i}/initial/{k}"] = v
        for j, p in enumerate(self.projections):
            s = p.synapses
            header["projections"].append({"name": p.name, "pre": p.pre, "post": p.post, "receptor": p.receptor,
                                          "n_pre": s.n_pre, "n_post": s.n_post, "metadata": p.metadata})
            for k in ("indptr", "indices", "weights", "delays"):
                arrays[f"proj{j}/{k}"] = getattr(s, k)
            arrays[f"proj{j}/mask"] = p.mask
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path) -> Network:
        """Read a file written by :meth:`save`; a clear error for anything else."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            header = json.loads(arrays.pop("header").tobytes().decode())
        except FileNotFoundError:
            raise
        except Exception as exc:  # zipfile/json/numpy all raise their own types on corrupt files
            raise ValueError(f"{path}: not a readable neuro network file ({type(exc).__name__}: {exc})") from None
        if header.get("format") != "neuro.Network":
            raise ValueError(f"{path}: not a neuro network file")
        if header.get("version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: written by a newer neuro (format {header['version']})")
        try:
            pops = [Population(h["name"], h["size"], h["model"],
                               {k: arrays[f"pop{i}/param/{k}"] for k in h["params"]}, h["reset"],
                               {k: arrays[f"pop{i}/initial/{k}"] for k in h["initial"]}, h["metadata"])
                    for i, h in enumerate(header["populations"])]
            projs = [Projection(h["name"], h["pre"], h["post"],
                                CSR(h["n_pre"], h["n_post"], *(arrays[f"proj{j}/{k}"]
                                    for k in ("indptr", "indices", "weights", "delays"))),
                                h["receptor"], arrays[f"proj{j}/mask"], h["metadata"])
                     for j, h in enumerate(header["projections"])]
        except KeyError as exc:
            raise ValueError(f"{path}: incomplete network file (missing {exc})") from None
        return cls(tuple(pops), tuple(projs), header["dt"], header["metadata"])


def _unique(names, kind):
    seen = set()
    for n in names:
        if n in seen:
            raise ValueError(f"duplicate {kind} name {n!r}")
        seen.add(n)
