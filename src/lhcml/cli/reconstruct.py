"""``lhcml reconstruct``: find tracks in events and write TrackML submissions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def reconstruct(
    events: Annotated[
        Path, typer.Argument(help="Event directory, or one event prefix (DIR/event000000001).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for event*-submission.csv files.")
    ] = Path("submissions"),
    event_id: Annotated[
        list[int] | None, typer.Option("--event-id", help="Only these events (repeatable).")
    ] = None,
    method: Annotated[
        str, typer.Option(help="Track finder: 'dbscan' (helix-unrolling baseline).")
    ] = "dbscan",
    pt_min: Annotated[float, typer.Option(help="Lowest pT hypothesis of the scan [GeV].")] = 0.8,
) -> None:
    """Reconstruct tracks and write one ``hit_id,track_id`` CSV per event."""
    from rich.console import Console

    from lhcml.errors import ConfigError
    from lhcml.reco.run import reconstruct_events

    if method != "dbscan":
        raise ConfigError(f"--method: unknown track finder '{method}'; available: dbscan")
    result = reconstruct_events(events, out, event_ids=event_id, pt_min=pt_min)
    Console().print(
        f"wrote {len(result)} submission(s) to [bold]{out}[/] "
        f"({sum(r.seconds for r in result) / max(len(result), 1):.2f} s per event)"
    )
