"""Dotted keys into a config: ``a.b.2`` is ``config["a"]["b"][2]`` (integers index lists, ``-1`` the last)."""

from __future__ import annotations

from neuro.io import ConfigError


def get_dotted(data, key: str, where: str):
    """``data[a][b][2]`` for ``key = "a.b.2"`` (integers index lists; ``-1`` the last item). A mapping's key
    that contains dots itself is found too: ``summary.granet@0.98.acc`` reads ``data["summary"]["granet@0.98"]
    ["acc"]`` when ``summary`` has no key ``granet@0`` (the shortest key that matches is taken)."""
    node, parts, i = data, key.split("."), 0
    while i < len(parts):
        part = parts[i]
        if isinstance(node, list) and _is_int(part) and -len(node) <= int(part) < len(node):
            node, i = node[int(part)], i + 1
            continue
        ends = [j for j in range(i + 1, len(parts) + 1) if isinstance(node, dict) and ".".join(parts[i:j]) in node]
        if not ends:
            raise ConfigError(f"{where}: no {part!r} in {key!r}")
        node, i = node[".".join(parts[i:ends[0]])], ends[0]
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
