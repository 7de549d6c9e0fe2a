"""Reduced events, made the way the hepqpr-qallse dataset maker makes them.

The real TrackML events people test on are often not whole events: the hepqpr-qallse
maker (``hepqpr/qallse/dsmaker/dsmaker.py``) keeps the barrel volumes 8, 13, 17, drops
"double hits" (a particle's second hit on one layer, from overlapping modules), samples a
fraction ``density`` of the particles with all their remaining hits and the same
fraction of the noise hits, and renormalises the score weights. :func:`make_subset` does
the same on any event (simulated or real), with the noise share as its own knob, so that
a model's efficiency can be measured against each reduction alone.

Order of the steps, as in the reference: volumes, then double hits (noise is set aside
first, so it is never a "double"), then particles, then noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lhcml.data.event import Event
from lhcml.errors import ConfigError, InputError

#: Barrel volumes of the TrackML layout (pixel, short strips, long strips).
BARREL_VOLUMES: tuple[int, ...] = (8, 13, 17)


@dataclass(frozen=True)
class SubsetConfig:
    """What :func:`make_subset` keeps.

    Args:
        volumes: volumes kept (``None``: all).
        density: fraction of the particles kept, with all their hits (0 < density <= 1).
        double_hits: keep a particle's second and later hits on one layer; ``False``
            keeps only the first in hit order (the reference's ``double_hits_ok=False``).
        noise_fraction: share of noise hits among the subset's hits; ``None`` samples
            the noise at ``density`` like the particles (the reference's way).
        high_pt_cut: hits of particles with true pT below this [GeV] weigh 0 in the score
            (0: keep the weights).
        min_hits: hits of particles left with fewer hits weigh 0 (0: keep).
        seed: random seed of the particle and noise sampling.
    """

    volumes: tuple[int, ...] | None = None
    density: float = 1.0
    double_hits: bool = True
    noise_fraction: float | None = None
    high_pt_cut: float = 0.0
    min_hits: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.density <= 1.0:
            raise ConfigError(f"--density: must be in (0, 1], got {self.density}")
        if self.noise_fraction is not None and not 0.0 <= self.noise_fraction < 1.0:
            raise ConfigError(f"--noise-fraction: must be in [0, 1), got {self.noise_fraction}")
        if self.high_pt_cut < 0 or self.min_hits < 0:
            raise ConfigError("--high-pt-cut and --min-hits must be >= 0")
        if self.volumes is not None and len(self.volumes) == 0:
            raise ConfigError("--volumes: give at least one volume id")

    def describe(self) -> dict[str, object]:
        """The settings as plain JSON values (for the subset's meta file)."""
        return {
            "volumes": None if self.volumes is None else list(self.volumes),
            "density": self.density,
            "double_hits": self.double_hits,
            "noise_fraction": self.noise_fraction,
            "high_pt_cut": self.high_pt_cut,
            "min_hits": self.min_hits,
            "seed": self.seed,
        }


def make_subset(event: Event, config: SubsetConfig) -> Event:
    """A reduced copy of ``event`` (hit ids, particle ids and columns unchanged).

    Returns:
        The event with the kept hits and their cells / space points, the particles that
        kept at least one hit (``nhits`` recounted), truth weights renormalised to sum to
        1, and ``meta["subset"]`` recording the settings and counts.

    Raises:
        InputError: the event has no truth, no hit in ``volumes``, no particle left, or
            fewer noise hits than ``noise_fraction`` needs.
    """
    if not event.has_truth:
        raise InputError(
            f"event {event.event_id}: a subset samples particles, so it needs truth "
            "(particles and truth tables)"
        )
    assert event.truth is not None and event.particles is not None
    rng = np.random.default_rng(config.seed)
    hits = event.hits
    truth = event.truth.set_index("hit_id").loc[hits["hit_id"].to_numpy()].reset_index()
    keep = np.ones(len(hits), bool)
    if config.volumes is not None:
        keep &= np.isin(hits["volume_id"].to_numpy(), config.volumes)
        if not keep.any():
            present = sorted(np.unique(hits["volume_id"]).tolist())
            raise InputError(
                f"event {event.event_id}: no hit in volumes {list(config.volumes)} "
                f"(the event has volumes {present})",
                column="volume_id",
            )
    pid = truth["particle_id"].to_numpy()
    noise = keep & (pid == 0)
    signal = keep & (pid != 0)
    n_doubles = 0
    if not config.double_hits:
        keys = pd.DataFrame(
            {
                "p": pid[signal],
                "v": hits["volume_id"].to_numpy()[signal],
                "l": hits["layer_id"].to_numpy()[signal],
            }
        )
        dup = keys.duplicated(keep="first").to_numpy()
        rows = np.flatnonzero(signal)[dup]
        signal[rows] = False
        n_doubles = len(rows)
    particles = np.unique(pid[signal])
    n_keep = int(len(particles) * config.density)
    if n_keep == 0:
        raise InputError(
            f"event {event.event_id}: density {config.density} of {len(particles)} "
            "particles leaves no particle"
        )
    chosen = np.sort(rng.choice(particles, n_keep, replace=False))
    signal &= np.isin(pid, chosen)
    noise_rows = np.flatnonzero(noise)
    if config.noise_fraction is None:
        n_noise = int(len(noise_rows) * config.density)
    else:
        f = config.noise_fraction
        n_noise = round(f / (1.0 - f) * float(signal.sum()))
        if n_noise > len(noise_rows):
            raise InputError(
                f"event {event.event_id}: noise fraction {f} needs {n_noise} noise hits, "
                f"the event has {len(noise_rows)} in the kept volumes (simulate with "
                "`lhcml simulate --noise` to get more)"
            )
    picked = np.sort(rng.choice(noise_rows, n_noise, replace=False))
    rows = np.sort(np.r_[np.flatnonzero(signal), picked])
    return _assemble(event, truth, rows, chosen, config, n_doubles)


def _assemble(
    event: Event,
    truth: pd.DataFrame,
    rows: np.ndarray,
    chosen: np.ndarray,
    config: SubsetConfig,
    n_doubles: int,
) -> Event:
    assert event.particles is not None
    hits = event.hits.iloc[rows].reset_index(drop=True)
    new_truth = truth.iloc[rows].reset_index(drop=True)
    ids = hits["hit_id"].to_numpy()
    pid = new_truth["particle_id"].to_numpy()
    particles = event.particles[event.particles["particle_id"].isin(chosen)].copy()
    counts = pd.Series(pid[pid != 0]).value_counts()
    particles["nhits"] = (
        counts.reindex(particles["particle_id"].to_numpy()).fillna(0).to_numpy(np.int32)
    )
    particles = particles.reset_index(drop=True)
    weight = new_truth["weight"].to_numpy(np.float64).copy()
    if config.high_pt_cut > 0:
        pt = np.hypot(new_truth["tpx"].to_numpy(), new_truth["tpy"].to_numpy())
        weight[pt < config.high_pt_cut] = 0.0
    if config.min_hits > 0:
        short = particles["particle_id"].to_numpy()[particles["nhits"] < config.min_hits]
        weight[np.isin(pid, short)] = 0.0
    total = weight.sum()
    new_truth["weight"] = (weight / total if total > 0 else weight).astype(np.float32)

    def per_hit(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        return df[df["hit_id"].isin(ids)].reset_index(drop=True)

    n_noise = int((pid == 0).sum())
    meta = dict(event.meta)
    meta["subset"] = {
        **config.describe(),
        "source_hits": len(event.hits),
        "hits": len(hits),
        "particles": len(particles),
        "noise_hits": n_noise,
        "noise_share": n_noise / max(len(hits), 1),
        "double_hits_removed": n_doubles,
    }
    return Event(
        event_id=event.event_id,
        hits=hits,
        particles=particles,
        truth=new_truth,
        cells=per_hit(event.cells),
        spacepoints=per_hit(event.spacepoints),
        meta=meta,
    )


def parse_volumes(text: str | None) -> tuple[int, ...] | None:
    """``"8,13,17"`` -> ``(8, 13, 17)``; ``"barrel"`` -> :data:`BARREL_VOLUMES`."""
    if text is None or text.strip() in ("", "all"):
        return None
    if text.strip() == "barrel":
        return BARREL_VOLUMES
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--volumes: expected comma-separated volume ids (e.g. 8,13,17), 'barrel' or "
            f"'all', got '{text}'"
        ) from None
