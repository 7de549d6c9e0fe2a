"""``lhcml subset``: reduced events (barrel only, a fraction of the particles, no double
hits, a chosen noise share), as the hepqpr-qallse dataset maker makes them.

Example (the reduction of the kept-aside real event of issue 15)::

    lhcml subset ../shared/data/trackml --out runs/reduced --volumes barrel \\
        --density 0.2 --no-double-hits --noise-fraction 0.23 --high-pt-cut 1 --min-hits 5
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lhcml.cli._options import EventIdsOpt, EventsArg


def subset(
    events: EventsArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the reduced events.")],
    event_id: EventIdsOpt = None,
    volumes: Annotated[
        str | None,
        typer.Option(help="Volumes kept: comma-separated ids, 'barrel' (8,13,17) or 'all'."),
    ] = None,
    density: Annotated[
        float, typer.Option(help="Fraction of the particles kept, with all their hits.")
    ] = 1.0,
    double_hits: Annotated[
        bool,
        typer.Option(
            "--double-hits/--no-double-hits",
            help="Keep a particle's second hits on a layer (overlapping modules).",
        ),
    ] = True,
    noise_fraction: Annotated[
        float | None,
        typer.Option(help="Share of noise among the kept hits (default: noise at --density)."),
    ] = None,
    high_pt_cut: Annotated[
        float, typer.Option(help="Score weight 0 for hits of particles below this pT [GeV].")
    ] = 0.0,
    min_hits: Annotated[
        int, typer.Option(help="Score weight 0 for particles left with fewer hits.")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the particle and noise sampling.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv (TrackML CSV).")] = (
        "parquet"
    ),
) -> None:
    """Write reduced copies of events (hit and particle ids unchanged, weights
    renormalised); a detectors file beside the input is copied beside the output."""
    import shutil

    from rich.console import Console

    from lhcml.data.subset import SubsetConfig, make_subset, parse_volumes
    from lhcml.gnn.files import find_detectors
    from lhcml.io import list_events, read_event, write_event
    from lhcml.io.atomic import write_atomic

    config = SubsetConfig(
        volumes=parse_volumes(volumes),
        density=density,
        double_hits=double_hits,
        noise_fraction=noise_fraction,
        high_pt_cut=high_pt_cut,
        min_hits=min_hits,
        seed=seed,
    )
    ids: list[int | None] = [None]  # an event prefix, or a directory of ACTS CSV output
    if events.is_dir():
        ids = list(event_id or list_events(events)) or [None]
    console = Console(stderr=True)
    for eid in ids:
        event = read_event(events, eid)
        reduced = make_subset(event, config)
        write_event(reduced, out, fmt)  # type: ignore[arg-type]
        s = reduced.meta["subset"]
        console.print(
            f"event {reduced.event_id}: {s['source_hits']:,} -> {s['hits']:,} hits, "
            f"{s['particles']:,} particles, noise {s['noise_share']:.1%}, "
            f"{s['double_hits_removed']:,} double hits removed"
        )
    det = find_detectors(events)
    if det is not None:
        write_atomic(Path(out) / det.name, lambda p: shutil.copyfile(det, p))
        console.print(f"copied {det.name} beside the reduced events")
