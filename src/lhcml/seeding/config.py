"""Configuration of the triplet seeder: one typed object with ACTS's parameter names.

:class:`SeedingConfig` mirrors ``acts.examples.GridTripletSeedingAlgorithm.Config``
(pyacts 48.1): the same names, meanings and defaults, in lhcml units (mm, GeV, T), so a
configuration can be handed to ACTS unchanged (:mod:`lhcml.seeding.acts_reference`).
Seed confirmation, time cuts and the ITk ``useExtraCuts`` hooks are not ported.

Defaults (ACTS's):

==============================  ==========  ==============================================
name                            default     meaning
==============================  ==========  ==============================================
bFieldInZ                       2 T         solenoid field
minPt                           0.4 GeV     minimum transverse momentum of a seed
cotThetaMax                     10.01788    max ``|cot theta|`` of a doublet (eta = 3)
impactMax                       20 mm       max transverse impact parameter of a triplet
deltaRMin / deltaRMax           5 / 270 mm  radial distance of doublet partners
deltaR{Min,Max}{Top,Bottom}     None        separate top / bottom windows (None: above)
rMin                            0 mm        kept for ACTS compatibility; like ACTS's grid
                                            (whose r axis starts at 0) it cuts nothing
rMax                            600 mm      space points at ``r >= rMax`` are dropped
zMin / zMax                     +-2800 mm   space points outside ``[zMin, zMax)`` dropped
phiMin / phiMax                 -pi / pi    phi range of the grid
phiBinDeflectionCoverage        1           phi bins per minPt deflection
maxPhiBins                      10000       cap on the number of phi bins
zBinEdges                       ()          z bin edges (empty: ``cotThetaMax * deltaRMax``)
zBinNeighborsTop/Bottom         ()          per z bin ``(down, up)`` neighbours (empty: 1)
numPhiNeighbors                 1           phi neighbours on each side
zBinsCustomLooping              ()          middle z bins to use, 1-based as in ACTS
rMinMiddle / rMaxMiddle         60 / 120    radial range of middle space points
useVariableMiddleSPRange        False       middle range from the event's r range
rRangeMiddleSP                  ()          per z bin ``(rmin, rmax)`` of middles
deltaRMiddle{Min,Max}SPRange    10 / 10 mm  margins of the variable middle range
deltaZMin / deltaZMax           -inf / inf  signed z distance of doublet partners
interactionPointCut             False       cut doublets on the helix through the beam
collisionRegionMin / Max        +-150 mm    z0 window of doublets
helixCutTolerance               1           scales the minimum helix diameter
sigmaScattering                 5           multiple-scattering sigmas allowed
radLengthPerSeed                0.05        material per seed (x / X0), Highland formula
deltaInvHelixDiameter           3e-5 / mm   curvature window of compatible seeds
compatSeedWeight                200         weight per compatible seed
impactWeightFactor              1           weight penalty per mm of impact parameter
maxSeedsPerSpM                  5           seeds kept per middle space point, minus one
compatSeedLimit                 2           compatible seeds counted at most
seedWeightIncrement             0           extra weight above ``numSeedIncrement`` seeds
numSeedIncrement                inf         see above
useDeltaRinsteadOfTopRadius     False       compatible seeds compared by deltaR to middle
==============================  ==========  ==============================================

:meth:`SeedingConfig.physmon` gives ACTS's physics-monitoring settings for the Generic
detector (ttbar, mu = 200), the reference configuration of the benchmark.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lhcml.errors import ConfigError

#: ACTS's tesla in its native units (GeV / (e mm)): ``bFieldInZ`` is pT per helix radius.
TESLA = 0.000299792458

_F32 = np.float32


@dataclass(frozen=True)
class SeedingConfig:
    """Triplet seeding configuration (ACTS ``GridTripletSeedingAlgorithm`` names).

    Units: mm, GeV, T. See the module docstring for every parameter and its default.
    Build variations with :meth:`replace` or :meth:`with_overrides`.
    """

    bFieldInZ: float = 2.0
    minPt: float = 0.4
    cotThetaMax: float = 10.01788
    impactMax: float = 20.0
    deltaRMin: float = 5.0
    deltaRMax: float = 270.0
    deltaRMinTop: float | None = None
    deltaRMaxTop: float | None = None
    deltaRMinBottom: float | None = None
    deltaRMaxBottom: float | None = None
    rMin: float = 0.0
    rMax: float = 600.0
    zMin: float = -2800.0
    zMax: float = 2800.0
    phiMin: float = -math.pi
    phiMax: float = math.pi
    phiBinDeflectionCoverage: int = 1
    maxPhiBins: int = 10000
    zBinEdges: tuple[float, ...] = ()
    zBinNeighborsTop: tuple[tuple[int, int], ...] = ()
    zBinNeighborsBottom: tuple[tuple[int, int], ...] = ()
    numPhiNeighbors: int = 1
    zBinsCustomLooping: tuple[int, ...] = ()
    rMinMiddle: float = 60.0
    rMaxMiddle: float = 120.0
    useVariableMiddleSPRange: bool = False
    rRangeMiddleSP: tuple[tuple[float, float], ...] = ()
    deltaRMiddleMinSPRange: float = 10.0
    deltaRMiddleMaxSPRange: float = 10.0
    deltaZMin: float = -math.inf
    deltaZMax: float = math.inf
    interactionPointCut: bool = False
    collisionRegionMin: float = -150.0
    collisionRegionMax: float = 150.0
    helixCutTolerance: float = 1.0
    sigmaScattering: float = 5.0
    radLengthPerSeed: float = 0.05
    deltaInvHelixDiameter: float = 0.00003
    compatSeedWeight: float = 200.0
    impactWeightFactor: float = 1.0
    maxSeedsPerSpM: int = 5
    compatSeedLimit: int = 2
    seedWeightIncrement: float = 0.0
    numSeedIncrement: float = math.inf
    useDeltaRinsteadOfTopRadius: bool = False

    def __post_init__(self) -> None:
        # Tuples (hashable, immutable) even when lists come in (JSON, YAML, CLI).
        for name in ("zBinEdges", "zBinsCustomLooping"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("zBinNeighborsTop", "zBinNeighborsBottom", "rRangeMiddleSP"):
            object.__setattr__(self, name, tuple(tuple(p) for p in getattr(self, name)))
        self.validate()

    @classmethod
    def physmon(cls, **overrides: Any) -> SeedingConfig:
        """ACTS physmon settings for the Generic detector (``physmon_trackfinding_ttbar_pu200``).

        ``r = (33, 200) mm``, ``deltaR = (1, 300) mm``, collision region +-250 mm, ``z =
        (-2000, 2000) mm``, ``maxSeedsPerSpM = 1``, ``sigmaScattering = 5``,
        ``radLengthPerSeed = 0.1``, ``minPt = 0.5 GeV``, ``impactMax = 3 mm``, 2 T;
        everything else at ACTS's defaults.
        """
        base = {
            "rMin": 33.0,
            "rMax": 200.0,
            "deltaRMin": 1.0,
            "deltaRMax": 300.0,
            "collisionRegionMin": -250.0,
            "collisionRegionMax": 250.0,
            "zMin": -2000.0,
            "zMax": 2000.0,
            "maxSeedsPerSpM": 1,
            "sigmaScattering": 5.0,
            "radLengthPerSeed": 0.1,
            "minPt": 0.5,
            "impactMax": 3.0,
            "bFieldInZ": 2.0,
        }
        base.update(overrides)
        return cls(**base)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SeedingConfig:
        """A named configuration: ``physmon`` or ``acts-default``."""
        if name == "physmon":
            return cls.physmon(**overrides)
        if name in ("acts-default", "default"):
            return cls(**overrides)
        raise ConfigError(f"--preset: unknown '{name}'; choose from ['physmon', 'acts-default']")

    def replace(self, **changes: Any) -> SeedingConfig:
        """A copy with some parameters changed (validated)."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ConfigError(f"unknown seeding parameter(s) {unknown}")
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments: Iterable[str]) -> SeedingConfig:
        """Apply ``name=value`` strings (the CLI's ``--set``); values are parsed as Python
        literals (numbers, booleans, tuples), e.g. ``maxSeedsPerSpM=3``."""
        import ast

        changes: dict[str, Any] = {}
        for text in assignments:
            name, sep, value = text.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ConfigError(f"--set: expected name=value, got '{text}'")
            if name not in self.field_names():
                raise ConfigError(f"--set: unknown seeding parameter '{name}'")
            value = value.strip()
            if value.lower() in ("inf", "+inf", "-inf"):
                parsed: Any = float(value)
            elif value.lower() in ("true", "false"):
                parsed = value.lower() == "true"
            elif value.lower() == "none":
                parsed = None
            else:
                try:
                    parsed = ast.literal_eval(value)
                except (ValueError, SyntaxError):
                    raise ConfigError(f"--set {name}: cannot parse '{value}'") from None
            changes[name] = parsed
        return self.replace(**changes)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The parameter names (ACTS's)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (infinities as strings, tuples as lists)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            v = getattr(self, name)
            if isinstance(v, float) and math.isinf(v):
                v = "inf" if v > 0 else "-inf"
            elif isinstance(v, tuple):
                v = [list(p) if isinstance(p, tuple) else p for p in v]
            out[name] = v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeedingConfig:
        """Inverse of :meth:`to_dict`."""
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"unknown seeding parameter(s) {unknown}")
        vals = {k: (float(v) if v in ("inf", "-inf") else v) for k, v in d.items()}
        return cls(**vals)

    # -- derived values -------------------------------------------------------------

    @property
    def bottom_delta_r(self) -> tuple[float, float]:
        """``(deltaRMin, deltaRMax)`` of middle-bottom doublets."""
        lo = self.deltaRMin if self.deltaRMinBottom is None else self.deltaRMinBottom
        hi = self.deltaRMax if self.deltaRMaxBottom is None else self.deltaRMaxBottom
        return lo, hi

    @property
    def top_delta_r(self) -> tuple[float, float]:
        """``(deltaRMin, deltaRMax)`` of middle-top doublets."""
        lo = self.deltaRMin if self.deltaRMinTop is None else self.deltaRMinTop
        hi = self.deltaRMax if self.deltaRMaxTop is None else self.deltaRMaxTop
        return lo, hi

    @property
    def bfield_acts(self) -> np.float32:
        """The field in ACTS's native units (GeV / mm: pT per helix radius), float32."""
        return _F32(self.bFieldInZ * TESLA)

    def highland(self) -> float:
        """Highland scattering-angle scale (GeV rad) for ``radLengthPerSeed`` (RPP eq. 34.15,
        q = 1, beta = 1), in double precision as ACTS computes it."""
        t = math.sqrt(self.radLengthPerSeed)
        return 0.0136 * t * (1.0 + 0.038 * 2.0 * math.log(t))

    def kernel_params(self) -> np.ndarray:
        """The float32 constants of the numba kernels, in the order of
        :mod:`lhcml.seeding.kernel`, computed in float32 arithmetic as ACTS does."""
        from lhcml.seeding import kernel as P

        b = self.bfield_acts
        min_pt = _F32(self.minPt)
        tol = _F32(self.helixCutTolerance)
        two = _F32(2)
        # x * x, not x ** 2: the same float32 rounding as ACTS's square().
        d = min_pt * two / b if b != 0 else _F32(0)
        min_helix_diameter2 = (d * d) * tol
        highland = _F32(self.highland())
        max_scat = highland / min_pt
        sigma = _F32(self.sigmaScattering)
        h = highland / b if b != 0 else _F32(0)
        pt2_per_radius = h * h
        out = np.zeros(P.N_PARAMS, dtype=np.float32)
        bot, top = self.bottom_delta_r, self.top_delta_r
        out[P.DR_MIN_BOTTOM], out[P.DR_MAX_BOTTOM] = bot
        out[P.DR_MIN_TOP], out[P.DR_MAX_TOP] = top
        out[P.DZ_MIN], out[P.DZ_MAX] = self.deltaZMin, self.deltaZMax
        out[P.COLL_MIN], out[P.COLL_MAX] = self.collisionRegionMin, self.collisionRegionMax
        out[P.COT_THETA_MAX] = self.cotThetaMax
        out[P.IMPACT_MAX] = self.impactMax
        out[P.MIN_HELIX_DIAMETER2] = min_helix_diameter2
        out[P.SIGMA_PT2_PER_RADIUS] = pt2_per_radius * ((two * sigma) * (two * sigma))
        out[P.MULTIPLE_SCATTERING2] = (max_scat * max_scat) * (sigma * sigma)
        out[P.DELTA_INV_HELIX_DIAMETER] = self.deltaInvHelixDiameter
        out[P.FILTER_DELTA_R_MIN] = self.deltaRMin
        out[P.COMPAT_SEED_WEIGHT] = self.compatSeedWeight
        out[P.IMPACT_WEIGHT_FACTOR] = self.impactWeightFactor
        out[P.SEED_WEIGHT_INCREMENT] = self.seedWeightIncrement
        out[P.NUM_SEED_INCREMENT] = self.numSeedIncrement
        return out

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first inconsistent parameter."""

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"seeding parameter {name}={getattr(self, name)!r}: {why}")

        if not self.minPt > 0:
            raise bad("minPt", "must be positive")
        if self.bFieldInZ < 0:
            raise bad("bFieldInZ", "must not be negative (field along +z)")
        if self.bFieldInZ > 0 and self.minPt / (self.bFieldInZ * TESLA) < 0.5 * self.rMax:
            raise bad("minPt", "the minimum helix radius is below rMax / 2 (as in ACTS)")
        for name in ("deltaRMin", "deltaRMax", "cotThetaMax", "rMax", "sigmaScattering"):
            if not getattr(self, name) >= 0:
                raise bad(name, "must not be negative")
        if not self.radLengthPerSeed > 0:
            raise bad("radLengthPerSeed", "must be positive")
        if self.zMin >= self.zMax:
            raise bad("zMin", "must be below zMax")
        if self.collisionRegionMin > self.collisionRegionMax:
            raise bad("collisionRegionMin", "must not be above collisionRegionMax")
        if not (-math.pi - 1e-6 <= self.phiMin < self.phiMax <= math.pi + 1e-6):
            raise bad("phiMin", "need -pi <= phiMin < phiMax <= pi")
        if self.maxSeedsPerSpM < 0 or self.compatSeedLimit < 0:
            raise bad("maxSeedsPerSpM", "counts must not be negative")
        if self.numPhiNeighbors < 0:
            raise bad("numPhiNeighbors", "must not be negative")
        if self.phiBinDeflectionCoverage < 1 or self.maxPhiBins < 1:
            raise bad("phiBinDeflectionCoverage", "bin counts must be positive")
        edges = self.zBinEdges
        if edges and (len(edges) < 2 or any(b <= a for a, b in itertools_pairwise(edges))):
            raise bad("zBinEdges", "need at least two increasing edges")
        nz = max(len(edges) - 1, 0)
        for name in ("zBinNeighborsTop", "zBinNeighborsBottom"):
            v = getattr(self, name)
            if v and (len(v) != nz or any(len(p) != 2 for p in v)):
                raise bad(name, "need one (down, up) pair per z bin of zBinEdges")
        if self.rRangeMiddleSP and (
            len(self.rRangeMiddleSP) != nz or any(len(p) != 2 for p in self.rRangeMiddleSP)
        ):
            raise bad("rRangeMiddleSP", "need one (rmin, rmax) pair per z bin of zBinEdges")
        if (
            self.zBinsCustomLooping
            and nz
            and any(not 1 <= i <= nz for i in self.zBinsCustomLooping)
        ):
            raise bad("zBinsCustomLooping", "z bins are 1-based and must exist in zBinEdges")


def itertools_pairwise(values: tuple[float, ...]) -> Iterable[tuple[float, float]]:
    """Consecutive pairs."""
    return itertools.pairwise(values)
