"""Streaming drift: reference profiles, streaming windows, and the drift statistics computed from them."""

from driftline_runtime.drift.monitor import DriftMonitor, DriftSnapshot
from driftline_runtime.drift.reference import ProfileError, Reference, parse_reference
from driftline_runtime.drift.window import CountWindow, TimeWindow, Window

__all__ = [
    "CountWindow",
    "DriftMonitor",
    "DriftSnapshot",
    "ProfileError",
    "Reference",
    "TimeWindow",
    "Window",
    "parse_reference",
]
