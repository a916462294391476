"""The ``neuro`` command line: one subcommand per capability, each in ``neuro.commands.<name>``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from neuro.io import ConfigError

COMMANDS = {
    "demo": "the main job on its built-in default: HRSNN -> simulate -> LNP prune -> Lava export",
    "simulate": "simulate a network described by a YAML/TOML config",
    "train": "train a spiking network on event data (surrogate gradients)",
    "prune": "Lyapunov noise pruning (LNP) of a heterogeneous recurrent SNN",
    "continual": "continual learning with Hebbian orthogonal projection (HLOP)",
    "export": "export a network (Lava, NIR)",
    "verify": "run a network in Lava and in neuro's simulator and compare spikes",
    "deploy": "a trained model on Lava: test-set accuracy float / neuro fixed point / Lava, spike match",
    "compat": "ANN-era methods: GraNet, CLNP, RNP, DrM, quine",
    "sweep": "run a command over seeds, a grid, random search or Bayesian optimisation on Ray",
}


def _load(name: str):
    try:
        return importlib.import_module(f"neuro.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"neuro.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuro", description="Spiking neuromorphic simulation framework.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = _load(name) if name in sys.argv[1:2] else None
        p = sub.add_parser(name, help=help_text, description=help_text)
        if module is not None:
            module.add_arguments(p)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    sys.argv[1:] = argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = _load(args.command)
    if module is None:
        print(f"neuro {args.command}: not available in this version yet", file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"\nneuro {args.command}: error: {exc}", file=sys.stderr)  # a new line: not on a progress bar's
        return 1
    except KeyboardInterrupt:
        print(f"\nneuro {args.command}: interrupted (finished outputs are complete; see docs/reliability.md)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
