"""Run a track finder over events on disk (used by ``lhcml reconstruct`` and the demo)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress

from lhcml.io import list_events, read_event, resolve_prefix
from lhcml.reco.dbscan import HelixDBSCAN, HelixDBSCANConfig
from lhcml.reco.submission import submission_path, write_submission


@dataclass(frozen=True)
class ReconstructionResult:
    """One reconstructed event: its submission file, track count and CPU time."""

    event_id: int
    path: Path
    n_tracks: int
    seconds: float


def reconstruct_events(
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    pt_min: float = 0.8,
    progress: bool = True,
) -> list[ReconstructionResult]:
    """Find tracks with the helix DBSCAN baseline in each event; write submissions.

    Args:
        events: directory of events, or one event prefix.
        out_dir: directory for ``event*-submission.csv``.
        event_ids: subset of events (default: all in the directory).
        pt_min: lowest pT hypothesis [GeV].
        progress: show a progress bar.
    """
    events = Path(events)
    if events.is_dir():
        ids = list(event_ids) if event_ids else list_events(events)
        sources = [(events, eid) for eid in ids]
    else:
        prefix, eid = resolve_prefix(events)
        sources = [(prefix, eid)]
    finder = HelixDBSCAN(HelixDBSCANConfig(pt_min=pt_min))
    results = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("reconstructing", total=len(sources))
        for source, eid in sources:
            event = read_event(source, eid if source.is_dir() else None, parts=["hits"])
            start = time.perf_counter()
            tracks = finder.find_tracks(event.hits)
            seconds = time.perf_counter() - start
            path = write_submission(tracks, submission_path(out_dir, event.event_id))
            results.append(
                ReconstructionResult(
                    event.event_id, path, int(tracks["track_id"].nunique()), seconds
                )
            )
            bar.advance(task)
    return results
