"""Tracking efficiency, fake rate and duplicate rate with selectable truth matching.

Inputs: a *track assignment* (``hit_id, track_id``; hits absent from it or with
``track_id < 0`` are unassigned; a hit may sit on several tracks, as with ambiguity-free
but hit-sharing track finders), the event's ``truth`` (``hit_id, particle_id``, 0 = noise)
and ``particles``.

**Majority particle** of a track: the non-noise particle with the most hits on the track
(ties: the smallest particle id). ``purity = n_major / nhits_track`` (noise hits count in
``nhits_track``); ``particle_fraction = n_major / nhits_particle`` where
``nhits_particle`` is the particle's number of hits in ``truth``.

**Matching** (track to its majority particle):

- ``atlas``: ``purity > 0.5``.
- ``double_majority``: ``purity > 0.5`` and ``particle_fraction > 0.5`` (strict, as in
  the TrackML score; every particle then has at most one matched track).
- ``acts``: ``purity >= 0.5`` and ``particle_fraction >= 0.5``.

**Selections.** Particles enter the efficiency if they pass the
:class:`FiducialSelection`; tracks count at all (in every rate) only if they pass the
:class:`TrackSelection` (``nhits_track >= min_hits``).

**Definitions** (all over selected tracks):

- efficiency = fiducial particles matched by at least one selected track / fiducial
  particles;
- fake rate = selected tracks matched to no particle / selected tracks (a track matched to
  a non-fiducial particle is *not* a fake);
- duplicate rate = selected matched tracks beyond the first of their particle / selected
  matched tracks, i.e. ``(n_matched_tracks - n_particles_with_a_match) / n_matched_tracks``
  over all particles (fiducial or not). The first ("best") track of a particle is the one
  with the most hits of it, then the higher purity, then the smaller track id; the others
  are the duplicates.

**Binned.** Efficiency is binned in the particle's production pT and eta. Fake and
duplicate rates are binned in the *track's* pT and eta (fakes have no particle):
``track_params`` (``track_id, pt, eta``) if given, otherwise estimated from the track's
hits: pT from a circle fit in x-y (Kasa algebraic fit, ``pT = 0.3 B R``) and eta from a
straight-line fit of z versus r (``eta = asinh(dz/dr)``). Entries outside the bin edges
(and tracks whose estimate fails, e.g. collinear hits) are not in the binned numbers but
are in the totals. Intervals are binomial (:mod:`lhcml.metrics.stats`; Clopper-Pearson at
68.27 % by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from lhcml.data.weights import trackml_generation
from lhcml.errors import ConfigError, InputError
from lhcml.metrics.stats import ONE_SIGMA, BinnedRatio, Interval, Ratio, pool_ratios

Matching = Literal["atlas", "double_majority", "acts"]
MATCHINGS: tuple[str, ...] = ("atlas", "double_majority", "acts")

#: Default bin edges: pT in GeV (log-like), eta uniform.
PT_BINS: tuple[float, ...] = (
    0.1,
    0.2,
    0.3,
    0.5,
    0.7,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.0,
    10.0,
    20.0,
    50.0,
    100.0,
)
ETA_BINS: tuple[float, ...] = tuple(np.round(np.linspace(-4.0, 4.0, 17), 6).tolist())
#: Production-vertex z [mm]: the luminous region (sigma_z ~ 50 mm) in 25 mm bins. The
#: efficiency versus vertex z shows a finder that learned the beam-spot shape as a prior.
VZ_BINS: tuple[float, ...] = tuple(np.arange(-200.0, 201.0, 25.0).tolist())


@dataclass(frozen=True)
class FiducialSelection:
    """Which particles the efficiency is measured for (all cuts inclusive).

    Args:
        pt_min: minimum production transverse momentum (GeV).
        pt_max: maximum production transverse momentum (GeV).
        abs_eta_max: maximum ``|eta|`` of the production momentum.
        min_hits: minimum number of the particle's hits in ``truth``.
        primary_only: keep only primary particles (``primary`` column, else the TrackML
            id generation bits are zero).
        max_prod_r: maximum production radius ``hypot(vx, vy)`` (mm); ``None``: no cut.
        exclude_electrons: drop ``|particle_type| == 11`` (needs ``particle_type``;
            particles with type 0 = unknown are kept).
    """

    pt_min: float = 1.0
    pt_max: float = math.inf
    abs_eta_max: float = 4.0
    min_hits: int = 3
    primary_only: bool = True
    max_prod_r: float | None = None
    exclude_electrons: bool = False

    def select(self, particles: pd.DataFrame, nhits: np.ndarray) -> np.ndarray:
        """Boolean mask of the particles passing, given their hit counts."""
        kin = particle_table(particles)
        mask = (
            (kin["pt"].to_numpy() >= self.pt_min)
            & (kin["pt"].to_numpy() <= self.pt_max)
            & (np.abs(kin["eta"].to_numpy()) <= self.abs_eta_max)
            & (np.asarray(nhits) >= self.min_hits)
        )
        if self.primary_only:
            mask &= kin["primary"].to_numpy(bool)
        if self.max_prod_r is not None:
            mask &= kin["prod_r"].to_numpy() <= self.max_prod_r
        if self.exclude_electrons:
            mask &= np.abs(kin["particle_type"].to_numpy()) != 11
        return mask

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (infinite ``pt_max`` as ``None``)."""
        d = asdict(self)
        d["pt_max"] = None if math.isinf(self.pt_max) else self.pt_max
        return d


@dataclass(frozen=True)
class TrackSelection:
    """Which tracks count: ``min_hits`` or more hits (noise included)."""

    min_hits: int = 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return asdict(self)


def particle_table(particles: pd.DataFrame) -> pd.DataFrame:
    """``particle_id, pt, eta, vz, primary, prod_r, particle_type`` of each particle.

    ``primary`` comes from the ``primary`` column, else from the TrackML id bits;
    ``particle_type`` is 0 and ``vz`` NaN where absent.
    """
    missing = [c for c in ("particle_id", "px", "py", "pz") if c not in particles.columns]
    if missing:
        raise InputError(f"particles table lacks column(s) {missing}", column=missing[0])
    pid = particles["particle_id"].to_numpy(np.int64)
    px = particles["px"].to_numpy(np.float64)
    py = particles["py"].to_numpy(np.float64)
    pz = particles["pz"].to_numpy(np.float64)
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)  # +-inf along the beam, NaN at rest
    if "primary" in particles.columns:
        primary = particles["primary"].to_numpy(bool)
    else:
        primary = trackml_generation(pid) == 0
    if "prod_r" in particles.columns:
        prod_r = particles["prod_r"].to_numpy(np.float64)
    elif {"vx", "vy"} <= set(particles.columns):
        prod_r = np.hypot(
            particles["vx"].to_numpy(np.float64), particles["vy"].to_numpy(np.float64)
        )
    else:
        prod_r = np.zeros(len(pid))
    ptype = (
        particles["particle_type"].to_numpy(np.int64)
        if "particle_type" in particles.columns
        else np.zeros(len(pid), np.int64)
    )
    vz = (
        particles["vz"].to_numpy(np.float64)
        if "vz" in particles.columns
        else np.full(len(pid), np.nan)
    )
    return pd.DataFrame(
        {
            "particle_id": pid,
            "pt": pt,
            "eta": eta,
            "vz": vz,
            "primary": primary,
            "prod_r": prod_r,
            "particle_type": ptype,
        }
    )


def _assignment_arrays(
    assignment: pd.DataFrame, truth_hit_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(hit_row, track_id)`` of the assigned (track_id >= 0) hits, rows into truth."""
    from lhcml.metrics.trackml import _check_ids

    missing = [c for c in ("hit_id", "track_id") if c not in assignment.columns]
    if missing:
        raise InputError(
            f"track assignment lacks column(s) {missing}; found {list(assignment.columns)}",
            column=missing[0],
        )
    hid = _check_ids(assignment["hit_id"], "hit_id", None)
    tid = _check_ids(assignment["track_id"], "track_id", None)
    keep = tid >= 0
    hid, tid = hid[keep], tid[keep]
    row = pd.Index(truth_hit_ids).get_indexer(hid)
    if (row < 0).any():
        raise InputError(
            f"{int((row < 0).sum())} assigned hit id(s) not in the event "
            f"(e.g. {hid[row < 0][:3].tolist()})",
            column="hit_id",
        )
    pair = pd.DataFrame({"h": hid, "t": tid})
    if pair.duplicated().any():
        raise InputError("the same hit is listed twice on one track", column="hit_id")
    return row, tid


def match_tracks(
    assignment: pd.DataFrame, truth: pd.DataFrame, matching: Matching = "double_majority"
) -> pd.DataFrame:
    """Match every track to its majority particle.

    Args:
        assignment: ``hit_id, track_id`` (``track_id < 0``: unassigned).
        truth: ``hit_id, particle_id`` (0 = noise), one row per hit of the event.
        matching: ``atlas``, ``double_majority`` or ``acts`` (see the module docstring).

    Returns:
        One row per track (sorted by ``track_id``): ``track_id, nhits, particle_id``
        (majority particle, 0 if the track holds noise only), ``n_major,
        particle_nhits, purity, particle_fraction, matched``.
    """
    if matching not in MATCHINGS:
        raise ConfigError(f"unknown matching '{matching}'; choose from {list(MATCHINGS)}")
    t_hid = truth["hit_id"].to_numpy(np.int64)
    pid_all = truth["particle_id"].to_numpy(np.int64)
    row, tid = _assignment_arrays(assignment, t_hid)
    pid = pid_all[row]

    t_label, t_uniques = pd.factorize(tid, sort=True)
    n_tracks = len(t_uniques)
    nhits = np.bincount(t_label, minlength=n_tracks)
    p_label, p_uniques = pd.factorize(pid, sort=True)
    n_p = max(len(p_uniques), 1)
    real = pid != 0
    pair = t_label[real].astype(np.int64) * n_p + p_label[real]
    pairs, pair_n = np.unique(pair, return_counts=True)
    pair_t = pairs // n_p
    pair_p = pairs % n_p
    order = np.lexsort((pair_p, -pair_n, pair_t))  # most hits first, then smaller id
    first = order[np.r_[True, pair_t[order][1:] != pair_t[order][:-1]]] if len(order) else order

    major_pid = np.zeros(n_tracks, np.int64)
    n_major = np.zeros(n_tracks, np.int64)
    major_pid[pair_t[first]] = p_uniques[pair_p[first]]
    n_major[pair_t[first]] = pair_n[first]

    counts = pd.Series(pid_all[pid_all != 0]).value_counts()
    particle_nhits = counts.reindex(major_pid).fillna(0).to_numpy(np.int64)
    particle_nhits = np.where(major_pid == 0, 0, particle_nhits)

    has_major = n_major > 0
    if matching == "atlas":
        matched = 2 * n_major > nhits
    elif matching == "double_majority":
        matched = (2 * n_major > nhits) & (2 * n_major > particle_nhits)
    else:
        matched = (2 * n_major >= nhits) & (2 * n_major >= particle_nhits)
    matched &= has_major
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(particle_nhits > 0, n_major / np.maximum(particle_nhits, 1), 0.0)
    return pd.DataFrame(
        {
            "track_id": t_uniques,
            "nhits": nhits,
            "particle_id": major_pid,
            "n_major": n_major,
            "particle_nhits": particle_nhits,
            "purity": n_major / np.maximum(nhits, 1),
            "particle_fraction": fraction,
            "matched": matched,
        }
    )


def estimate_track_kinematics(
    assignment: pd.DataFrame, positions: pd.DataFrame, *, bfield: float = 2.0
) -> pd.DataFrame:
    """Rough pT and eta of each track from its hit positions (vectorised).

    pT: Kasa algebraic circle fit in x-y, ``pT [GeV] = 0.3 * B [T] * R [m]``. eta:
    least-squares line ``z = z0 + r * dz/dr``, ``eta = asinh(dz/dr)``. NaN where the
    fit is undefined (fewer than 3 hits for pT, fewer than 2 distinct radii for eta).

    Args:
        assignment: ``hit_id, track_id`` (``track_id < 0`` ignored).
        positions: ``hit_id, x, y, z`` (mm).
        bfield: solenoid field (T).

    Returns:
        ``track_id, pt, eta`` per track.
    """
    row, tid = _assignment_arrays(assignment, positions["hit_id"].to_numpy(np.int64))
    x = positions["x"].to_numpy(np.float64)[row]
    y = positions["y"].to_numpy(np.float64)[row]
    z = positions["z"].to_numpy(np.float64)[row]
    label, uniques = pd.factorize(tid, sort=True)
    m = len(uniques)

    def gsum(v: np.ndarray) -> np.ndarray:
        return np.bincount(label, weights=v, minlength=m)

    n = np.bincount(label, minlength=m).astype(np.float64)
    safe_n = np.maximum(n, 1.0)
    # Centre each track's hits for numerical stability: then sum(u) = sum(v) = 0.
    u = x - (gsum(x) / safe_n)[label]
    v = y - (gsum(y) / safe_n)[label]
    s = u * u + v * v
    suu, svv, suv = gsum(u * u), gsum(v * v), gsum(u * v)
    sus, svs, ss = gsum(u * s), gsum(v * s), gsum(s)
    det = suu * svv - suv * suv
    ok = (n >= 3) & (det > 1e-12 * np.maximum(suu * svv, 1e-300))
    safe_det = np.where(ok, det, 1.0)
    # Normal equations of u^2 + v^2 + D u + E v + F = 0 with centred coordinates.
    d = -(sus * svv - svs * suv) / safe_det
    e = -(svs * suu - sus * suv) / safe_det
    f = -ss / safe_n
    r2 = d * d / 4 + e * e / 4 - f
    radius = np.sqrt(np.where(ok & (r2 > 0), r2, np.nan))
    pt = 0.3 * bfield * radius / 1000.0

    r = np.hypot(x, y)
    rm = gsum(r) / safe_n
    zm = gsum(z) / safe_n
    dr = r - rm[label]
    srr = gsum(dr * dr)
    srz = gsum(dr * (z - zm[label]))
    ok_eta = (n >= 2) & (srr > 1e-9 * np.maximum(rm * rm, 1.0))
    slope = np.where(ok_eta, srz / np.where(ok_eta, srr, 1.0), np.nan)
    return pd.DataFrame({"track_id": uniques, "pt": pt, "eta": np.arcsinh(slope)})


@dataclass
class TrackingPerformance:
    """Efficiency, fake and duplicate rates (see the module docstring for definitions).

    ``efficiency``: k = matched fiducial particles, n = fiducial particles.
    ``fake_rate``: k = unmatched selected tracks, n = selected tracks.
    ``duplicate_rate``: k = duplicate tracks, n = matched selected tracks.
    Binned versions per variable (``pt``, ``eta``). Combine events with :meth:`combine`.
    """

    matching: str
    fiducial: FiducialSelection
    track_selection: TrackSelection
    efficiency: Ratio
    fake_rate: Ratio
    duplicate_rate: Ratio
    binned: dict[str, BinnedRatio] = field(default_factory=dict)
    n_events: int = 1
    interval: Interval = "clopper-pearson"
    cl: float = ONE_SIGMA

    @classmethod
    def combine(cls, results: Sequence[TrackingPerformance]) -> TrackingPerformance:
        """Sum the counts of several events (same settings and bins) and recompute rates."""
        if not results:
            raise ValueError("nothing to combine")
        first = results[0]
        for r in results[1:]:
            same = (r.matching, r.fiducial, r.track_selection, r.interval, r.cl) == (
                first.matching,
                first.fiducial,
                first.track_selection,
                first.interval,
                first.cl,
            )
            if not same or r.binned.keys() != first.binned.keys():
                raise ValueError("cannot combine results with different settings")
        ratios, binned = pool_ratios(
            results,
            ("efficiency", "fake_rate", "duplicate_rate"),
            cl=first.cl,
            method=first.interval,
        )
        return cls(
            matching=first.matching,
            fiducial=first.fiducial,
            track_selection=first.track_selection,
            **ratios,
            binned=binned,
            n_events=sum(r.n_events for r in results),
            interval=first.interval,
            cl=first.cl,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary with counts, rates, intervals and binned tables."""
        return {
            "n_events": self.n_events,
            "matching": self.matching,
            "interval": {"method": self.interval, "cl": self.cl},
            "fiducial": self.fiducial.to_dict(),
            "track_selection": self.track_selection.to_dict(),
            "efficiency": self.efficiency.to_dict(),
            "fake_rate": self.fake_rate.to_dict(),
            "duplicate_rate": self.duplicate_rate.to_dict(),
            "binned": {key: b.to_dict() for key, b in self.binned.items()},
        }


def tracking_performance(
    assignment: pd.DataFrame,
    truth: pd.DataFrame,
    particles: pd.DataFrame,
    *,
    hits: pd.DataFrame | None = None,
    matching: Matching = "double_majority",
    fiducial: FiducialSelection | None = None,
    track_selection: TrackSelection | None = None,
    track_params: pd.DataFrame | None = None,
    pt_bins: Sequence[float] = PT_BINS,
    eta_bins: Sequence[float] = ETA_BINS,
    vz_bins: Sequence[float] = VZ_BINS,
    interval: Interval = "clopper-pearson",
    cl: float = ONE_SIGMA,
    bfield: float = 2.0,
) -> TrackingPerformance:
    """Efficiency, fake rate and duplicate rate of one event, totals and binned.

    Args:
        assignment: ``hit_id, track_id`` (``track_id < 0`` or absent: unassigned).
        truth: ``hit_id, particle_id`` for every hit.
        particles: ``particle_id, px, py, pz`` (+ ``primary``, ``prod_r`` or ``vx, vy``,
            ``particle_type`` for the fiducial cuts that need them).
        hits: ``hit_id, x, y, z`` used to estimate track pT / eta for the binned fake and
            duplicate rates; default: truth ``tx, ty, tz`` if present.
        matching: ``atlas``, ``double_majority`` (default) or ``acts``.
        fiducial: particle selection for the efficiency (default :class:`FiducialSelection`).
        track_selection: which tracks count (default :class:`TrackSelection`).
        track_params: ``track_id, pt, eta`` of each track, instead of the estimate.
        pt_bins, eta_bins, vz_bins: bin edges (``vz``: the particle's production vertex
            z [mm]).
        interval, cl: binomial interval method and confidence level.
        bfield: field (T) for the pT estimate.

    Returns:
        A :class:`TrackingPerformance`; binned keys ``efficiency_vs_pt``,
        ``efficiency_vs_eta``, ``efficiency_vs_vz`` (empty without ``vz``),
        ``fake_rate_vs_pt``, ``fake_rate_vs_eta``,
        ``duplicate_rate_vs_pt``, ``duplicate_rate_vs_eta`` (the last four only when track
        kinematics are available).
    """
    fiducial = fiducial or FiducialSelection()
    track_selection = track_selection or TrackSelection()
    opts: dict[str, Any] = {"cl": cl, "method": interval}
    tracks = match_tracks(assignment, truth, matching)
    tracks = tracks[tracks["nhits"].to_numpy() >= track_selection.min_hits].reset_index(drop=True)
    matched = tracks["matched"].to_numpy(bool)

    # Duplicates: rank each particle's matched tracks, best first.
    m = tracks[matched].sort_values(
        ["particle_id", "n_major", "purity", "track_id"], ascending=[True, False, False, True]
    )
    duplicate_ids = m["track_id"].to_numpy()[m["particle_id"].duplicated().to_numpy()]
    duplicate = np.isin(tracks["track_id"].to_numpy(), duplicate_ids)

    # Efficiency over fiducial particles.
    kin = particle_table(particles)
    pid_truth = truth["particle_id"].to_numpy(np.int64)
    counts = pd.Series(pid_truth[pid_truth != 0]).value_counts()
    p_nhits = counts.reindex(kin["particle_id"].to_numpy()).fillna(0).to_numpy(np.int64)
    fid = fiducial.select(particles, p_nhits)
    found = np.isin(kin["particle_id"].to_numpy(), tracks["particle_id"].to_numpy()[matched])

    n_sel = len(tracks)
    n_matched = int(matched.sum())
    binned: dict[str, BinnedRatio] = {}
    for var, edges in (("pt", pt_bins), ("eta", eta_bins), ("vz", vz_bins)):
        binned[f"efficiency_vs_{var}"] = BinnedRatio.from_values(
            var, kin[var].to_numpy()[fid], found[fid], np.asarray(edges), **opts
        )

    if track_params is None:
        pos = hits
        if pos is None and {"tx", "ty", "tz"} <= set(truth.columns):
            pos = truth[["hit_id", "tx", "ty", "tz"]].rename(
                columns={"tx": "x", "ty": "y", "tz": "z"}
            )
        if pos is not None:
            track_params = estimate_track_kinematics(assignment, pos, bfield=bfield)
    if track_params is not None:
        tp = track_params.set_index("track_id").reindex(tracks["track_id"].to_numpy())
        for var, edges in (("pt", pt_bins), ("eta", eta_bins)):
            x = tp[var].to_numpy(np.float64)
            binned[f"fake_rate_vs_{var}"] = BinnedRatio.from_values(
                var, x, ~matched, np.asarray(edges), **opts
            )
            binned[f"duplicate_rate_vs_{var}"] = BinnedRatio.from_values(
                var, x[matched], duplicate[matched], np.asarray(edges), **opts
            )

    return TrackingPerformance(
        matching=matching,
        fiducial=fiducial,
        track_selection=track_selection,
        efficiency=Ratio.from_counts(int((fid & found).sum()), int(fid.sum()), **opts),
        fake_rate=Ratio.from_counts(n_sel - n_matched, n_sel, **opts),
        duplicate_rate=Ratio.from_counts(int(duplicate.sum()), n_matched, **opts),
        binned=binned,
        interval=interval,
        cl=cl,
    )
