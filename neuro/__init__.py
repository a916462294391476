"""neuro: heterogeneous recurrent spiking networks, a Numba event simulator, training and deployment."""

from neuro.network import Network, Population, Projection
from neuro.simulator import SimulationResult, Simulator, simulate

__version__ = "0.1.0"
__all__ = ["Network", "Population", "Projection", "SimulationResult", "Simulator", "simulate"]
