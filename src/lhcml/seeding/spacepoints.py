"""Pixel space points from hits, for events without a ``spacepoints`` table (TrackML).

A pixel hit is already a 3D point; only the variances are missing. They follow ACTS's
``SpacePointMaker`` for a pixel of pitch ``pitch`` (Gaussian sigma ``pitch / sqrt(12)``)
on the Generic / TrackML geometry: barrel modules (volume 8) measure z and r-phi, so
``var_z = sigma^2`` and ``var_r = 0``; endcap disks (volumes 7, 9) measure r and r-phi,
so ``var_r = sigma^2`` and ``var_z = 0``. Only the (volume, layer) pairs of the seeding
selection get space points - by default the simulation's
(``lhcml/simulation/configs/generic-pixel-spacepoints.json``: the four barrel layers and
the four inner disks on each side).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from lhcml.errors import InputError

#: Pixel pitch of the Generic detector's smearing digitization (mm).
PIXEL_PITCH = 0.05


def default_layers() -> set[tuple[int, int]]:
    """The (volume, layer) pairs with space points in lhcml simulations."""
    from lhcml.simulation.config import DEFAULT_SPACEPOINT_SELECTION

    return _read_layers(DEFAULT_SPACEPOINT_SELECTION)


def _read_layers(path: Path) -> set[tuple[int, int]]:
    return {(int(e["volume"]), int(e["layer"])) for e in json.loads(Path(path).read_text())}


def from_pixel_hits(
    hits: pd.DataFrame,
    *,
    layers: Iterable[tuple[int, int]] | None = None,
    pitch: float = PIXEL_PITCH,
) -> pd.DataFrame:
    """Space points (``hit_id, x, y, z, var_r, var_z``) of the selected pixel hits.

    Args:
        hits: ``hit_id, x, y, z, volume_id, layer_id``.
        layers: (volume, layer) pairs to use (default :func:`default_layers`).
        pitch: pixel pitch (mm) for the variances.

    Raises:
        InputError: a column is missing.
    """
    need = ("hit_id", "x", "y", "z", "volume_id", "layer_id")
    missing = [c for c in need if c not in hits.columns]
    if missing:
        raise InputError(f"hits lack column(s) {missing}", column=missing[0])
    wanted = set(default_layers() if layers is None else layers)
    vol = hits["volume_id"].to_numpy(np.int64)
    lay = hits["layer_id"].to_numpy(np.int64)
    key = vol * 100000 + lay
    keep = np.isin(key, np.array([v * 100000 + ly for v, ly in wanted], np.int64))
    sel = hits[keep]
    var = np.float32(pitch * pitch / 12.0)
    barrel = sel["volume_id"].to_numpy() == 8
    return pd.DataFrame(
        {
            "hit_id": sel["hit_id"].to_numpy(np.int64),
            "x": sel["x"].to_numpy(np.float32),
            "y": sel["y"].to_numpy(np.float32),
            "z": sel["z"].to_numpy(np.float32),
            "var_r": np.where(barrel, np.float32(0), var).astype(np.float32),
            "var_z": np.where(barrel, var, np.float32(0)).astype(np.float32),
        }
    )
