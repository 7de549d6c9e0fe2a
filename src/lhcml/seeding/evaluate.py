"""Seeding performance: efficiency, fake and duplicate rates, seeds per event, parameter
resolutions.

A **seed** is three hits (its space points). It is **matched** to a particle when all
three hits belong to that particle (truth ``particle_id``, noise 0 never matches); else
it is a **fake**. Definitions, over all seeds of the events:

- efficiency = fiducial particles with at least one matched seed / fiducial particles
  (:data:`SEEDING_FIDUCIAL` by default: primaries, pT >= 0.5 GeV, ``|eta| <= 2.5``, at
  least 9 hits in the whole detector - ACTS's physmon selection);
- fake rate = unmatched seeds / seeds;
- duplicate rate = matched seeds beyond the first of their particle / matched seeds,
  i.e. ``(n_matched - n_particles_with_a_seed) / n_matched`` over all particles;
- seeds per event = seeds / events.

Efficiency is binned in the particle's production pT and eta; fake and duplicate rates in
the seed's estimated pT and eta (:mod:`lhcml.seeding.estimate`; from the seed table's
``pt, eta`` columns when present, else estimated from the hits' positions). Intervals are
binomial (:mod:`lhcml.metrics.stats`).

**Resolutions** of the seed parameter estimates (matched seeds against the particle's
true perigee, :func:`lhcml.seeding.estimate.particle_perigee`): ``pt`` as ``(pT_est -
pT_true) / pT_true``, ``phi`` (wrapped), ``theta``, ``d0``, ``z0`` residuals, summarised
by sigma68 overall and binned in true pT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lhcml.errors import InputError
from lhcml.metrics.resolution import BinnedResolution, Estimate, binned_resolution, sigma68
from lhcml.metrics.stats import ONE_SIGMA, BinnedRatio, Interval, Ratio, pool_ratios
from lhcml.metrics.tracking import ETA_BINS, PT_BINS, FiducialSelection, particle_table

if TYPE_CHECKING:
    from lhcml.data.event import Event

#: ACTS physmon's seeding selection (primaries here: the truth-particle efficiency).
SEEDING_FIDUCIAL = FiducialSelection(pt_min=0.5, abs_eta_max=2.5, min_hits=9, primary_only=True)

#: Residuals reported by :func:`seed_residuals`.
RESIDUALS: tuple[str, ...] = ("pt", "phi", "theta", "d0", "z0")
RESOLUTION_PT_BINS: tuple[float, ...] = (0.5, 0.7, 1.0, 2.0, 5.0, 10.0, 100.0)


def seed_particles(seed_hits: np.ndarray, truth: pd.DataFrame) -> np.ndarray:
    """The particle each seed is matched to (all three hits its own), 0 for fakes.

    Args:
        seed_hits: ``(n, 3)`` hit ids.
        truth: ``hit_id, particle_id`` of every hit.

    Raises:
        InputError: a seed hit id is not in ``truth``.
    """
    seed_hits = np.asarray(seed_hits, np.int64).reshape(-1, 3)
    hid = truth["hit_id"].to_numpy(np.int64)
    pid = truth["particle_id"].to_numpy(np.int64)
    order = np.argsort(hid, kind="stable")
    hs = hid[order]
    pos = np.searchsorted(hs, seed_hits)
    pos_c = np.minimum(pos, max(len(hs) - 1, 0))
    known = (pos < len(hs)) & (hs[pos_c] == seed_hits) if len(hs) else np.zeros_like(pos, bool)
    if not known.all():
        bad = seed_hits[~known][:3].tolist()
        raise InputError(f"seed hit id(s) not in the event's truth, e.g. {bad}", column="hit_id")
    p = pid[order][pos_c]
    same = (p[:, 0] == p[:, 1]) & (p[:, 1] == p[:, 2]) & (p[:, 0] != 0)
    return np.where(same, p[:, 0], 0)


@dataclass
class SeedingPerformance:
    """Seeding efficiency, fake and duplicate rates (module docstring for definitions).

    ``efficiency``: k = fiducial particles with a matched seed, n = fiducial particles.
    ``fake_rate``: k = unmatched seeds, n = seeds. ``duplicate_rate``: k = duplicate
    seeds, n = matched seeds. ``binned``: ``efficiency_vs_pt``, ``efficiency_vs_eta``,
    ``fake_rate_vs_pt``, ... . Combine events with :meth:`combine`.
    """

    fiducial: FiducialSelection
    efficiency: Ratio
    fake_rate: Ratio
    duplicate_rate: Ratio
    n_seeds: int
    binned: dict[str, BinnedRatio] = field(default_factory=dict)
    n_events: int = 1
    interval: Interval = "clopper-pearson"
    cl: float = ONE_SIGMA

    @property
    def seeds_per_event(self) -> float:
        """Mean number of seeds per event."""
        return self.n_seeds / self.n_events if self.n_events else float("nan")

    @classmethod
    def combine(cls, results: Sequence[SeedingPerformance]) -> SeedingPerformance:
        """Sum the counts of several events (same settings and bins)."""
        if not results:
            raise ValueError("nothing to combine")
        first = results[0]
        for r in results[1:]:
            if (r.fiducial, r.interval, r.cl) != (first.fiducial, first.interval, first.cl) or (
                r.binned.keys() != first.binned.keys()
            ):
                raise ValueError("cannot combine results with different settings")
        ratios, binned = pool_ratios(
            results,
            ("efficiency", "fake_rate", "duplicate_rate"),
            cl=first.cl,
            method=first.interval,
        )
        return cls(
            fiducial=first.fiducial,
            **ratios,
            n_seeds=sum(r.n_seeds for r in results),
            binned=binned,
            n_events=sum(r.n_events for r in results),
            interval=first.interval,
            cl=first.cl,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "n_events": self.n_events,
            "n_seeds": self.n_seeds,
            "seeds_per_event": self.seeds_per_event,
            "interval": {"method": self.interval, "cl": self.cl},
            "fiducial": self.fiducial.to_dict(),
            "efficiency": self.efficiency.to_dict(),
            "fake_rate": self.fake_rate.to_dict(),
            "duplicate_rate": self.duplicate_rate.to_dict(),
            "binned": {key: b.to_dict() for key, b in self.binned.items()},
        }


def _nhits(truth: pd.DataFrame, particle_ids: np.ndarray) -> np.ndarray:
    pid = truth["particle_id"].to_numpy(np.int64)
    counts = pd.Series(pid[pid != 0]).value_counts()
    return counts.reindex(particle_ids).fillna(0).to_numpy(np.int64)


def seed_kinematics(
    seed_hits: np.ndarray, positions: pd.DataFrame, *, bfield: float = 2.0
) -> pd.DataFrame:
    """Estimated parameters of seeds from their hits' positions (``hit_id, x, y, z``)."""
    from lhcml.seeding.estimate import estimate_parameters

    hid = positions["hit_id"].to_numpy(np.int64)
    order = np.argsort(hid, kind="stable")
    rows = order[np.searchsorted(hid[order], np.asarray(seed_hits, np.int64).reshape(-1, 3))]
    cols = [positions[c].to_numpy(np.float64)[rows] for c in ("x", "y", "z")]
    return estimate_parameters(*cols, bfield=bfield)


def seeding_performance(
    seed_hits: np.ndarray,
    truth: pd.DataFrame,
    particles: pd.DataFrame,
    *,
    seed_params: pd.DataFrame | None = None,
    hits: pd.DataFrame | None = None,
    fiducial: FiducialSelection | None = None,
    pt_bins: Sequence[float] = PT_BINS,
    eta_bins: Sequence[float] = ETA_BINS,
    interval: Interval = "clopper-pearson",
    cl: float = ONE_SIGMA,
    bfield: float = 2.0,
) -> SeedingPerformance:
    """Seeding efficiency, fake and duplicate rates of one event.

    Args:
        seed_hits: ``(n, 3)`` hit ids of the seeds.
        truth: ``hit_id, particle_id`` of every hit.
        particles: ``particle_id, px, py, pz`` (+ what the fiducial cuts need).
        seed_params: ``pt, eta`` per seed (same order) for the binned fake / duplicate
            rates; default: estimated from ``hits`` positions (none: rates not binned).
        hits: ``hit_id, x, y, z`` to estimate seed kinematics from.
        fiducial: particles of the efficiency (default :data:`SEEDING_FIDUCIAL`).
        pt_bins, eta_bins: bin edges.
        interval, cl: binomial interval.
        bfield: field (T) for the estimates.

    Returns:
        A :class:`SeedingPerformance`.
    """
    fiducial = fiducial or SEEDING_FIDUCIAL
    opts: dict[str, Any] = {"cl": cl, "method": interval}
    seed_hits = np.asarray(seed_hits, np.int64).reshape(-1, 3)
    matched_pid = seed_particles(seed_hits, truth)
    matched = matched_pid != 0
    # Duplicates: every matched seed after the first of its particle (seed order).
    _, first = np.unique(matched_pid[matched], return_index=True)
    duplicate = np.zeros(len(seed_hits), bool)
    dup_m = np.ones(int(matched.sum()), bool)
    dup_m[first] = False
    duplicate[np.flatnonzero(matched)] = dup_m

    kin = particle_table(particles)
    fid = fiducial.select(particles, _nhits(truth, kin["particle_id"].to_numpy()))
    found = np.isin(kin["particle_id"].to_numpy(), matched_pid[matched])
    binned: dict[str, BinnedRatio] = {}
    for var, edges in (("pt", pt_bins), ("eta", eta_bins)):
        binned[f"efficiency_vs_{var}"] = BinnedRatio.from_values(
            var, kin[var].to_numpy()[fid], found[fid], np.asarray(edges), **opts
        )
    if seed_params is None and hits is not None:
        seed_params = seed_kinematics(seed_hits, hits, bfield=bfield)
    if seed_params is not None:
        for var, edges in (("pt", pt_bins), ("eta", eta_bins)):
            x = seed_params[var].to_numpy(np.float64)
            binned[f"fake_rate_vs_{var}"] = BinnedRatio.from_values(
                var, x, ~matched, np.asarray(edges), **opts
            )
            binned[f"duplicate_rate_vs_{var}"] = BinnedRatio.from_values(
                var, x[matched], duplicate[matched], np.asarray(edges), **opts
            )
    n = len(seed_hits)
    n_matched = int(matched.sum())
    return SeedingPerformance(
        fiducial=fiducial,
        efficiency=Ratio.from_counts(int((fid & found).sum()), int(fid.sum()), **opts),
        fake_rate=Ratio.from_counts(n - n_matched, n, **opts),
        duplicate_rate=Ratio.from_counts(int(duplicate.sum()), n_matched, **opts),
        n_seeds=n,
        binned=binned,
        interval=interval,
        cl=cl,
    )


def seed_residuals(
    seed_params: pd.DataFrame,
    matched_pid: np.ndarray,
    particles: pd.DataFrame,
    *,
    bfield: float = 2.0,
) -> pd.DataFrame:
    """Residuals of the matched seeds' parameters against their particles' true perigee.

    Returns:
        One row per matched seed: ``particle_id``, ``pt_true``, ``eta_true`` and the
        residuals ``pt`` (relative), ``phi`` (wrapped to [-pi, pi)), ``theta``, ``d0``,
        ``z0``, and ``charge_ok`` (estimated charge equals the true one).
    """
    from lhcml.seeding.estimate import particle_perigee

    matched_pid = np.asarray(matched_pid, np.int64)
    sel = matched_pid != 0
    truth = particle_perigee(particles, bfield=bfield).set_index("particle_id")
    t = truth.reindex(matched_pid[sel])
    est = seed_params[sel].reset_index(drop=True)
    tp = t.reset_index()
    dphi = (est["phi"].to_numpy() - tp["phi"].to_numpy() + np.pi) % (2 * np.pi) - np.pi
    return pd.DataFrame(
        {
            "particle_id": tp["particle_id"].to_numpy(np.int64),
            "pt_true": tp["pt"].to_numpy(),
            "eta_true": tp["eta"].to_numpy(),
            "pt": est["pt"].to_numpy() / tp["pt"].to_numpy() - 1.0,
            "phi": dphi,
            "theta": est["theta"].to_numpy() - tp["theta"].to_numpy(),
            "d0": est["d0"].to_numpy() - tp["d0"].to_numpy(),
            "z0": est["z0"].to_numpy() - tp["z0"].to_numpy(),
            "charge_ok": est["charge"].to_numpy() == tp["charge"].to_numpy(),
        }
    )


@dataclass
class SeedResolution:
    """sigma68 of each residual, overall and binned in true pT; charge agreement."""

    overall: dict[str, Estimate]
    vs_pt: dict[str, BinnedResolution]
    charge_ok: Ratio
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        import math

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "n": self.n,
            "charge_ok": self.charge_ok.to_dict(),
            "sigma68": {
                k: {"mean": num(e.mean), "width": num(e.width), "width_err": num(e.width_err)}
                for k, e in self.overall.items()
            },
            "sigma68_vs_pt": {k: b.to_dict() for k, b in self.vs_pt.items()},
        }


def seed_resolution(
    residuals: pd.DataFrame, pt_bins: Sequence[float] = RESOLUTION_PT_BINS
) -> SeedResolution:
    """Summarise :func:`seed_residuals` (several events concatenated) with sigma68."""
    overall = {k: sigma68(residuals[k].to_numpy()) for k in RESIDUALS}
    vs_pt = {
        k: binned_resolution(
            residuals[k].to_numpy(), residuals["pt_true"].to_numpy(), pt_bins, "sigma68"
        )
        for k in RESIDUALS
    }
    ok = residuals["charge_ok"].to_numpy(bool)
    return SeedResolution(overall, vs_pt, Ratio.from_counts(int(ok.sum()), len(ok)), len(residuals))


@dataclass
class SeedEvaluation:
    """Pooled seeding performance, parameter resolution and the files written."""

    performance: SeedingPerformance
    resolution: SeedResolution | None
    event_ids: list[int]
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``summary.json`` content."""
        out = {"kind": "seeds", "event_ids": self.event_ids, **self.performance.to_dict()}
        out["resolution"] = None if self.resolution is None else self.resolution.to_dict()
        out["plots"] = [p.name for p in self.files if p.suffix == ".png"]
        return out


def plot_seeding_performance(
    perf: SeedingPerformance, out_dir: str | Path, *, title: str | None = None
) -> list[Path]:
    """Write ``seed_efficiency_vs_{pt,eta}.png`` and ``seed_fake_duplicate_vs_{pt,eta}.png``."""
    from lhcml.metrics.plots import plot_binned_rates

    return plot_binned_rates(
        perf.binned,
        out_dir,
        title=title or f"seeds, {perf.n_events} event(s)",
        prefix="seed_",
        efficiency_label="seeding efficiency",
        efficiency_ylabel="Seeding efficiency",
    )


def evaluate_event_seeds(
    event: Event,
    seeds: pd.DataFrame,
    *,
    fiducial: FiducialSelection | None = None,
    interval: Interval = "clopper-pearson",
    bfield: float = 2.0,
) -> tuple[SeedingPerformance, pd.DataFrame]:
    """Performance and parameter residuals of one event's seed table (a seed file).

    Raises:
        InputError: the event has no truth / particles, or seeds name unknown hits.
    """
    from lhcml.seeding.io import HIT_COLUMNS

    if event.truth is None or event.particles is None:
        raise InputError(f"event {event.event_id} has no truth / particles to evaluate with")
    hits = seeds[list(HIT_COLUMNS)].to_numpy(np.int64)
    params = (
        seeds[["pt", "eta", "phi", "theta", "d0", "z0", "charge"]]
        if {"pt", "eta", "phi", "theta", "d0", "z0", "charge"} <= set(seeds.columns)
        else seed_kinematics(hits, event.hits, bfield=bfield)
    )
    perf = seeding_performance(
        hits,
        event.truth,
        event.particles,
        seed_params=params,
        fiducial=fiducial,
        interval=interval,
        bfield=bfield,
    )
    pid = seed_particles(hits, event.truth)
    needed = {"vx", "vy", "vz", "px", "py", "pz", "q"}
    residuals = (
        seed_residuals(params, pid, event.particles, bfield=bfield)
        if needed <= set(event.particles.columns)
        else pd.DataFrame()
    )
    return perf, residuals


def evaluate_seed_files(
    events: str | Path,
    sources: Sequence[str | Path],
    *,
    out_dir: str | Path | None = None,
    event_ids: Sequence[int] | None = None,
    fiducial: FiducialSelection | None = None,
    interval: Interval = "clopper-pearson",
    skip_missing: bool = False,
    plots: bool = True,
) -> SeedEvaluation:
    """Seeding performance of seed files (``event<N>-seeds.parquet``) on events.

    Args:
        events: a directory of events or one event prefix.
        sources: seed files or directories holding them.
        out_dir: where ``summary.json`` and the PNG plots go (``None``: nothing written).
        event_ids: only these events.
        fiducial: particles of the efficiency (default :data:`SEEDING_FIDUCIAL`).
        interval: binomial interval method.
        skip_missing: evaluate only the events with a seed file instead of failing.
        plots: write PNG plots (with ``out_dir``).

    Raises:
        InputError: missing events or seed files, bad files, events without truth.
    """
    from lhcml.metrics.evaluate import _iter_events
    from lhcml.seeding.io import find_seed_files, read_seeds

    ids, stream = _iter_events(events, event_ids)
    files = find_seed_files([Path(s) for s in sources], ids)
    missing = [eid for eid in ids if eid not in files]
    if missing and not skip_missing:
        raise InputError(
            f"no seed file for {len(missing)} event(s) (e.g. {missing[:5]}); "
            "pass them, or skip those events"
        )
    if len(missing) == len(ids):
        raise InputError("no event has a seed file")
    per_event: list[SeedingPerformance] = []
    residuals: list[pd.DataFrame] = []
    done: list[int] = []
    for event in stream:
        if event.event_id not in files:
            continue
        perf, res = evaluate_event_seeds(
            event, read_seeds(files[event.event_id]), fiducial=fiducial, interval=interval
        )
        per_event.append(perf)
        residuals.append(res)
        done.append(event.event_id)
    pooled = SeedingPerformance.combine(per_event)
    res_all = pd.concat(residuals, ignore_index=True) if residuals else pd.DataFrame()
    resolution = seed_resolution(res_all) if len(res_all) else None
    result = SeedEvaluation(pooled, resolution, done)
    if out_dir is not None:
        from lhcml.io.atomic import write_json_atomic

        out = Path(out_dir)
        if plots:
            result.files.extend(plot_seeding_performance(pooled, out))
        result.files.append(write_json_atomic(out / "summary.json", result.to_dict()))
    return result
