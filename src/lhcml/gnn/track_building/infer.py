"""Track building on scored graph files: ``event*-submission.csv`` (``hit_id,track_id``)
with :func:`lhcml.gnn.track_building.build_tracks`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml.errors import ConfigError, InputError
from lhcml.gnn.features import (
    distance_key,
)
from lhcml.gnn.files import (
    list_graphs,
    load_graph,
)
from lhcml.gnn.runtime import track_progress


def track_building_infer(
    graphs: str | Path,
    out_dir: str | Path,
    params: dict[str, Any] | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Build tracks from scored graphs; write ``event*-submission.csv`` (``-1``: no track).

    ``params`` are :func:`lhcml.gnn.track_building.build_tracks` keyword arguments.
    """
    from lhcml.gnn.track_building import build_tracks
    from lhcml.io.submission import submission_path, write_submission

    files, seconds = [], []
    for f in track_progress(list_graphs(graphs), "track building", progress):
        g = load_graph(f)
        if g.scores is None:
            raise InputError("graph has no edge scores: run the edge classifier first", path=f)
        start = time.perf_counter()
        try:
            tid = build_tracks(
                g.n_nodes, g.edge_index, g.scores, distance_key(g.x), **(params or {})
            )
        except TypeError as e:
            raise ConfigError(f"track_building: {e}") from e
        seconds.append(time.perf_counter() - start)
        table = pd.DataFrame({"hit_id": g.hit_id, "track_id": tid})
        files.append(write_submission(table, submission_path(out_dir, g.event_id)))
    return {"seconds_per_event": float(np.mean(seconds)), "files": [str(f) for f in files]}
