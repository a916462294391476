"""Dotted keys into a config: ``a.b.2`` is ``config["a"]["b"][2]`` (integers index lists, ``-1`` the last)."""

from __future__ import annotations

from neuro.io import ConfigError


def get_dotted(data, key: str, where: str):
    """``data[a][b][2]`` for ``key = "a.b.2"`` (integers index lists; ``-1`` the last item)."""
    node = data
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and _is_int(part) and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            raise ConfigError(f"{where}: no {part!r} in {key!r}")
    return node


def set_dotted(data: dict, key: str, value, where: str) -> None:
    """Set ``key`` (dotted, see :func:`get_dotted`) in ``data``; missing mappings on the way are created."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not (_is_int(part) and -len(node) <= int(part) < len(node)):
                raise ConfigError(f"{where}: {'.'.join(parts[:i]) or 'the top'} is a list of {len(node)} "
                                  f"item(s); {part!r} is not an index of it")
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(f"{where}: {'.'.join(parts[:i])} is a {type(node).__name__}, not a mapping")
        elif not last and node.get(part) is None:
            node[part] = {}
        if last:
            node[part] = value
        else:
            node = node[part]


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
