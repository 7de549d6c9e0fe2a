"""Event data model shared by every stage."""

from __future__ import annotations

from lhcml.data.event import TABLES, Event
from lhcml.data.schema import CELLS, HITS, PARTICLES, SCHEMAS, SPACEPOINTS, TRUTH, Column

__all__ = [
    "CELLS",
    "HITS",
    "PARTICLES",
    "SCHEMAS",
    "SPACEPOINTS",
    "TABLES",
    "TRUTH",
    "Column",
    "Event",
]
