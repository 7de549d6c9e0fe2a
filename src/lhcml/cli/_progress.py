"""The one progress-bar layout of the long-running commands (simulate, jets, fit)."""

from __future__ import annotations

from typing import Any


def progress_bar(
    *label: Any, extra: tuple[Any, ...] = (), console: Any = None, transient: bool = False
) -> Any:
    """A rich ``Progress``: ``label`` columns, bar, done / total, ``extra`` columns, time
    elapsed and remaining."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        *label,
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
