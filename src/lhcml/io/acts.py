"""Reader for ACTS CSV output (placeholder module: filled in by the readers work)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lhcml.data.event import Event
from lhcml.errors import InputError


def is_acts_dir(path: str | Path, event_id: int | None = None) -> bool:
    """Whether ``path`` is a directory of ACTS CSV output (``event*-measurements.csv``)."""
    path = Path(path)
    return path.is_dir() and any(path.glob("event*-measurements.csv"))


def read_acts_event(
    path: str | Path, event_id: int | None = None, *, parts: Iterable[str] | None = None
) -> Event:
    """Read one event of ACTS CSV output."""
    raise InputError("ACTS CSV reading is not available yet", path=path)
