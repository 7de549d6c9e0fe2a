"""The standard triplet seeder: ACTS's grid triplet seeding on pixel space points.

:func:`find_seeds` sorts the space points into the phi-z grid (:mod:`lhcml.seeding.grid`)
and runs one numba kernel (:mod:`lhcml.seeding.kernel`) over the middle bins: for each
middle space point inside its radial range it finds top then bottom doublets in the
neighbouring bins, sorts both by ``cot theta``, combines them into triplets and filters
them. Arithmetic is float32 and the order of cuts is ACTS's, so on the same space points
and configuration the seeds are ACTS's (up to ties in sorting).

The kernel handles several independent groups of space points at once (hashing buckets,
:mod:`lhcml.seeding.hashing`); :func:`find_seeds` is the one-group case.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lhcml.errors import InputError
from lhcml.seeding.config import SeedingConfig
from lhcml.seeding.grid import GridBinning, GroupedGrid, fill_grid
from lhcml.seeding.kernel import seed_kernel


@dataclass
class Seeds:
    """Triplet seeds of one event.

    Attributes:
        sp: ``(n, 3)`` int64 space-point rows (bottom, middle, top) into the input table.
        quality: the filter weight of each seed (float32).
        z_vertex: ``z0 = zM - rM cot(theta_bottom)`` (float32, mm).
        timings: seconds per step (``grid``, ``kernel``, ...).
    """

    sp: np.ndarray
    quality: np.ndarray
    z_vertex: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sp)

    @classmethod
    def empty(cls) -> Seeds:
        """No seeds."""
        return cls(np.zeros((0, 3), np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32))

    def hit_ids(self, spacepoints: pd.DataFrame) -> np.ndarray:
        """``(n, 3)`` hit ids of the seeds' space points."""
        return spacepoints["hit_id"].to_numpy(np.int64)[self.sp]

    def sorted(self) -> Seeds:
        """Seeds in a canonical order (by bottom, middle, top row)."""
        order = np.lexsort((self.sp[:, 2], self.sp[:, 1], self.sp[:, 0]))
        return Seeds(self.sp[order], self.quality[order], self.z_vertex[order], self.timings)


def run_kernel(grid: GroupedGrid, binning: GridBinning, config: SeedingConfig) -> Seeds:
    """Run :func:`seed_kernel` on a filled grid; seeds in input space-point rows."""
    if len(grid.x) == 0:
        return Seeds.empty()
    b, m, t, q, zv = seed_kernel(
        grid.x,
        grid.y,
        grid.z,
        grid.r,
        grid.var_r,
        grid.var_z,
        grid.bin_start,
        grid.n_groups,
        binning.n_bins,
        binning.n_phi,
        binning.middle_bins,
        binning.bottom_ptr,
        binning.bottom_bins,
        binning.top_ptr,
        binning.top_bins,
        grid.r_middle,
        config.kernel_params(),
        bool(config.interactionPointCut),
        int(config.maxSeedsPerSpM),
        int(config.compatSeedLimit),
        bool(config.useDeltaRinsteadOfTopRadius),
    )
    sp = np.column_stack([grid.sp_index[b], grid.sp_index[m], grid.sp_index[t]])
    return Seeds(sp.astype(np.int64), q, zv)


def spacepoint_arrays(spacepoints: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """``x, y, z, var_r, var_z`` of a space-point table as float32 arrays."""
    missing = [c for c in ("x", "y", "z", "var_r", "var_z") if c not in spacepoints.columns]
    if missing:
        raise InputError(
            f"space points lack column(s) {missing}; found {list(spacepoints.columns)}",
            column=missing[0],
        )
    return tuple(spacepoints[c].to_numpy(np.float32) for c in ("x", "y", "z", "var_r", "var_z"))


def find_seeds(spacepoints: pd.DataFrame, config: SeedingConfig | None = None) -> Seeds:
    """Triplet seeds of one event's space points (ACTS grid triplet seeding).

    Args:
        spacepoints: ``x, y, z, var_r, var_z`` (mm, mm^2) per space point, e.g. an
            event's ``spacepoints`` table (pixel volumes).
        config: the configuration (default: :meth:`SeedingConfig.physmon`).

    Returns:
        :class:`Seeds` with rows into ``spacepoints``; ``timings`` has ``grid`` (binning
        and sorting), ``kernel`` and ``total`` wall-clock seconds and ``cpu`` (process CPU
        seconds).

    Raises:
        InputError: a coordinate column is missing.
    """
    config = config or SeedingConfig.physmon()
    c0 = time.process_time()
    t0 = time.perf_counter()
    x, y, z, var_r, var_z = spacepoint_arrays(spacepoints)
    binning = binning_for(config)
    grid = fill_grid(binning, config, x, y, z, var_r, var_z)
    t1 = time.perf_counter()
    seeds = run_kernel(grid, binning, config)
    t2 = time.perf_counter()
    seeds.timings = {
        "grid": t1 - t0,
        "kernel": t2 - t1,
        "total": t2 - t0,
        "cpu": time.process_time() - c0,
    }
    return seeds


_BINNINGS: dict[SeedingConfig, GridBinning] = {}


def binning_for(config: SeedingConfig) -> GridBinning:
    """The (cached) grid binning of a configuration."""
    binning = _BINNINGS.get(config)
    if binning is None:
        binning = _BINNINGS[config] = GridBinning.from_config(config)
    return binning
