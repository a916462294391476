"""``SpikeRecorder``: a Lava process that writes what it receives to a file on the last step.

Lava's Var readback (Monitor, sink buffers) moves data one element at a time;
this recorder keeps ``(time step, neuron)`` pairs of spikes only (or, dense, a
readout's membrane vector per step), inside its own process, and saves them once
when ``time_step == steps`` (Lava counts steps from 1; the file holds 0-based steps ``t``).
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
    """Receives ``shape`` values per step on ``s_in``; after ``steps`` steps writes to ``path``.

    ``dense=False`` (spikes): the ``t`` and ``k`` arrays of the nonzero entries (``.npz``);
    ``dense=True`` (a state such as a readout's ``v_out``): every step's vector, ``x[steps, n]`` (``.npy``).
    """

    def __init__(self, *, shape, path: str, steps: int, dense: bool = False):
        super().__init__(shape=shape, path=str(path), steps=int(steps), dense=bool(dense))
        self.s_in = InPort(shape=shape)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._rows = []

    def run_spk(self):
        x = np.array(self.s_in.recv(), copy=True)
        if self.proc_params["dense"]:
            self._rows.append(x)
        else:
            idx = np.flatnonzero(x)
            self._rows.append((np.full(idx.size, self.time_step - 1, np.int64), idx.astype(np.int64)))
        if self.time_step == self.proc_params["steps"]:
            if self.proc_params["dense"]:
                np.save(self.proc_params["path"], np.stack(self._rows))
            else:
                np.savez(self.proc_params["path"], t=np.concatenate([r[0] for r in self._rows]),
                         k=np.concatenate([r[1] for r in self._rows]))
