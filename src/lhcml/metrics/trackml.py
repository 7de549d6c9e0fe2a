"""The TrackML challenge score and its per-hit weights, as the challenge defined them.

Reference: the challenge's own library, ``trackml-library`` (``trackml/weights.py`` and
``trackml/score.py``, github.com/LAL/trackml-library, authors S. Amrouche, D. Rousseau,
M. Kiehn, I. Vukotic). This module re-implements it vectorised (numpy) and gives the
same numbers; the definitions are spelled out below so nobody has to read the original.

**Hit weights** are defined in :mod:`lhcml.data.weights` (they are part of the truth
table, which the readers and the simulation fill); :func:`hit_weights` is re-exported here.

**Score** (:func:`score_event`). Every track (set of hits sharing a ``track_id``) is
matched to its majority particle: the particle (noise counts as particle 0) with the most
hits on the track, ties to the smallest particle id. The track is *good* if strictly
more than half of its hits belong to that particle and strictly more than half of that
particle's hits are on the track (the "double majority"). The score is the summed truth
``weight`` of the majority-particle hits of all good tracks, divided by the event's total
weight. A perfect reconstruction scores 1; because of the double majority, every
particle is counted at most once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lhcml.data.weights import hit_weights, require_columns
from lhcml.errors import InputError

__all__ = ["analyze_tracks", "check_submission", "hit_weights", "score_event"]


def _check_ids(
    values: pd.Series, name: str, path: str | Path | None, *, allow_negative: bool = True
) -> np.ndarray:
    """Integer ids of a submission column, with errors naming file and column."""
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        coerced = pd.to_numeric(values, errors="coerce")
        bad = values[coerced.isna() & values.notna()].head(3).tolist()
        raise InputError(f"expected integers, found {bad}", path=path, column=name)
    arr = values.to_numpy()
    if pd.isna(arr).any():
        rows = np.flatnonzero(pd.isna(arr))
        raise InputError(
            f"{len(rows)} missing / NaN value(s), first at row(s) {rows[:3].tolist()}",
            path=path,
            column=name,
        )
    if arr.dtype.kind == "f":
        bad = ~(np.isfinite(arr) & (arr == np.round(arr)))
        if bad.any():
            raise InputError(
                f"expected integers, found {arr[bad][:3].tolist()}", path=path, column=name
            )
    out = arr.astype(np.int64)
    if not allow_negative and (out < 0).any():
        raise InputError(
            f"expected non-negative ids, found {out[out < 0][:3].tolist()}", path=path, column=name
        )
    return out


def check_submission(
    submission: pd.DataFrame,
    hit_ids: np.ndarray | None = None,
    *,
    path: str | Path | None = None,
) -> pd.DataFrame:
    """Validate a hit-to-track assignment and return ``hit_id, track_id`` as int64.

    Args:
        submission: DataFrame with ``hit_id`` and ``track_id`` (extra columns ignored).
        hit_ids: the event's hit ids; if given, the submission must hold each exactly once.
        path: the file the submission came from, named in errors.

    Raises:
        InputError: missing columns, non-integer or NaN values, duplicate hit ids, or hit
            ids missing from / not in the event.
    """
    missing = [c for c in ("hit_id", "track_id") if c not in submission.columns]
    if missing:
        raise InputError(
            f"submission lacks column(s) {missing}; found {list(submission.columns)}",
            path=path,
            column=missing[0],
        )
    hid = _check_ids(submission["hit_id"], "hit_id", path)
    tid = _check_ids(submission["track_id"], "track_id", path)
    # Sort-based checks: numpy's hash-based unique / setdiff1d are far slower here.
    ordered = np.sort(hid)
    repeated = ordered[1:] == ordered[:-1]
    if repeated.any():
        dup = np.unique(ordered[1:][repeated])
        raise InputError(
            f"{len(dup)} hit id(s) assigned more than once (e.g. {dup[:3].tolist()}); "
            "each hit may belong to at most one track",
            path=path,
            column="hit_id",
        )
    if hit_ids is not None:
        expected = np.sort(np.asarray(hit_ids, dtype=np.int64))
        if not np.array_equal(expected, ordered):
            absent = expected[~np.isin(expected, ordered)]
            extra = ordered[~np.isin(ordered, expected)]
            parts = []
            if len(absent):
                parts.append(
                    f"{len(absent)} hit(s) of the event missing (e.g. {absent[:3].tolist()})"
                )
            if len(extra):
                parts.append(f"{len(extra)} hit id(s) not in the event (e.g. {extra[:3].tolist()})")
            raise InputError(
                "submission must assign every hit of the event exactly once: " + "; ".join(parts),
                path=path,
                column="hit_id",
            )
    return pd.DataFrame({"hit_id": hid, "track_id": tid})


def analyze_tracks(
    truth: pd.DataFrame,
    submission: pd.DataFrame,
    *,
    path: str | Path | None = None,
    negative_unassigned: bool = False,
) -> pd.DataFrame:
    """Majority particle, hit counts and weight of every submitted track.

    Args:
        truth: ``hit_id, particle_id, weight`` for every hit of the event.
        submission: ``hit_id, track_id`` for every hit of the event.
        path: the submission's file, named in errors.
        negative_unassigned: treat hits with ``track_id < 0`` as unassigned (each its
            own track) instead of as one track labelled by that id. The score is the same
            either way unless many unassigned hits share a majority particle.

    Returns:
        One row per track: ``track_id, nhits, major_particle_id, major_particle_nhits,
        major_nhits, major_weight`` (weight divided by the event's total weight), sorted
        by ``track_id``.
    """
    require_columns(truth, ("hit_id", "particle_id", "weight"), "truth")
    t_hid = truth["hit_id"].to_numpy(np.int64)
    sub = check_submission(submission, t_hid, path=path)

    t_order = np.argsort(t_hid, kind="stable")
    s_order = np.argsort(sub["hit_id"].to_numpy(), kind="stable")
    pid = truth["particle_id"].to_numpy(np.int64)[t_order]
    weight = truth["weight"].to_numpy(np.float64)[t_order]
    tid = sub["track_id"].to_numpy()[s_order]

    p_label, p_uniques = pd.factorize(pid, sort=True)
    if negative_unassigned:
        # Give every unassigned hit a distinct label below the smallest real one.
        neg = tid < 0
        lo = min(int(tid[~neg].min()) if (~neg).any() else 0, 0)
        tid = tid.copy()
        tid[neg] = lo - 1 - np.arange(int(neg.sum()))
    t_label, t_uniques = pd.factorize(tid, sort=True)
    n_p = len(p_uniques)

    # (track, particle) pairs: hit counts and summed weights.
    pair = t_label.astype(np.int64) * n_p + p_label
    pairs, inverse, pair_n = np.unique(pair, return_inverse=True, return_counts=True)
    pair_w = np.bincount(inverse, weights=weight, minlength=len(pairs))
    pair_t = pairs // n_p
    pair_p = pairs % n_p
    # Majority per track: most hits, ties to the smallest particle id (first encountered in
    # the original's sort by particle id).
    order = np.lexsort((pair_p, -pair_n, pair_t))
    first = order[np.r_[True, pair_t[order][1:] != pair_t[order][:-1]]]

    total = weight.sum()
    particle_nhits = np.bincount(p_label, minlength=n_p)
    return pd.DataFrame(
        {
            "track_id": t_uniques[pair_t[first]],
            "nhits": np.bincount(t_label, minlength=len(t_uniques)),
            "major_particle_id": p_uniques[pair_p[first]],
            "major_particle_nhits": particle_nhits[pair_p[first]],
            "major_nhits": pair_n[first],
            "major_weight": pair_w[first] / total if total > 0 else np.zeros(len(first)),
        }
    )


def score_event(
    truth: pd.DataFrame,
    submission: pd.DataFrame,
    *,
    path: str | Path | None = None,
    negative_unassigned: bool = False,
) -> float:
    """The TrackML score of one event (double majority, strict ``> 0.5`` both ways).

    A track is good when more than half of its hits belong to its majority particle and
    more than half of that particle's hits are on the track; the score is the summed
    ``weight`` of those majority hits over all good tracks, divided by the total weight
    (see the module docstring).

    Args:
        truth: ``hit_id, particle_id, weight`` for every hit of the event.
        submission: ``hit_id, track_id``: every hit of the event exactly once. Every
            ``track_id`` value (negative ones too) labels one track, as in the challenge.
        path: the submission's file, named in errors.
        negative_unassigned: treat ``track_id < 0`` as "unassigned" (see
            :func:`analyze_tracks`).

    Returns:
        The score in [0, 1].

    Raises:
        InputError: bad submission columns or values, a hit in more than one track, or
            hit ids that do not match the event's.
    """
    tracks = analyze_tracks(truth, submission, path=path, negative_unassigned=negative_unassigned)
    major = tracks["major_nhits"].to_numpy()
    # 0.5 < a / b  <=>  b < 2a for integers: exact, no rounding at the boundary.
    good = (tracks["nhits"].to_numpy() < 2 * major) & (
        tracks["major_particle_nhits"].to_numpy() < 2 * major
    )
    return float(tracks["major_weight"].to_numpy()[good].sum())
