"""Track evaluation of submissions against events with truth (efficiency, fake and
duplicate rates, TrackML score), with the chain's fiducial target.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lhcml.gnn.features import (
    DEFAULT_TARGET,
)
from lhcml.io.atomic import write_json_atomic
from lhcml.metrics.tracking import FiducialSelection


def track_evaluate(
    events: str | Path | Sequence[Any],
    submissions: str | Path,
    out_dir: str | Path | None = None,
    *,
    event_ids: Sequence[int] | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
    track_min_hits: int = 5,
    plots: bool = True,
) -> dict[str, Any]:
    """Track efficiency, fake and duplicate rates (ATLAS and double-majority matching) and
    the TrackML score, with :func:`lhcml.metrics.evaluate_events`."""
    from lhcml.metrics import TrackSelection, evaluate_events

    out: dict[str, Any] = {"fiducial": target.to_dict(), "track_min_hits": track_min_hits}
    for matching in ("atlas", "double_majority"):
        res = evaluate_events(
            events,
            submissions,
            out_dir=None if out_dir is None else Path(out_dir) / matching,
            event_ids=event_ids,
            matching=matching,  # type: ignore[arg-type]
            fiducial=target,
            track_selection=TrackSelection(min_hits=track_min_hits),
            skip_missing=event_ids is None,
            plots=plots,
        )
        perf = res.performance
        out[matching] = {
            "efficiency": perf.efficiency.to_dict(),
            "fake_rate": perf.fake_rate.to_dict(),
            "duplicate_rate": perf.duplicate_rate.to_dict(),
        }
        out["trackml_score"] = res.score_mean
        out["trackml_score_std"] = res.score_std
        out["events"] = len(res.events)
    if out_dir is not None:
        write_json_atomic(Path(out_dir) / "tracks.json", out)
    return out
