"""``lhcml inspect``: a summary of one event (any supported format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def inspect(
    event: Annotated[
        Path,
        typer.Argument(
            help="Event prefix (DIR/event000000001), an event file, or a directory "
            "(lhcml Parquet/CSV, TrackML CSV(.gz), ACTS CSV)."
        ),
    ],
    event_id: Annotated[
        int | None,
        typer.Option("--event-id", help="Event number when EVENT is a directory of events."),
    ] = None,
) -> None:
    """Print the tables of an event, hits per volume and particle statistics."""
    from rich.console import Console

    from lhcml.io import read_event

    ev = read_event(event, event_id)
    console = Console()
    for table in summary_tables(ev):
        console.print(table)


def summary_tables(ev: Any) -> list[Any]:
    """Rich tables describing ``ev``: table sizes, hits per volume, particles."""
    import numpy as np
    from rich.table import Table

    from lhcml.data.event import particle_kinematics

    source = ev.meta.get("source", "")
    counts = Table(title=f"event {ev.event_id}", caption=source, title_justify="left")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for name, df in ev.tables().items():
        counts.add_row(name, f"{len(df):,}")

    n_hits = len(ev.hits)
    volumes = Table(title="hits per volume", title_justify="left")
    volumes.add_column("volume_id", justify="right")
    volumes.add_column("hits", justify="right")
    volumes.add_column("share", justify="right")
    ids, per_volume = np.unique(ev.hits["volume_id"].to_numpy(), return_counts=True)
    for vol, n in zip(ids, per_volume, strict=True):
        volumes.add_row(str(vol), f"{n:,}", f"{n / n_hits:.1%}")

    tables = [counts, volumes]
    if ev.has_truth:
        kin = particle_kinematics(ev.particles)
        pid = ev.truth["particle_id"].to_numpy()
        noise = int((pid == 0).sum())
        hits_of = np.isin(kin["particle_id"].to_numpy(), pid[pid != 0])
        n_with = int(hits_of.sum())
        parts = Table(title="particles", title_justify="left")
        parts.add_column("quantity")
        parts.add_column("value", justify="right")
        parts.add_row("particles", f"{len(kin):,}")
        parts.add_row("with hits", f"{n_with:,}")
        if "primary" in kin.columns:
            parts.add_row("primaries", f"{int(kin['primary'].sum()):,}")
        parts.add_row("pT > 1 GeV", f"{int((kin['pt'] > 1.0).sum()):,}")
        mean = (n_hits - noise) / n_with if n_with else 0.0
        parts.add_row("hits per particle (with hits)", f"{mean:.2f}")
        parts.add_row("noise hits", f"{noise:,} ({noise / n_hits:.1%})")
        tables.append(parts)
    return tables
