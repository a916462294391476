"""``SpikeRecorder`` and ``StateRecorder``: Lava processes that write what they receive to a file on the last step.

Lava's Var readback (Monitor, sink buffers) moves data one element at a time;
this recorder keeps ``(time step, neuron)`` pairs of spikes only, inside its own
process, and saves them once when ``time_step == steps`` (Lava counts steps
from 1; the file holds 0-based steps ``t``).
"""

from __future__ import annotations

from deployment import lava_compat

lava_compat.install()

import numpy as np  # noqa: E402
from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class SpikeRecorder(AbstractProcess):
    """Receives spikes of ``shape`` neurons; writes ``t`` and ``k`` arrays to ``path`` after ``steps`` steps."""

    def __init__(self, *, shape, path: str, steps: int):
        super().__init__(shape=shape, path=str(path), steps=int(steps))
        self.s_in = InPort(shape=shape)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._t, self._k = [], []

    def run_spk(self):
        idx = np.flatnonzero(self.s_in.recv())
        self._t.append(np.full(idx.size, self.time_step - 1, np.int64))
        self._k.append(idx.astype(np.int64))
        if self.time_step == self.proc_params["steps"]:
            np.savez(self.proc_params["path"], t=np.concatenate(self._t), k=np.concatenate(self._k))


class StateRecorder(AbstractProcess):
    """Receives a state vector of ``shape`` neurons every step (a readout's ``v_out``); writes ``x[steps, n]``."""

    def __init__(self, *, shape, path: str, steps: int):
        super().__init__(shape=shape, path=str(path), steps=int(steps))
        self.x_in = InPort(shape=shape)


@implements(proc=StateRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyStateRecorderModel(PyLoihiProcessModel):
    x_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._rows = []

    def run_spk(self):
        self._rows.append(np.array(self.x_in.recv(), copy=True))
        if self.time_step == self.proc_params["steps"]:
            np.save(self.proc_params["path"], np.stack(self._rows))
