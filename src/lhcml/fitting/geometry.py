"""What the lhcml fitters know of the detector: hit resolutions, material, barrel or endcap.

The ACTS Generic detector (TrackML layout) of :mod:`lhcml.simulation`:

- **Barrel** volumes 8 (pixel), 13 (short strips), 17 (long strips): modules parallel to
  the beam, local ``u`` along r-phi and ``v`` along z.
- **Endcap** volumes 7/9 (pixel), 12/14 (short strips), 16/18 (long strips): modules at
  fixed z, local ``u`` along r-phi and ``v`` along r.
- **Resolution**: Gaussian smearing sigmas of the digitization config (pixel 14.4 um x
  14.4 um, short strips 23 um x 0.35 mm, long strips 35 um x 3.1 mm), read from the
  packaged JSON (:data:`lhcml.simulation.config.DEFAULT_DIGI_CONFIG`) so they follow it.
- **Material** (:data:`MATERIAL_X0`), read off the Generic detector's surface material in
  pyacts 48.1 (silicon, X0 = 95.7 mm): per layer one sensor (0.15 / 0.25 / 0.35 mm) plus
  one support layer (1.5 mm pixel, 2-2.5 mm short strips, 2.5-3.5 mm long strips); the
  beryllium beam pipe is 0.8 mm (X0 = 352.8 mm) at r ~ 25 mm.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

#: Volume ids of the barrel parts (the rest are endcaps).
BARREL_VOLUMES: tuple[int, ...] = (8, 13, 17)
ALL_VOLUMES: tuple[int, ...] = (7, 8, 9, 12, 13, 14, 16, 17, 18)
#: Thickness in radiation lengths crossed at normal incidence per layer (sensor + support),
#: per volume.
MATERIAL_X0: dict[int, float] = {
    7: (0.15 + 1.5) / 95.7,
    8: (0.15 + 1.5) / 95.7,
    9: (0.15 + 1.5) / 95.7,
    12: (0.25 + 2.5) / 95.7,
    13: (0.25 + 2.0) / 95.7,
    14: (0.25 + 2.5) / 95.7,
    16: (0.35 + 3.5) / 95.7,
    17: (0.35 + 2.5) / 95.7,
    18: (0.35 + 3.5) / 95.7,
}
#: Beam pipe: radius [mm] and thickness in X0.
BEAMPIPE_R = 25.0
BEAMPIPE_X0 = 0.8 / 352.8
#: Pion mass [GeV], the default particle hypothesis for multiple scattering.
PION_MASS = 0.13957


def _lookup(values: dict[int, float], default: float) -> np.ndarray:
    table = np.full(256, default, dtype=np.float64)
    for k, v in values.items():
        table[k] = v
    return table


@cache
def resolution_table(digi_config: str | None = None) -> np.ndarray:
    """(256, 2) per volume id: Gaussian sigma of local u (r-phi) and v (z or r) [mm].

    Unknown volumes get 1 mm x 1 mm (e.g. TrackML volumes outside the Generic layout).
    """
    if digi_config is None:
        from lhcml.simulation.config import DEFAULT_DIGI_CONFIG

        digi_config = str(DEFAULT_DIGI_CONFIG)
    entries = json.loads(Path(digi_config).read_text())["entries"]
    table = np.ones((256, 2), dtype=np.float64)
    for e in entries:
        smear = sorted(e["value"]["smearing"], key=lambda s: s["index"])
        table[int(e["volume"])] = [float(smear[0]["stddev"]), float(smear[1]["stddev"])]
    return table


def hit_resolution(volume: np.ndarray, digi_config: str | None = None) -> np.ndarray:
    """(n, 2) sigma of local u (r-phi) and v (z in the barrel, r in the endcaps) [mm]."""
    return resolution_table(digi_config)[np.asarray(volume, dtype=np.int64)]


def is_barrel(volume: np.ndarray) -> np.ndarray:
    """Whether each hit's volume is a barrel volume (cylinder-like layers)."""
    return np.isin(np.asarray(volume), BARREL_VOLUMES)


def material_x0(volume: np.ndarray) -> np.ndarray:
    """Per-layer thickness in X0 at normal incidence of each hit's volume."""
    return _lookup(MATERIAL_X0, 0.0)[np.asarray(volume, dtype=np.int64)]


@cache
def _module_frame_table() -> tuple[np.ndarray, np.ndarray]:
    """Sorted module keys and the azimuth of each module's local v axis (endcaps)."""
    from lhcml.simulation.config import SimulationConfig
    from lhcml.simulation.detector import DetectorSimulation

    modules = DetectorSimulation(SimulationConfig()).modules
    key = (
        (modules.volume.astype(np.int64) << 32)
        | (modules.layer.astype(np.int64) << 16)
        | modules.module.astype(np.int64)
    )
    v_axis = modules.rotation[:, :, 1]
    angle = np.arctan2(v_axis[:, 1], v_axis[:, 0])
    order = np.argsort(key)
    return key[order], angle[order]


def volume_index_table() -> np.ndarray:
    """(256,) int64: 1 + position of each volume id in :data:`ALL_VOLUMES` (0: unknown)."""
    table = np.zeros(256, np.int64)
    for i, v in enumerate(ALL_VOLUMES):
        table[v] = i + 1
    return table


@cache
def module_frame_grid() -> np.ndarray:
    """Endcap measurement axes as a dense grid for O(1) look-ups in compiled code.

    Returns:
        (len(ALL_VOLUMES) + 1, layers, modules) float64 indexed by
        ``(volume_index_table()[volume], layer, module)``: the azimuth of the module's
        local v axis (:func:`measurement_frames`), NaN for barrel and unknown modules.
    """
    keys, angle = _module_frame_table()
    volume, layer, module = keys >> 32, (keys >> 16) & 0xFFFF, keys & 0xFFFF
    vi = volume_index_table()[np.clip(volume, 0, 255)]
    endcap = ~is_barrel(volume) & (vi > 0)
    shape = (len(ALL_VOLUMES) + 1, int(layer[endcap].max()) + 1, int(module[endcap].max()) + 1)
    grid = np.full(shape, np.nan)
    grid[vi[endcap], layer[endcap], module[endcap]] = angle[endcap]
    return grid


def measurement_frames(
    xyz: np.ndarray,
    volume: np.ndarray,
    layer: np.ndarray | None = None,
    module: np.ndarray | None = None,
    *,
    use_modules: bool = False,
) -> np.ndarray:
    """Azimuth of the coarse (local v) measurement axis of each hit in the x-y plane.

    Endcap strips measure well across the strip (u) and poorly along it (v); v points
    radially through the module centre, not through the hit, so at the module edges the
    coarse error leaks into r-phi. ``use_modules=True`` takes the exact axis from the
    Generic detector's module table (builds the ACTS geometry once per process, ~1 s);
    otherwise (and for hits on unknown modules) the radial direction at the hit is used.
    Barrel hits get their radial direction (their v axis is z; the value is unused).

    Returns:
        (N,) angles [rad].
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    radial = np.arctan2(xyz[:, 1], xyz[:, 0])
    if not use_modules or layer is None or module is None or len(xyz) == 0:
        return radial
    keys, angle = _module_frame_table()
    hk = (
        (np.asarray(volume, np.int64) << 32)
        | (np.asarray(layer, np.int64) << 16)
        | np.asarray(module, np.int64)
    )
    pos = np.clip(np.searchsorted(keys, hk), 0, len(keys) - 1)
    found = (keys[pos] == hk) & ~is_barrel(volume)
    return np.where(found, angle[pos], radial)
