"""``neuro compat METHOD [CONFIG]``: run one ANN-era method (contract in :mod:`neuro.compat`)."""

from __future__ import annotations

import importlib
import json

from neuro.commands.arguments import positive_int
from neuro.compat import METHODS
from neuro.io import ConfigError, check_keys, load_config, output_folder, write_json

HELP = "ANN-era methods: GraNet, CLNP, RNP, DrM, quine"


def add_arguments(parser) -> None:
    parser.add_argument("method", choices=METHODS, help="which method to run")
    parser.add_argument("config", nargs="?", help="YAML/TOML file with a top-level section named after METHOD "
                                                  "(omitted: the method's DEFAULTS)")
    parser.add_argument("--out", help="output folder for report.json and plots (default runs/compat-METHOD)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default 1: these models are tiny, more threads only contend)")


def section_of(config: dict, method: str, path) -> dict:
    """The ``method`` section of a loaded CONFIG (other top-level keys must be method names)."""
    check_keys(config, METHODS, str(path))
    if method not in config:
        raise ConfigError(f"{path}: no top-level section {method!r} (found {sorted(config)})")
    section = config[method] or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: section {method!r} must be a mapping, got {type(section).__name__}")
    return section


def _summary_lines(report: dict, limit: int = 12) -> list[str]:
    summary = report.get("summary", {})
    lines = [f"{key}: {json.dumps(value, default=str)[:160]}" for key, value in list(summary.items())[:limit]]
    return lines or ["(no summary in report)"]


def run(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    module = importlib.import_module(f"neuro.compat.{args.method}")
    config = dict(module.DEFAULTS) if args.config is None else section_of(load_config(args.config), args.method,
                                                                          args.config)
    out_dir = output_folder(args.out or f"runs/compat-{args.method}")
    report = module.run_from_config(config, out_dir)
    path = write_json(out_dir / "report.json", report)
    print(f"neuro compat {args.method}: report written to {path}")
    for line in _summary_lines(report):
        print("  " + line)
    return 0
