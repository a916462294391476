"""Network builders: functions that return a new, validated :class:`neuro.Network`."""

from neuro.builders.hrsnn import HRSNN_DEFAULTS, build_hrsnn

__all__ = ["HRSNN_DEFAULTS", "build_hrsnn"]
