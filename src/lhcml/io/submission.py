"""Track-candidate files: TrackML submissions (``hit_id,track_id``), written atomically
(read and checked by :func:`lhcml.metrics.evaluate.read_submission`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lhcml.io.atomic import write_atomic


def submission_path(directory: str | Path, event_id: int) -> Path:
    """``directory/event000000042-submission.csv``."""
    return Path(directory) / f"event{event_id:09d}-submission.csv"


def write_submission(tracks: pd.DataFrame, path: str | Path) -> Path:
    """Write ``hit_id,track_id`` (the TrackML submission layout) atomically."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    table = pa.table({c: tracks[c].to_numpy(np.int64) for c in ("hit_id", "track_id")})

    def write(p: Path) -> None:
        # Arrow's writer: the bytes of pandas' to_csv, 4x faster (a mu = 200 event: 11
        # against 47 ms). Its own header would be quoted, so the header is written here.
        with open(p, "wb") as f:
            f.write(b"hit_id,track_id\n")
            pcsv.write_csv(table, f, pcsv.WriteOptions(include_header=False))

    return write_atomic(path, write)
