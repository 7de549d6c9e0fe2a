"""Track-candidate files: TrackML submissions (``hit_id,track_id``), written atomically
(read and checked by :func:`lhcml.metrics.evaluate.read_submission`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lhcml.io.atomic import write_atomic


def submission_path(directory: str | Path, event_id: int) -> Path:
    """``directory/event000000042-submission.csv``."""
    return Path(directory) / f"event{event_id:09d}-submission.csv"


def write_submission(tracks: pd.DataFrame, path: str | Path) -> Path:
    """Write ``hit_id,track_id`` (the TrackML submission layout) atomically."""
    table = tracks[["hit_id", "track_id"]].astype("int64")
    return write_atomic(path, lambda p: table.to_csv(p, index=False))
