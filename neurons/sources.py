"""Input populations: neurons whose spikes are given, not computed.

* ``spike_source`` emits exactly the spikes supplied to the simulator per trial.
* ``poisson`` emits a spike at each step with probability ``rate * dt``
  (independently per neuron and step), drawn from the trial's seeded generator.
"""

from neurons.spec import NeuronModel, ParamSpec

SPIKE_SOURCE = NeuronModel(name="spike_source", params={})

POISSON = NeuronModel(
    name="poisson",
    params={"rate": ParamSpec(10.0, "firing rate (Hz)", lower=0.0, lower_inclusive=True)},
)
