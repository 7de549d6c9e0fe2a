"""The TrackML challenge score and its per-hit weights, as the challenge defined them.

Reference: the challenge's own library, ``trackml-library`` (``trackml/weights.py`` and
``trackml/score.py``, github.com/LAL/trackml-library, authors S. Amrouche, D. Rousseau,
M. Kiehn, I. Vukotic). This module re-implements it vectorised (numpy) and gives the
same numbers; the definitions are spelled out below so nobody has to read the original.

**Hit weights** (:func:`hit_weights`). A hit of particle ``p`` weighs
``w = w_pt(p) * w_order(ihit, nhits)``, normalised so all weights of the event sum to 1:

- ``w_pt``: piecewise linear in the particle's production transverse momentum
  ``pt = hypot(px, py)``: 0 below 0.05 GeV, 0.2 on [0.05, 0.5] GeV, rising linearly to
  1.0 at 3 GeV, 1.0 above (``numpy.interp(pt, [0.05, 0.5, 3], [0.2, 0.2, 1], left=0,
  right=1)``).
- ``nhits``: the particle's number of hits in ``truth`` (the library's first version
  counts them so; later versions read ``particles.nhits``, the same number for a
  consistent event, but not for a truth table cut to a subset of the hits). Particles
  with fewer than 4 hits, noise (``particle_id == 0``) and hits whose particle is not in
  ``particles`` weigh 0. Tracks longer than 20 hits use the 20-hit row.
- ``ihit``: the hit's order along the track, 0-based, ranking the particle's hits by
  ``|tz - vz|`` (the hit's true z distance to the particle's production vertex, *not*
  the 3-D distance). Ties get pandas' ``rank()`` default (the average rank) truncated to
  an integer, as the original does. Hits with ``ihit >= 20`` weigh 0.
- ``w_order``: the 9-point proposal ``[10, 8, 6, 5, 3, 3, 3, 5, 6]`` (first hits
  matter most, the last few a little more than the middle) is stretched linearly over
  the ``nhits`` positions (``interp(arange(nhits), arange(9) * (nhits - 1) / 8,
  proposal)``) and normalised so that one full track's order weights sum to 1. E.g. a
  4-hit track: ``[30, 16, 9, 18] / 73``; a 5-hit track: ``[10, 6, 3, 3, 6] / 28``.
- Throughput phase (CodaLab, ``weight_hits_phase2``): hits of secondary particles also
  weigh 0 (``secondaries_zero=True``).

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

from lhcml.errors import InputError

#: Order-weight proposal of the challenge, stretched over the hits of a track.
ORDER_PROPOSAL: tuple[float, ...] = (10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0)
#: Particles with fewer hits than this weigh zero.
ORDER_MIN_HITS = 4
#: Longer tracks use this row of the order matrix; hits beyond it weigh zero.
ORDER_MAX_HITS = 20
#: pT weight support (GeV) and values: 0 below 0.05, 0.2 to 0.5, linear to 1 at 3 GeV.
PT_SUPPORT: tuple[float, float, float] = (0.05, 0.5, 3.0)
PT_WEIGHTS: tuple[float, float, float] = (0.2, 0.2, 1.0)


def _order_matrix(
    proposal: tuple[float, ...] = ORDER_PROPOSAL,
    min_hits: int = ORDER_MIN_HITS,
    max_hits: int = ORDER_MAX_HITS,
) -> np.ndarray:
    """Order weights indexed by ``[nhits, ihit]`` (rows below ``min_hits`` are zero)."""
    w = np.zeros((max_hits + 1, max_hits))
    for nhits in range(min_hits, max_hits + 1):
        supports = np.arange(len(proposal)) * (nhits - 1) / (len(proposal) - 1)
        row = np.interp(np.arange(nhits), supports, proposal)
        w[nhits, :nhits] = row / row.sum()
    return w


#: ``ORDER_MATRIX[nhits, ihit]``: the normalised order weight of hit ``ihit`` of ``nhits``.
ORDER_MATRIX: np.ndarray = _order_matrix()
ORDER_MATRIX.setflags(write=False)


def pt_weight(pt: np.ndarray | float) -> np.ndarray:
    """The TrackML transverse-momentum weight of a particle (see the module docstring)."""
    return np.interp(np.asarray(pt, dtype=np.float64), PT_SUPPORT, PT_WEIGHTS, left=0.0, right=1.0)


def trackml_generation(particle_id: np.ndarray) -> np.ndarray:
    """Generation field of TrackML particle ids, ``(id >> 24) & 0xFFF`` (0 for primaries)."""
    return (np.asarray(particle_id, dtype=np.int64) >> 24) & 0xFFF


def _require(df: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{table} table lacks column(s) {missing}; found {list(df.columns)}",
            column=missing[0],
        )


def hit_order(particle_index: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order of each hit along its particle and the particle's hit count.

    Args:
        particle_index: per hit, a non-negative integer label of its particle.
        distance: per hit, the ordering key (``|tz - vz|`` for TrackML); NaN sorts last.

    Returns:
        ``(ihit, nhits)``: the 0-based rank of each hit within its particle (ties: the
        average of the tied ranks, truncated, as ``pandas.Series.rank`` then ``astype(int)``
        does) and the number of hits of the hit's particle.
    """
    n = len(particle_index)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((distance, particle_index))
    p_sorted = particle_index[order]
    d_sorted = distance[order]
    idx = np.arange(n)
    # Blocks of one particle in the sorted arrays: start position and size.
    new_particle = np.r_[True, p_sorted[1:] != p_sorted[:-1]]
    block = np.cumsum(new_particle) - 1
    p_start = np.flatnonzero(new_particle)[block]
    nhits_sorted = np.bincount(block)[block]
    # Runs of equal distance within a particle share the average rank (a + b) / 2.
    same = np.r_[False, (d_sorted[1:] == d_sorted[:-1]) & ~new_particle[1:]]
    run_start = np.maximum.accumulate(np.where(~same, idx, 0))
    is_end = np.r_[~same[1:], True]
    run_end = np.minimum.accumulate(np.where(is_end, idx, n)[::-1])[::-1]
    ihit_sorted = (run_start + run_end) // 2 - p_start
    ihit = np.empty(n, dtype=np.int64)
    nhits = np.empty(n, dtype=np.int64)
    ihit[order] = ihit_sorted
    nhits[order] = nhits_sorted
    return ihit, nhits


def hit_weights(
    truth: pd.DataFrame, particles: pd.DataFrame, *, secondaries_zero: bool = False
) -> np.ndarray:
    """Per-hit TrackML score weights, normalised to sum 1 (the challenge's definition).

    ``w = w_pt * w_order`` per hit; see the module docstring for the exact rule. Noise,
    particles with fewer than 4 hits and particles missing from ``particles`` weigh 0.

    Args:
        truth: one row per hit with ``particle_id`` (0 = noise) and ``tz`` (mm).
        particles: ``particle_id, vz, px, py``; with ``secondaries_zero``, also
            ``primary`` (bool) if present, else the TrackML id bits decide.
        secondaries_zero: the throughput-phase (CodaLab) rule: hits of secondary
            particles (``primary == False``, or a non-zero TrackML generation
            ``(particle_id >> 24) & 0xFFF``) weigh 0.

    Returns:
        float64 array aligned with the rows of ``truth``, summing to 1 (all zeros if no
        hit carries weight, e.g. an event of noise only).
    """
    _require(truth, ("particle_id", "tz"), "truth")
    _require(particles, ("particle_id", "vz", "px", "py"), "particles")
    pid = truth["particle_id"].to_numpy(np.int64)
    ppid = particles["particle_id"].to_numpy(np.int64)
    row = pd.Index(ppid).get_indexer(pid)  # particle row of each hit, -1 if absent
    known = (row >= 0) & (pid != 0)

    px = particles["px"].to_numpy(np.float64)
    py = particles["py"].to_numpy(np.float64)
    w_pt_particle = pt_weight(np.hypot(px, py))
    if secondaries_zero:
        if "primary" in particles.columns:
            secondary = ~particles["primary"].to_numpy(bool)
        else:
            secondary = trackml_generation(ppid) != 0
        w_pt_particle = np.where(secondary, 0.0, w_pt_particle)
    w_pt = np.where(known, w_pt_particle[row], 0.0)

    # Rank hits per truth particle id (as the original groups by particle_id), keyed
    # by |tz - vz|; hits of unknown particles get no weight anyway.
    vz = particles["vz"].to_numpy(np.float64)
    dist = np.abs(truth["tz"].to_numpy(np.float64) - np.where(known, vz[row], 0.0))
    labels = pd.factorize(pid)[0]
    ihit, nhits = hit_order(labels, dist)
    nhits = np.where(pid == 0, 0, nhits)

    nrow = np.minimum(nhits, ORDER_MAX_HITS)
    inside = ihit < ORDER_MAX_HITS
    w_order = np.where(inside, ORDER_MATRIX[nrow, np.minimum(ihit, ORDER_MAX_HITS - 1)], 0.0)

    w = w_pt * w_order
    total = w.sum()
    return w / total if total > 0 else w


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
    _require(truth, ("hit_id", "particle_id", "weight"), "truth")
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
