"""``lhcml score``: the TrackML score of one submission."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def score(
    event: Annotated[
        Path,
        typer.Argument(
            help="Event prefix (DIR/event000000001), or a directory with --event-id. "
            "Needs the hits and truth tables."
        ),
    ],
    submission: Annotated[
        Path,
        typer.Argument(
            help="hit_id,track_id file (CSV, CSV.gz or Parquet), every hit of the event once; "
            "track_id < 0 = unassigned. An event_id column (Kaggle layout) is allowed."
        ),
    ],
    event_id: Annotated[
        int | None, typer.Option("--event-id", help="Event number when EVENT is a directory.")
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Also write {event_id, score, n_hits, n_tracks} to this JSON file."
        ),
    ] = None,
) -> None:
    """Compute the TrackML score (double majority, truth weights) of SUBMISSION on EVENT.

    A track counts if more than half of its hits belong to one particle and more than half
    of that particle's hits are on the track; the score sums the truth weights of those
    hits (1.0 for a perfect reconstruction).
    """
    import numpy as np
    from rich.console import Console

    from lhcml.io import read_event, write_json_atomic
    from lhcml.metrics.evaluate import read_submission
    from lhcml.metrics.trackml import score_event

    ev = read_event(event, event_id, parts=["hits", "truth"])
    assert ev.truth is not None  # read_event fails if the requested truth is absent
    sub = read_submission(submission, ev.event_id)
    value = score_event(ev.truth, sub, path=submission, negative_unassigned=True)
    tids = sub["track_id"].to_numpy()
    n_tracks = len(np.unique(tids[tids >= 0]))
    if json_out is not None:
        write_json_atomic(
            json_out,
            {"event_id": ev.event_id, "score": value, "n_hits": len(ev.hits), "n_tracks": n_tracks},
        )
    Console().print(
        f"event {ev.event_id}: TrackML score [bold]{value:.6f}[/] "
        f"({len(ev.hits)} hits, {n_tracks} tracks)",
        highlight=False,
    )
