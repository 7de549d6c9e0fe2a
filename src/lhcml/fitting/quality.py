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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

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
