"""Candidate quality: scores from TrackFormer's quality heads and the cleaning step.

The model (:class:`lhcml.fitting.trackformer.TrackFormer`) gives every candidate a
probability of being real (its majority particle holds more than half of its hits) and
every hit a probability of belonging to the candidate's majority particle.
:func:`clean_candidates` turns these into a cleaner candidate list:

1. drop candidates whose score is below ``candidate_threshold`` (fakes);
2. drop hits whose score is below ``hit_threshold`` (contamination, the minority part of
   merged candidates);
3. drop candidates left with fewer than ``min_hits`` hits;
4. resolve duplicates: of candidates in one event sharing more than ``max_shared`` of the
   smaller one's hits, keep the highest-scored.

:func:`assignment_table` writes candidates as the ``hit_id, track_id`` table the
tracking metrics (:func:`lhcml.metrics.tracking.tracking_performance`) read, so rates
before and after cleaning come from the same code.

On a track finder's output (the GNN chain's submissions), :func:`clean_assignment`
writes the cleaned tracks with the finder's track ids, :func:`finder_rates` measures
efficiency, fake and duplicate rates the way the GNN chain reports them, and
:func:`choose_cleaning` picks the two thresholds on validation events
(:mod:`lhcml.fitting.gnn_quality` runs the whole study).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml.errors import InputError
from lhcml.fitting.candidates import Candidates


@dataclass(frozen=True)
class CleaningConfig:
    """Thresholds of :func:`clean_candidates`.

    Attributes:
        candidate_threshold: minimum candidate score.
        hit_threshold: minimum hit score.
        min_hits: minimum hits left after hit removal.
        max_shared: duplicate if more than this fraction of the smaller candidate's hits
            are shared.
    """

    candidate_threshold: float = 0.5
    hit_threshold: float = 0.5
    min_hits: int = 5
    max_shared: float = 0.5

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _duplicates(cands: Candidates, score: np.ndarray, max_shared: float) -> np.ndarray:
    """Boolean mask of candidates to keep after duplicate removal (per event)."""
    from scipy import sparse

    n = len(cands)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep
    cand = cands.candidate_of_hit
    # One column per (event, hit).
    key = pd.factorize(pd.MultiIndex.from_arrays([cands.event_id[cand], cands.hit_id]))[0]
    inc = sparse.csr_matrix((np.ones(len(cand)), (cand, key)), shape=(n, int(key.max()) + 1))
    shared = (inc @ inc.T).tocoo()
    lengths = cands.lengths
    off = shared.row != shared.col
    i, j, s = shared.row[off], shared.col[off], shared.data[off]
    dup = s > max_shared * np.minimum(lengths[i], lengths[j])
    i, j = i[dup], j[dup]
    if len(i) == 0:
        return keep
    neighbours: dict[int, list[int]] = {}
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        neighbours.setdefault(a, []).append(b)
    # Greedy, best first (non-maximum suppression): a kept candidate removes its worse
    # duplicates.
    rank = np.empty(n, np.int64)
    rank[np.lexsort((np.arange(n), -lengths, -score))] = np.arange(n)
    for c in sorted(neighbours, key=lambda k: rank[k]):
        if keep[c]:
            for o in neighbours[c]:
                if rank[o] > rank[c]:
                    keep[o] = False
    return keep


def clean_candidates(
    cands: Candidates,
    cand_score: np.ndarray,
    hit_score: np.ndarray,
    config: CleaningConfig | None = None,
) -> tuple[Candidates, np.ndarray]:
    """Apply the cleaning steps (see the module docstring).

    Args:
        cands: candidates.
        cand_score: (n,) probability that each candidate is real.
        hit_score: (N,) probability that each hit belongs.
        config: thresholds.

    Returns:
        ``(cleaned, index)``: the cleaned candidates and, for each, its index in
        ``cands``.
    """
    cfg = config or CleaningConfig()
    cand_score = np.asarray(cand_score, dtype=np.float64)
    hit_score = np.asarray(hit_score, dtype=np.float64)
    keep_c = cand_score >= cfg.candidate_threshold
    keep_h = (hit_score >= cfg.hit_threshold) & np.repeat(keep_c, cands.lengths)
    reduced = cands.with_hits(keep_h)
    keep_c &= reduced.lengths >= cfg.min_hits
    index = np.flatnonzero(keep_c)
    reduced = reduced.select(index)
    keep_d = _duplicates(reduced, cand_score[index], cfg.max_shared)
    return reduced.select(np.flatnonzero(keep_d)), index[keep_d]


def assignment_table(cands: Candidates, event_id: int | None = None) -> pd.DataFrame:
    """``hit_id, track_id`` of the candidates (of one event if ``event_id`` is given);
    the track id is the candidate index."""
    cand = cands.candidate_of_hit
    sel = np.ones(len(cand), bool) if event_id is None else cands.event_id[cand] == event_id
    return pd.DataFrame({"hit_id": cands.hit_id[sel], "track_id": cand[sel].astype(np.int64)})


# --- a track finder's output: cleaning, rates before / after, cuts chosen on val events ---

#: Threshold grid of :func:`choose_cleaning`.
CUT_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def cleaning_from_model(model_dir: str | Path) -> CleaningConfig:
    """The cuts stored beside a model (``cleaning.json``, written by
    :func:`lhcml.fitting.gnn_quality.run`), else the defaults.

    Raises:
        InputError: unreadable ``cleaning.json``.
    """
    import json

    path = Path(model_dir) / "cleaning.json"
    if not path.is_file():
        return CleaningConfig()
    try:
        data = json.loads(path.read_text())
        return CleaningConfig(**{k: data[k] for k in asdict(CleaningConfig())})
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"bad cleaning cuts ({e})", path=path) from None


def clean_assignment(
    cands: Candidates,
    cand_score: np.ndarray,
    hit_score: np.ndarray,
    config: CleaningConfig | None = None,
) -> pd.DataFrame:
    """A finder's tracks after cleaning, as its own ``hit_id, track_id`` table.

    Args:
        cands: the finder's tracks (:func:`lhcml.fitting.candidates.from_assignment`,
            one event).
        cand_score, hit_score: model scores.
        config: cuts.

    Returns:
        ``hit_id, track_id`` of the kept hits of the kept tracks, with the finder's track
        ids; removed hits are unassigned (absent).
    """
    cleaned, index = clean_candidates(cands, cand_score, hit_score, config)
    return pd.DataFrame(
        {
            "hit_id": cleaned.hit_id.astype(np.int64),
            "track_id": np.repeat(cands.track_id[index], cleaned.lengths).astype(np.int64),
        }
    )


def finder_rates(
    events: Mapping[int, Any],
    assignments: Mapping[int, pd.DataFrame],
    *,
    matching: str = "atlas",
    fiducial: Any = None,
    min_track_hits: int = 5,
) -> dict[str, Any]:
    """Efficiency, fake and duplicate rates of a finder's output over events, as the GNN
    chain reports them (:func:`lhcml.gnn.track_building.evaluate.track_evaluate`: its
    fiducial selection, tracks of ``min_track_hits`` or more hits).

    Args:
        events: event id -> :class:`lhcml.data.Event` with truth and particles.
        assignments: event id -> ``hit_id, track_id``.
        matching: truth matching of :mod:`lhcml.metrics.tracking`.
        fiducial: :class:`lhcml.metrics.tracking.FiducialSelection` (default: the GNN
            chain's target, ``lhcml.gnn.features.DEFAULT_TARGET``).
        min_track_hits: tracks with fewer hits do not count.

    Returns:
        ``efficiency``, ``fake_rate``, ``duplicate_rate`` (``k, n, value, low, high``),
        ``tracks`` (selected tracks) and ``events``.
    """
    from lhcml.gnn.features import DEFAULT_TARGET
    from lhcml.metrics.tracking import TrackingPerformance, TrackSelection, tracking_performance

    perfs = [
        tracking_performance(
            assignments[eid],
            ev.truth,
            ev.particles,
            hits=ev.hits,
            matching=matching,  # type: ignore[arg-type]
            fiducial=fiducial or DEFAULT_TARGET,
            track_selection=TrackSelection(min_hits=min_track_hits),
        )
        for eid, ev in events.items()
    ]
    total = TrackingPerformance.combine(perfs).to_dict()
    out = {k: total[k] for k in ("efficiency", "fake_rate", "duplicate_rate")}
    out["tracks"] = out["fake_rate"]["n"]
    out["events"] = len(perfs)
    return out


def figure_of_merit(rates: Mapping[str, Any]) -> float:
    """What :func:`choose_cleaning` maximises: efficiency - fake rate - duplicate rate
    (an undefined rate, e.g. with no tracks left, counts as 0)."""

    def value(key: str) -> float:
        v = rates[key]["value"]
        return 0.0 if v is None else float(v)

    return value("efficiency") - value("fake_rate") - value("duplicate_rate")


def choose_cleaning(
    events: Mapping[int, Any],
    cands: Mapping[int, Candidates],
    scores: Mapping[int, tuple[np.ndarray, np.ndarray]],
    *,
    grid: Sequence[float] = CUT_GRID,
    base: CleaningConfig | None = None,
    matching: str = "atlas",
    fiducial: Any = None,
    min_track_hits: int = 5,
) -> tuple[CleaningConfig, list[dict[str, Any]]]:
    """Candidate and hit thresholds maximising :func:`figure_of_merit` on (validation)
    events.

    Args:
        events: event id -> event with truth.
        cands: event id -> the finder's tracks as candidates.
        scores: event id -> ``(cand_score, hit_score)``.
        grid: thresholds tried for both cuts.
        base: the other cuts (``min_hits``, ``max_shared``).
        matching, fiducial, min_track_hits: as :func:`finder_rates`.

    Returns:
        ``(best config, every grid point's cuts, rates and figure of merit)``.
    """
    base = base or CleaningConfig(min_hits=min_track_hits)
    scan = []
    best, best_fom = base, -math.inf
    for ct in grid:
        for ht in grid:
            cfg = replace(base, candidate_threshold=float(ct), hit_threshold=float(ht))
            subs = {eid: clean_assignment(cands[eid], *scores[eid], cfg) for eid in events}
            r = finder_rates(
                events, subs, matching=matching, fiducial=fiducial, min_track_hits=min_track_hits
            )
            fom = figure_of_merit(r)
            scan.append({"cleaning": cfg.to_dict(), "rates": r, "figure_of_merit": fom})
            if fom > best_fom:
                best, best_fom = cfg, fom
    return best, scan
