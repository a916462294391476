"""NIR import parts: graph walking (:mod:`.graph`), neuron nodes and reset conventions
(:mod:`.neurons`), weight nodes as sparse maps (:mod:`.maps`), and the graph as torch layers
(:mod:`.torch_graph`). The public entry points are in :mod:`deployment.nir_io`."""
