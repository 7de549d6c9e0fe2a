"""Option and argument types that several ``lhcml`` commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: ``EVENTS``: a directory of events or one event's file prefix.
EventsArg = Annotated[
    Path, typer.Argument(help="Event directory, or one event prefix (DIR/event000000001).")
]
#: ``--event-id`` (repeatable).
EventIdsOpt = Annotated[
    list[int] | None, typer.Option("--event-id", help="Only these events (repeatable).")
]
