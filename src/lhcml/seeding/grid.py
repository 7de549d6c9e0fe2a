"""The phi-z space-point grid of ACTS's ``CylindricalSpacePointGrid``, vectorised.

Binning (as ACTS, pyacts 48.1):

- **phi**: equidistant, closed (periodic) in ``[phiMin, phiMax)``. The bin width is the
  azimuthal deflection of a ``minPt`` helix between radii ``rMax - deltaRMax`` (or 0) and
  ``rMax``, plus the change of ``asin(impactMax / r)`` between them, divided by
  ``phiBinDeflectionCoverage``; ``ceil(2 pi / width)`` bins, at most ``maxPhiBins``.
- **z**: ``zBinEdges``, or ``floor((zMax - zMin) / (cotThetaMax * deltaRMax))`` (at least 1)
  equal bins in ``[zMin, zMax)``.
- **r**: one bin ``[0, rMax)`` (ACTS's grid starts at r = 0, so ``rMin`` cuts nothing).

Space points outside the grid are dropped. Inside a bin, space points are sorted by
radius. A middle bin's bottom and top candidates come from the bins within
``numPhiNeighbors`` in phi (wrapping) and ``zBinNeighbors{Bottom,Top}`` (default +-1) in z.

Several independent *groups* of space points (the buckets of hashing seeding) share one
binning: bin ``b`` of group ``g`` is global bin ``g * n_bins + b``, so one sort and one
kernel call serve every group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lhcml.errors import ConfigError
from lhcml.seeding.config import SeedingConfig

_F32 = np.float32


def n_phi_bins(config: SeedingConfig) -> int:
    """Number of phi bins (ACTS's formula, in float32 where ACTS uses float)."""
    if config.bFieldInZ == 0:
        return int(config.maxPhiBins)
    b = config.bfield_acts
    min_helix_radius = _F32(config.minPt) / b
    r_max = _F32(config.rMax)
    if min_helix_radius < r_max * _F32(0.5):
        raise ConfigError("seeding parameter minPt: the minimum helix radius is below rMax / 2")

    def angle(radius: np.float32) -> np.float32:
        a = _F32(2) * min_helix_radius / radius
        return _F32(math.atan(_F32(1) / _F32(math.sqrt(a * a - _F32(1)))))

    outer = angle(r_max)
    inner, r_min = _F32(0), r_max
    if r_max > _F32(config.deltaRMax):
        r_min = r_max - _F32(config.deltaRMax)
        inner = angle(r_min)
    impact = _F32(config.impactMax)
    with_d0 = _F32(abs(math.asin(impact / r_min) - math.asin(impact / r_max)))
    delta_phi = (outer - inner + with_d0) / _F32(config.phiBinDeflectionCoverage)
    if not delta_phi > 0:
        raise ConfigError("seeding grid: the phi bin width is not positive")
    return int(min(math.ceil(2 * math.pi / float(delta_phi)), config.maxPhiBins))


def z_bin_edges(config: SeedingConfig) -> np.ndarray:
    """z bin edges (float64), as ACTS builds them."""
    if config.zBinEdges:
        return np.asarray(config.zBinEdges, dtype=np.float64)
    size = _F32(config.cotThetaMax) * _F32(config.deltaRMax)
    n = int(max(_F32(1), _F32(math.floor(_F32(config.zMax - config.zMin) / size))))
    zmin, zmax = float(_F32(config.zMin)), float(_F32(config.zMax))
    return np.array([zmin + i * ((zmax - zmin) / n) for i in range(n + 1)])


def _axis_neighbours(
    n: int, spec: tuple[tuple[int, int], ...], default: int
) -> list[tuple[int, int]]:
    return [tuple(spec[i]) if spec else (default, default) for i in range(n)]  # type: ignore[misc]


@dataclass(frozen=True)
class GridBinning:
    """The binning and neighbourhoods of one configuration.

    Attributes:
        n_phi, n_z: bins per axis; bin ``b = iz * n_phi + iphi``.
        phi_min, phi_width: the phi axis.
        z_edges: z bin edges.
        r_max: radial bound (exclusive).
        middle_bins: bins used as middle bins, in processing order.
        bottom_ptr, bottom_bins, top_ptr, top_bins: CSR lists of the bottom / top candidate
            bins of each bin (phi wrap-around deduplicated).
        r_middle: ``(n_z, 2)`` radial range of middle space points per z bin (float32);
            ``NaN`` rows are filled per event (variable range).
    """

    n_phi: int
    n_z: int
    phi_min: float
    phi_width: float
    z_edges: np.ndarray
    r_max: float
    middle_bins: np.ndarray
    bottom_ptr: np.ndarray
    bottom_bins: np.ndarray
    top_ptr: np.ndarray
    top_bins: np.ndarray
    r_middle: np.ndarray

    @property
    def n_bins(self) -> int:
        """Bins per group."""
        return self.n_phi * self.n_z

    @classmethod
    def from_config(cls, config: SeedingConfig) -> GridBinning:
        """Build the binning of ``config``."""
        n_phi = n_phi_bins(config)
        z_edges = z_bin_edges(config)
        n_z = len(z_edges) - 1
        if config.zBinNeighborsTop and len(config.zBinNeighborsTop) != n_z:
            raise ConfigError("seeding parameter zBinNeighborsTop: one pair per z bin needed")
        if config.zBinNeighborsBottom and len(config.zBinNeighborsBottom) != n_z:
            raise ConfigError("seeding parameter zBinNeighborsBottom: one pair per z bin needed")
        nb_top = _axis_neighbours(n_z, config.zBinNeighborsTop, 1)
        nb_bot = _axis_neighbours(n_z, config.zBinNeighborsBottom, 1)
        k = config.numPhiNeighbors

        def neighbours(zspec: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
            ptr, out = [0], []
            for iz in range(n_z):
                down, up = zspec[iz]
                zs = [j for j in range(iz - down, iz + up + 1) if 0 <= j < n_z]
                for iphi in range(n_phi):
                    phis = sorted({(iphi + d) % n_phi for d in range(-k, k + 1)})
                    out.extend(j * n_phi + p for j in zs for p in phis)
                    ptr.append(len(out))
            return np.asarray(ptr, np.int64), np.asarray(out, np.int64)

        bottom_ptr, bottom_bins = neighbours(nb_bot)
        top_ptr, top_bins = neighbours(nb_top)
        if config.zBinsCustomLooping:
            if any(not 1 <= i <= n_z for i in config.zBinsCustomLooping):
                raise ConfigError(
                    f"seeding parameter zBinsCustomLooping: 1-based z bins in 1..{n_z}"
                )
            z_order = [i - 1 for i in config.zBinsCustomLooping]
        else:
            z_order = list(range(n_z))
        middle = np.array([iz * n_phi + p for iz in z_order for p in range(n_phi)], np.int64)
        if config.useVariableMiddleSPRange:
            r_middle = np.full((n_z, 2), np.nan, np.float32)
        elif config.rRangeMiddleSP:
            r_middle = np.asarray(config.rRangeMiddleSP, np.float32).reshape(n_z, 2)
        else:
            r_middle = np.tile(
                np.array([config.rMinMiddle, config.rMaxMiddle], np.float32), (n_z, 1)
            )
        return cls(
            n_phi=n_phi,
            n_z=n_z,
            phi_min=float(_F32(config.phiMin)),
            phi_width=(float(_F32(config.phiMax)) - float(_F32(config.phiMin))) / n_phi,
            z_edges=z_edges,
            r_max=float(_F32(config.rMax)),
            middle_bins=middle,
            bottom_ptr=bottom_ptr,
            bottom_bins=bottom_bins,
            top_ptr=top_ptr,
            top_bins=top_bins,
            r_middle=r_middle,
        )

    def bin_of(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Bin of each space point (float32 coordinates); -1 outside the grid."""
        phi = np.arctan2(y, x).astype(np.float64)
        zz = z.astype(np.float64)
        rr = r.astype(np.float64)
        phi_max = self.phi_min + self.phi_width * self.n_phi
        inside = (
            (phi >= self.phi_min)
            & (phi < phi_max)
            & (zz >= self.z_edges[0])
            & (zz < self.z_edges[-1])
            & (rr >= 0)
            & (rr < self.r_max)
        )
        iphi = np.clip(((phi - self.phi_min) / self.phi_width).astype(np.int64), 0, self.n_phi - 1)
        iz = np.clip(np.searchsorted(self.z_edges, zz, side="right") - 1, 0, self.n_z - 1)
        return np.where(inside, iz * self.n_phi + iphi, -1)

    def middle_ranges(
        self, r_sorted_min: float, r_sorted_max: float, config: SeedingConfig
    ) -> np.ndarray:
        """Radial range of middle space points per z bin, float32 ``(n_z, 2)``.

        The variable range (``useVariableMiddleSPRange``) is ACTS's: ``[floor(rmin / 2) * 2
        + deltaRMiddleMinSPRange, floor(rmax / 2) * 2 - deltaRMiddleMaxSPRange]`` over the
        space points in the grid.
        """
        if not config.useVariableMiddleSPRange:
            return self.r_middle
        lo = _F32(math.floor(_F32(r_sorted_min) / _F32(2))) * _F32(2) + _F32(
            config.deltaRMiddleMinSPRange
        )
        hi = _F32(math.floor(_F32(r_sorted_max) / _F32(2))) * _F32(2) - _F32(
            config.deltaRMiddleMaxSPRange
        )
        return np.tile(np.array([lo, hi], np.float32), (self.n_z, 1))


@dataclass
class GroupedGrid:
    """Space points of one or more groups sorted into the grid, ready for the kernel.

    Attributes:
        x, y, z, r, var_r, var_z: float32 coordinates in grid order.
        sp_index: the input row of each entry (a space point appears once per group).
        bin_start: ``(n_groups * n_bins + 1,)`` offsets of each global bin.
        n_groups: number of groups.
        r_middle: ``(n_z, 2)`` middle radial ranges.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    r: np.ndarray
    var_r: np.ndarray
    var_z: np.ndarray
    sp_index: np.ndarray
    bin_start: np.ndarray
    n_groups: int
    r_middle: np.ndarray


def fill_grid(
    binning: GridBinning,
    config: SeedingConfig,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    var_r: np.ndarray,
    var_z: np.ndarray,
    *,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> GroupedGrid:
    """Sort space points into the grid (one group, or ``groups = (group_id, sp_row)``).

    Args:
        binning: the grid binning.
        config: the configuration (for the variable middle range).
        x, y, z, var_r, var_z: all space points (any float dtype; used as float32).
        groups: membership pairs ``(group id, space-point row)``; default one group with
            every space point.

    Returns:
        The :class:`GroupedGrid`.
    """
    x32 = np.ascontiguousarray(x, np.float32)
    y32 = np.ascontiguousarray(y, np.float32)
    z32 = np.ascontiguousarray(z, np.float32)
    r32 = np.hypot(x32, y32)
    sp_bin = binning.bin_of(x32, y32, z32, r32)
    if groups is None:
        rows = np.flatnonzero(sp_bin >= 0)
        gid = np.zeros(len(rows), np.int64)
        n_groups = 1
    else:
        gid_all, rows_all = (np.asarray(a, np.int64) for a in groups)
        keep = sp_bin[rows_all] >= 0
        gid, rows = gid_all[keep], rows_all[keep]
        n_groups = int(gid_all.max()) + 1 if len(gid_all) else 0
    key = gid * binning.n_bins + sp_bin[rows]
    # Sort by global bin, then radius (stable: equal radii keep their input order): one
    # integer key, bin above the radius' float32 bits (monotonic for r >= 0).
    packed = (key << np.int64(32)) | r32[rows].view(np.uint32).astype(np.int64)
    order = np.argsort(packed, kind="stable")
    rows = rows[order]
    key = key[order]
    counts = np.bincount(key, minlength=n_groups * binning.n_bins)
    bin_start = np.zeros(n_groups * binning.n_bins + 1, np.int64)
    np.cumsum(counts, out=bin_start[1:])
    r_rows = r32[rows]
    r_middle = (
        binning.middle_ranges(float(r_rows.min()), float(r_rows.max()), config)
        if len(rows)
        else binning.r_middle
    )
    return GroupedGrid(
        x=x32[rows],
        y=y32[rows],
        z=z32[rows],
        r=r_rows,
        var_r=np.ascontiguousarray(var_r, np.float32)[rows],
        var_z=np.ascontiguousarray(var_z, np.float32)[rows],
        sp_index=rows,
        bin_start=bin_start,
        n_groups=n_groups,
        r_middle=np.ascontiguousarray(r_middle, np.float32),
    )
