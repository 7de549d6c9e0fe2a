"""Turn ACTS' raw output into an lhcml :class:`~lhcml.data.Event` (TrackML layout).

Particle ids
------------
``particle_id`` packs the ACTS barcode into a positive int64, TrackML style, with
:func:`lhcml.io.acts.encode_barcode` (the layout the ACTS CSV reader uses too)::

    bits 52-62  vertex primary   = sub-event + 1 (1 hard scatter, k+1 k-th pile-up)
    bits 36-51  particle         = 1-based number of the particle within its sub-event
    bits 24-35  generation       = 0 for generator particles from the primary vertex,
                                   1 for generator particles from displaced decays,
                                   +1 per Fatras interaction (secondaries)
    bits 12-23  sub-particle     = number of a Fatras secondary among its siblings
    bits  0-11  vertex secondary = ACTS' secondary-vertex number (0 here)

As in the TrackML files, ``(particle_id >> 24) & 0xFFF != 0`` marks a particle that is
not primary, and a Fatras secondary keeps the particle number of its ancestor.

Primary and secondary particles
-------------------------------
``primary`` is true for generator particles produced at their sub-event's primary
vertex (displacement below 1 um). Generator particles from displaced decays (K0s,
Lambda, b/c hadrons, tau) and Fatras secondaries (photon conversions, ...) are not
primary. All generator final-state particles are kept (with ``nhits = 0`` when they
left no hit); Fatras secondaries are kept only when they left at least one hit, so that
every truth row has its particle and the table is not flooded with soft photons.

Hits
----
One hit per measurement, ordered by volume, layer and module (randomly within a
module, so the order leaks no truth), ``hit_id`` 1..N. Its truth is the measurement's
sim hit: true position and the momentum just before the hit. Noise hits
(``DetectorConfig.noise_*``) have ``particle_id`` 0, their measured position as true
position, zero momentum and weight. ``weight`` is the TrackML score weight
(:func:`lhcml.data.weights.hit_weights`). Space points carry the ``hit_id`` of the
pixel measurement they were made from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lhcml.data.event import Event
from lhcml.errors import LhcmlError
from lhcml.io.acts import encode_barcode
from lhcml.simulation.config import SimulationConfig
from lhcml.simulation.detector import ModuleTable
from lhcml.simulation.generators import STREAM_NOISE, STREAM_SHUFFLE, event_rng
from lhcml.simulation.raw import RawEvent

#: ACTS' marker of a sim hit whose particle is not in the particle container.
_UNMATCHED = np.iinfo(np.int64).max


def assemble_event(
    raw: RawEvent, config: SimulationConfig, modules: ModuleTable | None = None
) -> Event:
    """Build the lhcml event (hits, truth, particles, space points) of ``raw``.

    Args:
        raw: ACTS output of one event.
        config: the simulation configuration (noise settings, seed).
        modules: sensitive module table, needed only when noise hits are requested.
    """
    gen = raw.gen
    bc = raw.particle_barcode
    vp, vs, table_row, generation, sub = (bc[:, i] for i in range(5))
    n_gen = len(gen)
    if len(bc) and (table_row.max() >= len(raw.fatras_rows) or table_row.min() < 0):
        raise LhcmlError("ACTS returned a particle number beyond the generated particles")
    row = raw.fatras_rows[table_row]
    # Guard the barcode -> generator row mapping: generator particles come back with
    # their input momentum, bit for bit.
    back = (generation == 0) & (sub == 0)
    if not np.array_equal(raw.particle_momentum[back, 0], gen.px[row[back]]):
        raise LhcmlError("ACTS particle barcodes do not map onto the generated particles")
    # ... and a Fatras secondary carries the particle number of its parent.
    child = np.flatnonzero(raw.particle_parent >= 0)
    if np.any(table_row[raw.particle_parent[child]] != table_row[child]):
        raise LhcmlError("a Fatras secondary does not carry its parent's particle number")
    if len(bc) and np.any(vp != gen.subevent[row] + 1):
        raise LhcmlError("ACTS particle barcodes do not match the generated sub-events")
    # Generator particles enter Fatras as generation 0 (Fatras insists); displaced
    # decays and everything Fatras made from them get one generation more here.
    displaced = ~gen.primary[row]
    sim_pid = encode_barcode(vp, vs, gen.index[row], generation + displaced, sub)
    is_gen_row = (generation == 0) & (sub == 0)

    # --- hits: one per measurement; its truth is the measurement's first sim hit
    # (with DetectorConfig.merge_hits, close sim hits can share one measurement).
    hit_rows = raw.meas_rows
    prow = raw.hit_particle_row[hit_rows]
    if np.any(prow >= len(sim_pid)):
        raise LhcmlError(f"{np.sum(prow >= len(sim_pid))} sim hit(s) without their particle")
    hit_pid = sim_pid[prow]

    # --- particles: every generator final-state particle, plus secondaries with hits
    gen_pid = encode_barcode(
        gen.subevent + 1,
        np.zeros(n_gen, dtype=np.int64),
        gen.index,
        np.where(gen.primary, 0, 1),
        np.zeros(n_gen, dtype=np.int64),
    )
    nhits_sim = np.bincount(prow, minlength=len(sim_pid))
    secondary = ~is_gen_row & (nhits_sim > 0)
    sec_rows = np.flatnonzero(secondary)
    f32 = np.float32
    vertex = raw.particle_vertex[sec_rows]
    momentum = raw.particle_momentum[sec_rows]
    particles = pd.DataFrame(
        {
            "particle_id": np.concatenate([gen_pid, sim_pid[sec_rows]]),
            "vx": np.concatenate([gen.vx, vertex[:, 0]]).astype(f32),
            "vy": np.concatenate([gen.vy, vertex[:, 1]]).astype(f32),
            "vz": np.concatenate([gen.vz, vertex[:, 2]]).astype(f32),
            "px": np.concatenate([gen.px, momentum[:, 0]]).astype(f32),
            "py": np.concatenate([gen.py, momentum[:, 1]]).astype(f32),
            "pz": np.concatenate([gen.pz, momentum[:, 2]]).astype(f32),
            "q": np.rint(np.concatenate([gen.charge, raw.particle_charge[sec_rows]])).astype(
                np.int32
            ),
            "nhits": np.zeros(n_gen + len(sec_rows), dtype=np.int32),
            "particle_type": np.concatenate([gen.pdg, raw.particle_pdg[sec_rows]]).astype(np.int32),
            "primary": np.concatenate([gen.primary, np.zeros(len(sec_rows), dtype=bool)]),
            "prod_r": np.hypot(
                np.concatenate([gen.vx, vertex[:, 0]]), np.concatenate([gen.vy, vertex[:, 1]])
            ).astype(f32),
            "subevent": np.concatenate([gen.subevent, vp[sec_rows] - 1]).astype(np.int32),
        }
    )
    order = np.argsort(particles["particle_id"].to_numpy(), kind="stable")
    particles = particles.iloc[order].reset_index(drop=True)
    if np.any(np.diff(particles["particle_id"].to_numpy()) == 0):
        raise LhcmlError("duplicate particle ids after encoding the ACTS barcodes")
    # Row of each simulated particle in the (sorted) table: generator particles by
    # their generator row, secondaries after them; then each hit's particle row.
    unsorted = np.full(len(sim_pid), -1, dtype=np.int64)
    unsorted[is_gen_row] = row[is_gen_row]
    unsorted[sec_rows] = n_gen + np.arange(len(sec_rows))
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    hit_pos = np.where(unsorted >= 0, position[np.maximum(unsorted, 0)], -1)[prow]
    if np.any(hit_pos < 0):
        raise LhcmlError("a hit's particle is missing from the particle table")
    particles["nhits"] = np.bincount(hit_pos, minlength=len(particles)).astype(np.int32)

    # --- noise hits
    noise_xyz, noise_ids = _noise_hits(config, raw.event_id, len(hit_rows), modules)
    n_sig, n_noise = len(hit_rows), len(noise_xyz)
    xyz = np.concatenate([raw.hit_meas[hit_rows], noise_xyz]).astype(np.float32)
    geo = np.concatenate(
        [
            np.column_stack(
                [raw.hit_volume[hit_rows], raw.hit_layer[hit_rows], raw.hit_module[hit_rows]]
            ),
            noise_ids,
        ]
    ).astype(np.int32)
    # TrackML order: by volume, layer, module; random within a module, so the hit order
    # says nothing about which particle made a hit.
    # One int64 key (volume 8 bits, layer 12, module 20, random 20) sorts fastest.
    shuffle = event_rng(config.seed, raw.event_id, STREAM_SHUFFLE).integers(
        0, 1 << 20, n_sig + n_noise
    )
    g64 = geo.astype(np.int64)
    if len(g64) and (g64.max(axis=0) < (1 << np.array([8, 12, 20]))).all():
        key = (g64[:, 0] << 52) | (g64[:, 1] << 40) | (g64[:, 2] << 20) | shuffle
        order = np.argsort(key, kind="stable")
    else:  # ids beyond the Generic detector's ranges: the general (slower) sort
        order = np.lexsort((shuffle, geo[:, 2], geo[:, 1], geo[:, 0]))
    hit_id_of_row = np.empty(n_sig + n_noise, dtype=np.int64)
    hit_id_of_row[order] = np.arange(1, n_sig + n_noise + 1)

    hits = pd.DataFrame(
        {
            "hit_id": np.arange(1, n_sig + n_noise + 1, dtype=np.int64),
            "x": xyz[order, 0],
            "y": xyz[order, 1],
            "z": xyz[order, 2],
            "volume_id": geo[order, 0],
            "layer_id": geo[order, 1],
            "module_id": geo[order, 2],
        }
    )
    true_xyz = np.concatenate([raw.hit_true[hit_rows], noise_xyz]).astype(np.float32)
    true_mom = np.concatenate([raw.hit_mom[hit_rows], np.zeros((n_noise, 3))]).astype(np.float32)
    all_pid = np.concatenate([hit_pid, np.zeros(n_noise, dtype=np.int64)])
    truth = pd.DataFrame(
        {
            "hit_id": hits["hit_id"].to_numpy(),
            "particle_id": all_pid[order],
            "tx": true_xyz[order, 0],
            "ty": true_xyz[order, 1],
            "tz": true_xyz[order, 2],
            "tpx": true_mom[order, 0],
            "tpy": true_mom[order, 1],
            "tpz": true_mom[order, 2],
            "weight": np.zeros(n_sig + n_noise, dtype=np.float32),
        }
    )
    truth["weight"] = score_weights(truth, particles)

    # --- space points: measurement index -> hit_id
    spacepoints = pd.DataFrame(
        {
            "hit_id": hit_id_of_row[raw.sp_meas],
            "x": raw.sp_xyz[:, 0],
            "y": raw.sp_xyz[:, 1],
            "z": raw.sp_xyz[:, 2],
            "var_r": raw.sp_var[:, 0],
            "var_z": raw.sp_var[:, 1],
        }
    ).sort_values("hit_id", kind="stable", ignore_index=True)
    return Event(
        event_id=raw.event_id,
        hits=hits,
        particles=particles,
        truth=truth,
        spacepoints=spacepoints,
    )


def score_weights(truth: pd.DataFrame, particles: pd.DataFrame) -> np.ndarray:
    """TrackML score weight of each truth row (sums to 1 over the event).

    The rule lives in :func:`lhcml.data.weights.hit_weights` (the challenge's own
    definition: pT and hit-order weights; noise and particles with < 4 hits weigh 0).
    """
    from lhcml.data.weights import hit_weights

    return np.asarray(hit_weights(truth, particles), dtype=np.float32)


def _noise_hits(
    config: SimulationConfig, event_id: int, n_signal: int, modules: ModuleTable | None
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random noise hits: ``(n, 3)`` positions and ``(n, 3)`` geometry ids."""
    det = config.detector
    n = round(det.noise_fraction * n_signal) + det.noise_count
    if n == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int32)
    if modules is None:
        raise LhcmlError("noise hits need the detector's module table")
    rng = event_rng(config.seed, event_id, STREAM_NOISE)
    candidates = np.flatnonzero(np.isin(modules.volume, det.noise_volumes))
    pick = candidates[rng.integers(0, len(candidates), n)]
    local = _uniform_on_modules(modules, pick, rng)
    xyz = modules.center[pick] + np.einsum("nij,nj->ni", modules.rotation[pick], local)
    ids = np.column_stack([modules.volume[pick], modules.layer[pick], modules.module[pick]])
    return xyz, ids.astype(np.int32)


def _uniform_on_modules(
    modules: ModuleTable, pick: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Uniform local (u, v, 0) points on the picked modules (rejection for trapezoids)."""
    n = len(pick)
    b = modules.bounds[pick]
    trap = modules.trapezoid[pick]
    local = np.zeros((n, 3))
    rect = ~trap
    r = rng.random((n, 2))
    local[rect, 0] = b[rect, 0] + r[rect, 0] * (b[rect, 2] - b[rect, 0])
    local[rect, 1] = b[rect, 1] + r[rect, 1] * (b[rect, 3] - b[rect, 1])
    todo = np.flatnonzero(trap)
    while len(todo):
        hx_neg, hx_pos, hy = b[todo, 0], b[todo, 1], b[todo, 2]
        hx_max = np.maximum(hx_neg, hx_pos)
        r = rng.random((len(todo), 2))
        u = (2 * r[:, 0] - 1) * hx_max
        v = (2 * r[:, 1] - 1) * hy
        half_x = hx_neg + (hx_pos - hx_neg) * (v + hy) / (2 * hy)
        ok = np.abs(u) <= half_x
        local[todo[ok], 0] = u[ok]
        local[todo[ok], 1] = v[ok]
        todo = todo[~ok]
    return local
