"""``SoftResetLIF``: a custom Lava process for what Lava's built-in ``LIF`` cannot hold.

NOT a built-in Loihi neuron. It runs on Lava's CPU backend (float and
bit-accurate models); putting it on a chip would need a custom microcode neuron.
It extends the CUBA LIF with per-neuron ``du``/``dv`` (heterogeneous time
constants in one process), a second synaptic channel ``a_in_inh`` with its own
decay, a constant current into ``u`` (``bias_syn``), soft reset (``v -= vth``) or
no reset, and refractory steps (``v`` held, no spike, currents keep decaying). The bit-accurate model uses exactly the
arithmetic of Lava's ``PyLifModelBitAcc`` (see :mod:`neurons.loihi`)::

    u     = wrap24(decay(u, du + 1) + (a_in << 6) + bias_syn_mant << bias_syn_exp);  u_inh likewise with du_inh
    v     = clip(decay(v, dv) + u + u_inh + bias_mant << bias_exp, +-(2^23 - 1))       (no bias_syn)
    s     = v > vth << 6;  hard: v = 0 | soft: v -= vth << 6 | none;  refr = n_ref

The float model: ``u = u (1 - du) + a_in + bias_syn_mant``, ``v = v (1 - dv) + u + u_inh + bias_mant``,
``s = v > vth``, same resets. ``bias_syn`` (a constant current into ``u``, neuro's ``bias_syn``) is what
Lava's ``LIF`` has no parameter for: its ``bias`` goes into ``v`` (:mod:`neurons.loihi` says why no ``bias``
equals it).

Samples one after another (as Lava's ``LIFReset``, Lava counting steps from 1): when
``time_step % reset_interval == reset_offset`` the state returns to its initial values
(``v``, ``u``, ``u_inh`` as given, not refractory) before the step's input is integrated; with
``window > 0`` the neuron cannot fire from step ``window`` of each interval on, so nothing it
sends through a delayed projection reaches the next sample. ``v_out`` sends the membrane
every step (for a non-spiking readout). MPR needs nothing here: it changes only surrogate
gradients, the forward spike is ``v > vth``.
"""

from __future__ import annotations

from deployment import lava_compat

lava_compat.install()

import numpy as np  # noqa: E402
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

RESETS = ("hard", "soft", "none")
_MAX_UV = 2**23


class SoftResetLIF(AbstractProcess):
    """CUBA LIF with per-neuron decays, two channels, hard/soft/no reset and refractory steps (module docstring)."""

    def __init__(self, *, shape, du, dv, vth, bias_mant=0, bias_exp=0, u=0, v=0, du_inh=None, u_inh=0, n_ref=0,
                 reset="soft", reset_interval=0, reset_offset=0, window=0, bias_syn_mant=0, bias_syn_exp=0,
                 name=None):
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        du_inh = du if du_inh is None else du_inh
        super().__init__(shape=shape, reset=reset, reset_interval=int(reset_interval),
                         reset_offset=int(reset_offset), window=int(window), name=name)
        self.a_in = InPort(shape=shape)
        self.a_in_inh = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v_out = OutPort(shape=shape)
        for var, init in (("u", u), ("u_inh", u_inh), ("v", v), ("u0", u), ("u_inh0", u_inh), ("v0", v),
                          ("du", du), ("du_inh", du_inh), ("dv", dv), ("vth", vth), ("bias_mant", bias_mant),
                          ("bias_exp", bias_exp), ("bias_syn_mant", bias_syn_mant), ("bias_syn_exp", bias_syn_exp),
                          ("n_ref", n_ref), ("refr", 0)):
            setattr(self, var, Var(shape=shape, init=np.broadcast_to(init, shape).copy()))


class _SoftResetModel(PyLoihiProcessModel):
    """The step shared by both models; subclasses supply the current and voltage arithmetic."""

    def _reset(self, spikes):
        mode = self.proc_params["reset"]
        if mode == "hard":
            self.v[spikes] = 0
        elif mode == "soft":
            self.v[spikes] -= self._threshold()[spikes]
        self.refr[spikes] = self.n_ref[spikes]

    def _phase(self) -> int | None:
        """Steps since the last reset, or None without periodic resets."""
        interval = self.proc_params["reset_interval"]
        return (self.time_step - self.proc_params["reset_offset"]) % interval if interval else None

    def run_spk(self):
        a_exc = self.a_in.recv()
        a_inh = self.a_in_inh.recv()
        phase, window = self._phase(), self.proc_params["window"]
        if phase == 0:
            self.u[:], self.u_inh[:], self.v[:], self.refr[:] = self.u0, self.u_inh0, self.v0, 0
        self.u[:] = self._current(self.u, self.du, a_exc, self._bias_syn())
        self.u_inh[:] = self._current(self.u_inh, self.du_inh, a_inh, 0)
        active = self.refr <= 0
        self.refr[~active] -= 1
        v_new = self._voltage()
        self.v[active] = v_new[active]
        spikes = active & (self.v > self._threshold())
        if window and phase is not None and phase >= window:
            spikes[:] = False
        self._reset(spikes)
        self.s_out.send(spikes)
        self.v_out.send(self.v.copy())


@implements(proc=SoftResetLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySoftResetLIFModelFloat(_SoftResetModel):
    """Float model: ``u = u (1 - du) + a + bias_syn_mant``, ``v = v (1 - dv) + u + u_inh + bias_mant``,
    ``s = v > vth``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_in_inh: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    u_inh: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    u0: np.ndarray = LavaPyType(np.ndarray, float)
    u_inh0: np.ndarray = LavaPyType(np.ndarray, float)
    v0: np.ndarray = LavaPyType(np.ndarray, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    du_inh: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)
    bias_syn_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_syn_exp: np.ndarray = LavaPyType(np.ndarray, float)
    n_ref: np.ndarray = LavaPyType(np.ndarray, int)
    refr: np.ndarray = LavaPyType(np.ndarray, int)

    def _current(self, u, du, a, bias):
        return u * (1 - du) + a + bias

    def _bias_syn(self):
        return self.bias_syn_mant

    def _voltage(self):
        return self.v * (1 - self.dv) + self.u + self.u_inh + self.bias_mant

    def _threshold(self):
        return self.vth


@implements(proc=SoftResetLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySoftResetLIFModelBitAcc(_SoftResetModel):
    """Bit-accurate model: ``PyLifModelBitAcc``'s integer arithmetic with per-neuron decays and two channels."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int16, precision=16)
    a_in_inh: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int16, precision=16)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    v_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    u_inh: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    u0: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    u_inh0: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v0: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    du_inh: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    bias_syn_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_syn_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    n_ref: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    refr: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    @staticmethod
    def _decay(x, d):
        p = x.astype(np.int64) * (4096 - d.astype(np.int64))
        return np.int32(np.sign(p) * np.right_shift(np.abs(p), 12))

    def _current(self, u, du, a, bias):
        x = self._decay(u, du + 1) + np.left_shift(a.astype(np.int32), 6)
        x = x + np.int32(bias)
        x = np.where(x > _MAX_UV, x - 2 * _MAX_UV, x)
        return np.where(x <= -_MAX_UV, x + 2 * _MAX_UV, x)

    def _bias_syn(self):
        return np.left_shift(self.bias_syn_mant.astype(np.int32), self.bias_syn_exp)

    def _voltage(self):
        bias = np.left_shift(self.bias_mant.astype(np.int32), self.bias_exp)
        v = self._decay(self.v, self.dv).astype(np.int64) + self.u + self.u_inh + bias
        return np.clip(v, 1 - _MAX_UV, _MAX_UV - 1)

    def _threshold(self):
        return np.left_shift(self.vth.astype(np.int32), 6)
