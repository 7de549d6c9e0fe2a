"""Evaluate submissions against events: TrackML score plus efficiency / fake / duplicate
rates, summed over events, with ``summary.json`` and PNG plots.

**Submissions** are ``hit_id, track_id`` tables (CSV, CSV.gz or Parquet; extra columns
ignored), one row per hit of the event, each hit once; ``track_id < 0`` marks an
unassigned hit (lhcml's convention; it then belongs to no track, in the score as well).
Where they are found, given one or more sources (files or directories):

- a directory: its files ``event<N>-submission.<ext>`` or ``event<N>.<ext>`` (``ext`` =
  ``csv``, ``csv.gz``, ``parquet``) are the submissions of event ``N``;
- a file named that way: the submission of event ``N``;
- any other file: with an ``event_id`` column (the Kaggle layout), the submissions of all
  events it lists; without one, the submission of the only event evaluated.

An event with two submissions is an error. Events without a submission are an error
unless ``skip_missing`` (then only events with one are evaluated).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lhcml.errors import InputError
from lhcml.metrics.tracking import (
    FiducialSelection,
    Matching,
    TrackingPerformance,
    TrackSelection,
    tracking_performance,
)
from lhcml.metrics.trackml import check_submission, score_event

if TYPE_CHECKING:
    from lhcml.data.event import Event
    from lhcml.metrics.stats import Interval

SUBMISSION_EXTENSIONS: tuple[str, ...] = (".csv", ".csv.gz", ".parquet")
_NAME_RE = re.compile(r"^event(\d+)(-submission)?\.(csv|csv\.gz|parquet)$")


def read_submission(path: str | Path, event_id: int | None = None) -> pd.DataFrame:
    """Read a submission file and check its columns and values.

    Args:
        path: CSV, CSV.gz or Parquet with ``hit_id`` and ``track_id`` columns (and
            optionally ``event_id``).
        event_id: with an ``event_id`` column, keep only this event's rows.

    Returns:
        ``hit_id, track_id`` (int64). Matching the event's hits is checked when scoring.

    Raises:
        InputError: unreadable file, missing columns, non-integer or NaN values, several
            events in the file and no ``event_id`` chosen, duplicate hit ids.
    """
    path = Path(path)
    return select_event(_read_table(path), path, event_id)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("submission file not found", path=path)
    try:
        df = pd.read_parquet(path) if path.name.endswith(".parquet") else pd.read_csv(path)
    except Exception as e:  # parser errors of pandas / pyarrow: report, don't trace
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"cannot read submission: {first}", path=path) from e
    df.columns = [str(c).strip() for c in df.columns]
    return df


def select_event(df: pd.DataFrame, path: Path | None, event_id: int | None) -> pd.DataFrame:
    """The rows of ``event_id`` (if the table has an ``event_id`` column), checked."""
    if "event_id" in df.columns:
        ids = pd.unique(df["event_id"])
        if event_id is not None:
            df = df[df["event_id"].to_numpy() == event_id]
            if len(df) == 0:
                raise InputError(
                    f"no rows for event {event_id} (events in file: {sorted(ids)[:5]})",
                    path=path,
                    column="event_id",
                )
        elif len(ids) > 1:
            raise InputError(
                f"holds {len(ids)} events; choose one with an event id",
                path=path,
                column="event_id",
            )
    return check_submission(df, path=path)


def submission_event_ids(path: Path) -> list[int] | None:
    """Event ids a submission file is for: from its name, its ``event_id`` column, or
    ``None`` (no way to tell: it belongs to the single evaluated event)."""
    m = _NAME_RE.match(path.name)
    if m:
        return [int(m.group(1))]
    try:
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            cols = pq.read_schema(path).names
            head = pd.read_parquet(path, columns=["event_id"]) if "event_id" in cols else None
        else:
            cols = pd.read_csv(path, nrows=0).columns.str.strip()
            head = (
                pd.read_csv(path, usecols=lambda c: c.strip() == "event_id")
                if "event_id" in cols
                else None
            )
    except Exception as e:
        raise InputError(f"cannot read submission: {str(e).splitlines()[0]}", path=path) from e
    if head is None:
        return None
    return sorted(int(i) for i in pd.unique(head.iloc[:, 0]))


def find_submissions(
    sources: Sequence[str | Path], event_ids: Sequence[int]
) -> dict[int, Path | None]:
    """Map each event id to its submission file (see the module docstring for the rules).

    Returns:
        ``{event_id: path}`` for the events that have one; the value is the file (which
        may hold several events in an ``event_id`` column).

    Raises:
        InputError: a source does not exist, two submissions for one event, or a file
            without event id while several events are evaluated.
    """
    from lhcml.io.events import find_event_files

    def named(f: Path) -> int | None:
        m = _NAME_RE.match(f.name)
        return int(m.group(1)) if m else None

    return find_event_files(  # type: ignore[return-value]
        sources,
        event_ids,
        named_event=named,
        file_events=submission_event_ids,
        what="submission",
        unnamed="cannot tell which of the {n} events this submission is for: name it "
        "event<N>-submission.csv, add an event_id column, or evaluate one event",
    )


@dataclass(frozen=True)
class EventResult:
    """Per-event numbers: TrackML score, hit and track counts, the submission used."""

    event_id: int
    score: float
    n_hits: int
    n_tracks: int
    submission: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "event_id": self.event_id,
            "score": self.score,
            "n_hits": self.n_hits,
            "n_tracks": self.n_tracks,
            "submission": self.submission,
        }


@dataclass
class EvaluationResult:
    """Everything :func:`evaluate_events` measured.

    ``performance`` sums the counts of all events (rates are over the pooled particles /
    tracks, not means of per-event rates); the TrackML score is reported per event and
    as mean and standard deviation over events.
    """

    performance: TrackingPerformance
    events: list[EventResult]
    files: list[Path] = field(default_factory=list)

    @property
    def scores(self) -> np.ndarray:
        """Per-event TrackML scores."""
        return np.array([e.score for e in self.events], dtype=np.float64)

    @property
    def score_mean(self) -> float:
        """Mean TrackML score over events."""
        return float(self.scores.mean()) if self.events else math.nan

    @property
    def score_std(self) -> float:
        """Standard deviation (ddof=1) of the per-event scores; NaN for one event."""
        return float(self.scores.std(ddof=1)) if len(self.events) > 1 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """The ``summary.json`` content."""

        def num(v: float) -> float | None:
            return v if math.isfinite(v) else None

        perf = self.performance.to_dict()
        binned = perf.pop("binned")
        return {
            "n_events": len(self.events),
            "trackml_score": {
                "mean": num(self.score_mean),
                "std": num(self.score_std),
                "per_event": [e.to_dict() for e in self.events],
            },
            **perf,
            "binned": binned,
            "plots": [p.name for p in self.files if p.suffix == ".png"],
        }


def _iter_events(
    events: str | Path | Sequence[Event], event_ids: Sequence[int] | None
) -> tuple[list[int], Iterator[Event]]:
    from lhcml.io import list_events, read_event, resolve_prefix

    parts = ["hits", "truth", "particles"]
    if not isinstance(events, (str, Path)):
        chosen = [e for e in events if event_ids is None or e.event_id in set(event_ids)]
        return [e.event_id for e in chosen], iter(chosen)
    path = Path(events)
    if path.is_dir():
        ids = list(event_ids) if event_ids else list_events(path)
        if not ids:
            raise InputError("no events (no event*-hits.* files) in this directory", path=path)

        def gen() -> Iterator[Event]:
            for eid in ids:
                yield read_event(path, eid, parts=parts)

        return ids, gen()
    prefix, eid = resolve_prefix(path)
    if event_ids and list(event_ids) != [eid]:
        raise InputError(f"event id(s) {list(event_ids)} do not match the prefix", path=path)
    return [eid], iter([read_event(prefix, parts=parts)])


def evaluate_events(
    events: str | Path | Sequence[Event],
    submissions: str | Path | Sequence[str | Path] | Mapping[int, pd.DataFrame | str | Path],
    *,
    out_dir: str | Path | None = None,
    event_ids: Sequence[int] | None = None,
    matching: Matching = "double_majority",
    fiducial: FiducialSelection | None = None,
    track_selection: TrackSelection | None = None,
    interval: Interval = "clopper-pearson",
    skip_missing: bool = False,
    plots: bool = True,
) -> EvaluationResult:
    """Score and evaluate submissions on events; optionally write ``summary.json`` + plots.

    Args:
        events: a directory of events, one event prefix (``DIR/event000000001``), or
            :class:`~lhcml.data.Event` objects (with truth and particles).
        submissions: file(s) / directory(ies) found as in the module docstring, or a
            mapping ``event_id -> DataFrame or file``.
        out_dir: where ``summary.json`` and the PNG plots go (``None``: write nothing).
        event_ids: evaluate only these events of a directory / list.
        matching: ``atlas``, ``double_majority`` (default) or ``acts``.
        fiducial: particle selection for the efficiency (default
            :class:`FiducialSelection`: pT >= 1 GeV, |eta| <= 4, >= 3 hits, primaries).
        track_selection: tracks that count (default: >= 3 hits).
        interval: binomial interval, ``clopper-pearson`` or ``wilson``.
        skip_missing: evaluate only the events that have a submission instead of failing.
        plots: write PNG plots (with ``out_dir``).

    Returns:
        An :class:`EvaluationResult`: pooled tracking performance and per-event scores.

    Raises:
        InputError: missing events / submissions, bad submission files, events without truth.
    """
    ids, stream = _iter_events(events, event_ids)
    if isinstance(submissions, Mapping):
        mapping: dict[int, Any] = dict(submissions)
    else:
        sources = [submissions] if isinstance(submissions, (str, Path)) else list(submissions)
        mapping = dict(find_submissions(sources, ids))
    missing = [eid for eid in ids if eid not in mapping]
    if missing and not skip_missing:
        raise InputError(
            f"no submission for {len(missing)} event(s) (e.g. {missing[:5]}); "
            "pass them, or skip those events"
        )
    if len(missing) == len(ids):
        raise InputError("no event has a submission")

    per_event: list[TrackingPerformance] = []
    results: list[EventResult] = []
    tables: dict[Path, pd.DataFrame] = {}  # a multi-event (Kaggle) file is read once
    for event in stream:
        if event.event_id not in mapping:
            continue
        if event.truth is None or event.particles is None:
            raise InputError(f"event {event.event_id} has no truth / particles to evaluate with")
        source = mapping[event.event_id]
        if isinstance(source, pd.DataFrame):
            path = None
            sub = check_submission(source)
        else:
            path = Path(source)
            table = tables.get(path)
            if table is None:
                table = _read_table(path)
                if "event_id" in table.columns:
                    tables[path] = table
            sub = select_event(table, path, event.event_id)
        score = score_event(event.truth, sub, path=path, negative_unassigned=True)
        per_event.append(
            tracking_performance(
                sub,
                event.truth,
                event.particles,
                hits=event.hits,
                matching=matching,
                fiducial=fiducial,
                track_selection=track_selection,
                interval=interval,
            )
        )
        tids = sub["track_id"].to_numpy()
        results.append(
            EventResult(
                event.event_id,
                score,
                len(event.hits),
                len(np.unique(tids[tids >= 0])),
                None if path is None else str(path),
            )
        )
    result = EvaluationResult(TrackingPerformance.combine(per_event), results)
    if out_dir is not None:
        from lhcml.io.atomic import write_json_atomic

        out = Path(out_dir)
        if plots:
            from lhcml.metrics.plots import plot_tracking_performance

            result.files.extend(plot_tracking_performance(result.performance, out))
        result.files.append(write_json_atomic(out / "summary.json", result.to_dict()))
    return result
