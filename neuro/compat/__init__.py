"""ANN-era methods of the research line, on PyTorch modules and on our spiking layers.

One module per method: :mod:`neuro.compat.granet` (GraNet), :mod:`neuro.compat.clnp`
(CLNP), :mod:`neuro.compat.rnp` (RNP), :mod:`neuro.compat.drm` (DrM dormant ratio)
and :mod:`neuro.compat.quine` (neural-network quine). Shared helpers:
:mod:`neuro.compat.common` (digits data, a small MLP, a training loop, config
merging) and :mod:`neuro.compat.spiking` (a rate-coded spiking MLP whose synapses
are ``nn.Linear`` layers, and its synaptic-operation count).

Contract of a method module ``neuro.compat.<method>`` (``neuro compat <method>``
in :mod:`neuro.commands.compat` relies on it):

- ``DEFAULTS: dict`` -- the complete default configuration (used when no CONFIG
  is given); every key a config may set appears here.
- ``run_from_config(config: dict, out_dir: pathlib.Path) -> dict`` -- merges
  ``config`` over ``DEFAULTS`` rejecting unknown keys
  (:func:`neuro.compat.common.check_config`, i.e. :func:`neuro.io.check_keys`),
  runs the method and its same-run baseline, writes its PNG plots into
  ``out_dir`` (atomically, :func:`neuro.io.save_figure`) and returns a
  JSON-able report (plain dicts/lists/numbers; numpy arrays allowed). Bad
  values raise ``ValueError`` (or :class:`neuro.io.ConfigError`) naming the key.
  Every random choice derives from the config's seeds.

The command validates the method name, reads CONFIG with
:func:`neuro.io.load_config`, passes its ``<method>`` section (a CONFIG file
holds one top-level section per method, e.g. ``granet: {...}``), writes
``report.json`` atomically into ``--out`` (default ``runs/compat-<method>``)
and prints a short summary. Method modules are imported lazily.
"""

METHODS = ("granet", "clnp", "rnp", "drm", "quine")
