"""The TrackML challenge's per-hit weights (the truth table's ``weight`` column), as the
challenge defined them.

Reference: the challenge's own library, ``trackml-library`` (``trackml/weights.py``,
github.com/LAL/trackml-library, authors S. Amrouche, D. Rousseau, M. Kiehn, I. Vukotic).
This module re-implements it vectorised (numpy) and gives the same numbers. It sits in
``lhcml.data`` because the readers (:mod:`lhcml.io`) and the simulation fill the column;
the score that uses it is :mod:`lhcml.metrics.trackml`.

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
"""

from __future__ import annotations

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


def require_columns(df: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
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
    require_columns(truth, ("particle_id", "tz"), "truth")
    require_columns(particles, ("particle_id", "vz", "px", "py"), "particles")
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
