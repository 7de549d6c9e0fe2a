"""Event input / output: lhcml Parquet and CSV, TrackML CSV(.gz), ACTS CSV.

See ``docs/event-format.md`` for the file layout.
"""

from __future__ import annotations

from lhcml.io.atomic import atomic_path, write_atomic, write_json_atomic, write_text_atomic
from lhcml.io.detector import cell_features, read_detectors
from lhcml.io.events import (
    event_complete,
    event_prefix,
    list_events,
    read_event,
    read_events,
    resolve_prefix,
    write_event,
)

__all__ = [
    "atomic_path",
    "cell_features",
    "event_complete",
    "event_prefix",
    "list_events",
    "read_detectors",
    "read_event",
    "read_events",
    "resolve_prefix",
    "write_atomic",
    "write_event",
    "write_json_atomic",
    "write_text_atomic",
]
