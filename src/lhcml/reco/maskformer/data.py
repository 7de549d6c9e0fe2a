"""Events -> the MaskFormer finder's inputs: hit features sorted in phi, azimuth wedges,
and the training targets (hit labels for the filter, hit masks for the tracker).

An event of ~140k hits (mu = 200) is too large for one MaskFormer pass on a CPU, so the
tracker works on azimuth wedges: ``n_wedges`` cores of ``2 pi / n_wedges`` each, widened by
``margin`` on both sides. A pT > 1 GeV track from the beam line turns by at most
``asin(r / 2R) = 0.31 rad`` up to r = 1.03 m (R = pT / 0.3 B = 1.67 m at 2 T), so a track
whose innermost hit lies in a core has all its hits in that core's wedge when the margin is
at least that; the finder keeps a predicted track only in the wedge whose core holds its
innermost hit, so each track is found once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lhcml.data.event import Event
from lhcml.errors import InputError
from lhcml.gnn.features import target_particles
from lhcml.metrics.tracking import FiducialSelection

#: Track-finding target of the filter and the tracker: the GNN chain's (pT > 1 GeV,
#: |eta| < 4, >= 3 hits, primary, no electrons).
TARGET = FiducialSelection(
    pt_min=1.0, abs_eta_max=4.0, min_hits=3, primary_only=True, exclude_electrons=True
)

#: Fourier frequencies of phi (``sin(2^k phi), cos(2^k phi)``, k < N_FREQ): dot products of
#: these encode phi differences down to ~1 mrad, where neighbouring hits of a track lie.
N_FREQ = 10


def n_features() -> int:
    """Width of :func:`hit_features`."""
    return 3 + 2 * N_FREQ


def wrap(phi: np.ndarray) -> np.ndarray:
    """Angles to [-pi, pi)."""
    return (phi + np.pi) % (2 * np.pi) - np.pi


def hit_features(r: np.ndarray, phi: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``(N, n_features())`` float32: r / 1 m, z / 3 m, eta / 3, Fourier terms of phi.

    ``phi`` is relative to whatever reference the caller chose (the wedge centre, or a
    random rotation in training): no absolute azimuth enters, so the networks are
    rotation-invariant up to what they learn from the training rotations.
    """
    eta = np.arcsinh(z / np.maximum(r, 1e-3))
    k = 2.0 ** np.arange(N_FREQ)
    ang = phi[:, None] * k[None]
    cols = [r[:, None] / 1000.0, z[:, None] / 3000.0, np.clip(eta, -5, 5)[:, None] / 3.0]
    return np.concatenate([*cols, np.sin(ang), np.cos(ang)], axis=1).astype(np.float32)


@dataclass
class PreparedEvent:
    """An event's hits sorted in phi, with truth where the event has it.

    Args:
        event_id: the event's number.
        hit_id: ``(N,)`` hit ids, phi order.
        r, phi, z: ``(N,)`` cylindrical coordinates [mm, rad].
        particle_id: ``(N,)`` truth particle (0: noise), or ``None`` without truth.
        target: ``(N,)`` whether the hit belongs to a :data:`TARGET` particle.
    """

    event_id: int
    hit_id: np.ndarray
    r: np.ndarray
    phi: np.ndarray
    z: np.ndarray
    particle_id: np.ndarray | None = None
    target: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.hit_id)

    def subset(self, keep: np.ndarray) -> PreparedEvent:
        """The hits ``keep`` (bool or indices), phi order kept."""
        return PreparedEvent(
            self.event_id,
            self.hit_id[keep],
            self.r[keep],
            self.phi[keep],
            self.z[keep],
            None if self.particle_id is None else self.particle_id[keep],
            None if self.target is None else self.target[keep],
        )


def prepare_event(event: Event, selection: FiducialSelection = TARGET) -> PreparedEvent:
    """Sort an event's hits in phi and attach the truth labels (if the event has truth).

    Raises:
        InputError: a hit with a non-finite position.
    """
    hits = event.hits
    x = hits["x"].to_numpy(np.float64)
    y = hits["y"].to_numpy(np.float64)
    z = hits["z"].to_numpy(np.float64)
    bad = ~(np.isfinite(x) & np.isfinite(y) & np.isfinite(z))
    if bad.any():
        raise InputError(
            f"event {event.event_id}: {int(bad.sum())} hits with non-finite x / y / z "
            f"(first hit_id {int(hits['hit_id'].to_numpy()[bad][0])})",
            column="x, y, z",
        )
    phi = np.arctan2(y, x)
    order = np.argsort(phi, kind="stable")
    prepared = PreparedEvent(
        event.event_id,
        hits["hit_id"].to_numpy(np.int64)[order],
        np.hypot(x, y)[order],
        phi[order],
        z[order],
    )
    if event.has_truth:
        assert event.truth is not None
        truth = event.truth.set_index("hit_id")["particle_id"]
        pid = truth.reindex(prepared.hit_id).fillna(0).to_numpy(np.int64)
        targets = target_particles(event, selection)
        prepared.particle_id = pid
        prepared.target = np.isin(pid, targets) & (pid != 0)
    return prepared


@dataclass(frozen=True)
class Wedge:
    """One azimuth wedge of an event.

    Args:
        centre: azimuth of the core's centre [rad].
        index: ``(M,)`` indices into the prepared event's hits, in relative-phi order.
        core: ``(M,)`` whether each of those hits lies in the core.
        rel_phi: ``(M,)`` phi relative to ``centre``.
    """

    centre: float
    index: np.ndarray
    core: np.ndarray
    rel_phi: np.ndarray


def wedges(phi: np.ndarray, n_wedges: int, margin: float) -> list[Wedge]:
    """Cut hits into ``n_wedges`` overlapping azimuth wedges (cores tile the circle once)."""
    if n_wedges < 1:
        raise ValueError(f"n_wedges must be >= 1, got {n_wedges}")
    half = np.pi / n_wedges
    out = []
    for i in range(n_wedges):
        centre = -np.pi + (2 * i + 1) * half
        rel = wrap(phi - centre)
        inside = np.abs(rel) <= half + margin
        sel = np.arange(len(phi)) if n_wedges == 1 else np.flatnonzero(inside)
        sel = sel[np.argsort(rel[sel], kind="stable")]
        r = rel[sel]
        out.append(Wedge(float(centre), sel, (r >= -half) & (r < half), r))
    return out


def track_targets(
    particle_id: np.ndarray, target: np.ndarray, min_hits: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Hit masks of the target particles with at least ``min_hits`` hits here.

    Args:
        particle_id, target: ``(M,)`` of the hits of one input (a wedge).

    Returns:
        ``(masks (T, M) bool, particle ids (T,))``.
    """
    pids, counts = np.unique(particle_id[target], return_counts=True)
    pids = pids[counts >= min_hits]
    masks = particle_id[None, :] == pids[:, None]
    return masks, pids
