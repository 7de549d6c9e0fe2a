"""ACTS's ``GridTripletSeedingAlgorithm`` on lhcml space points, in process (pyacts 48.1).

The reference for :mod:`lhcml.seeding`: the same space points and the same
:class:`~lhcml.seeding.config.SeedingConfig` go through ACTS's own seeder, and its seeds
come back as :class:`~lhcml.seeding.finder.Seeds` (rows into the input table) to be
scored by the same metric code as ours.

One ``acts.examples.Sequencer`` (single-threaded) runs:

1. a Python ``IReader`` that puts each event's space points on the whiteboard as an
   ``acts.SpacePointContainer`` (columns x, y, z, r, phi, varianceR, varianceZ, filled
   through the container's writable numpy views - no per-point Python);
2. a clock mark, ``GridTripletSeedingAlgorithm``, a second clock mark: the per-event seeding
   time excludes all I/O and conversion;
3. a Python ``IAlgorithm`` that reads the ``acts.SeedContainer`` (space-point indices =
   input rows, quality, vertex z).

No CSV round trip is needed; the wheel has everything (``CsvSpacePointReader`` exists too
but reads ACTS's own measurement-based layout).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lhcml.seeding.config import SeedingConfig
from lhcml.seeding.finder import Seeds, spacepoint_arrays

#: Whiteboard keys.
_SP_KEY = "lhcml_spacepoints"
_SEED_KEY = "lhcml_seeds"

#: SeedingConfig fields that GridTripletSeedingAlgorithm.Config also has, unchanged.
_SAME = (
    "minPt",
    "cotThetaMax",
    "impactMax",
    "deltaRMin",
    "deltaRMax",
    "rMin",
    "rMax",
    "zMin",
    "zMax",
    "phiMin",
    "phiMax",
    "phiBinDeflectionCoverage",
    "maxPhiBins",
    "numPhiNeighbors",
    "rMinMiddle",
    "rMaxMiddle",
    "useVariableMiddleSPRange",
    "deltaRMiddleMinSPRange",
    "deltaRMiddleMaxSPRange",
    "deltaZMin",
    "deltaZMax",
    "interactionPointCut",
    "collisionRegionMin",
    "collisionRegionMax",
    "helixCutTolerance",
    "sigmaScattering",
    "radLengthPerSeed",
    "deltaInvHelixDiameter",
    "compatSeedWeight",
    "impactWeightFactor",
    "maxSeedsPerSpM",
    "compatSeedLimit",
    "seedWeightIncrement",
    "numSeedIncrement",
    "useDeltaRinsteadOfTopRadius",
)


def acts_kwargs(config: SeedingConfig) -> dict[str, Any]:
    """Keyword arguments of ``acts.examples.GridTripletSeedingAlgorithm`` for ``config``
    (ACTS units: the field in GeV / mm)."""
    import acts

    u = acts.UnitConstants
    kw: dict[str, Any] = {name: getattr(config, name) for name in _SAME}
    kw["bFieldInZ"] = config.bFieldInZ * u.T
    kw["deltaRMinBottom"], kw["deltaRMaxBottom"] = config.bottom_delta_r
    kw["deltaRMinTop"], kw["deltaRMaxTop"] = config.top_delta_r
    kw["zBinEdges"] = list(config.zBinEdges)
    kw["zBinNeighborsTop"] = [tuple(p) for p in config.zBinNeighborsTop]
    kw["zBinNeighborsBottom"] = [tuple(p) for p in config.zBinNeighborsBottom]
    kw["zBinsCustomLooping"] = list(config.zBinsCustomLooping)
    kw["rRangeMiddleSP"] = [list(p) for p in config.rRangeMiddleSP]
    kw["seedConfirmation"] = False
    kw["useExtraCuts"] = False
    # pyacts wants finite-or-inf floats; keep inf as is.
    return {k: (float(v) if isinstance(v, float) and math.isinf(v) else v) for k, v in kw.items()}


def spacepoint_container(spacepoints: pd.DataFrame) -> Any:
    """An ``acts.SpacePointContainer`` with the table's space points, in table order."""
    import acts

    x, y, z, var_r, var_z = spacepoint_arrays(spacepoints)
    cols = acts.SpacePointColumns
    container = acts.SpacePointContainer(
        cols.X | cols.Y | cols.Z | cols.R | cols.Phi | cols.VarianceZ | cols.VarianceR
    )
    n = len(x)
    container.reserve(n)
    for _ in range(n):  # the bindings create one point per call; columns are set in bulk
        container.createSpacePoint()
    if n:
        container.x[:] = x
        container.y[:] = y
        container.z[:] = z
        container.r[:] = np.hypot(x, y)
        container.phi[:] = np.arctan2(y, x)
        container.varianceR[:] = var_r
        container.varianceZ[:] = var_z
    return container


def run_acts_seeding(
    events: Sequence[pd.DataFrame], config: SeedingConfig | None = None
) -> list[Seeds]:
    """Run ACTS's grid triplet seeding on each space-point table.

    Args:
        events: one space-point table (``x, y, z, var_r, var_z``) per event.
        config: the configuration (default: physmon).

    Returns:
        One :class:`Seeds` per event (rows into its table), with ``timings["total"]`` the
        wall-clock seconds ACTS's algorithm took on it (between two clock marks around it)
        and ``timings["cpu"]`` the process CPU seconds.
    """
    import acts
    import acts.examples as ae

    config = config or SeedingConfig.physmon()
    level = acts.logging.WARNING
    if not events:
        return []
    marks: dict[int, dict[str, float]] = {}
    results: dict[int, Seeds] = {}

    class _Reader(ae.IReader):  # type: ignore[misc]
        def __init__(self) -> None:
            ae.IReader.__init__(self, "LhcmlSpacePointReader", level)
            self._out = ae.WriteDataHandle(self, acts.SpacePointContainer, "OutputSpacePoints")
            self._out.initialize(_SP_KEY)

        def availableEvents(self) -> tuple[int, int]:
            return (0, len(events))

        def read(self, ctx: Any) -> Any:
            self._out(ctx, spacepoint_container(events[ctx.eventNumber]))
            return ae.ProcessCode.SUCCESS

    class _Mark(ae.IAlgorithm):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            ae.IAlgorithm.__init__(self, f"LhcmlMark_{name}", level)
            self._name = name

        def execute(self, ctx: Any) -> Any:
            m = marks.setdefault(ctx.eventNumber, {})
            m[self._name] = time.perf_counter()
            m[self._name + "_cpu"] = time.process_time()
            return ae.ProcessCode.SUCCESS

    class _Collect(ae.IAlgorithm):  # type: ignore[misc]
        def __init__(self) -> None:
            ae.IAlgorithm.__init__(self, "LhcmlSeedCollector", level)
            self._in = ae.ReadDataHandle(self, acts.SeedContainer, "InputSeeds")
            self._in.initialize(_SEED_KEY)

        def execute(self, ctx: Any) -> Any:
            seeds = self._in(ctx.eventStore)
            n = len(seeds)
            sp = np.zeros((n, 3), np.int64)
            quality = np.zeros(n, np.float32)
            zv = np.zeros(n, np.float32)
            for i, s in enumerate(seeds):  # ~1 us per seed, outside the timed region
                sp[i] = s.spacePointIndices
                quality[i] = s.quality
                zv[i] = s.vertexZ
            results[ctx.eventNumber] = Seeds(sp, quality, zv)
            return ae.ProcessCode.SUCCESS

    seq = ae.Sequencer(
        events=len(events),
        numThreads=1,
        trackFpes=False,
        logLevel=level,
        outputDir="",
        outputTimingFile="",
    )
    # Python elements must outlive run(): the C++ side does not own them.
    keep = [_Reader(), _Mark("start"), _Mark("stop"), _Collect()]
    seeding = ae.GridTripletSeedingAlgorithm(
        level=level, inputSpacePoints=_SP_KEY, outputSeeds=_SEED_KEY, **acts_kwargs(config)
    )
    seq.addReader(keep[0])
    seq.addAlgorithm(keep[1])
    seq.addAlgorithm(seeding)
    seq.addAlgorithm(keep[2])
    seq.addAlgorithm(keep[3])
    seq.run()
    out = []
    for i in range(len(events)):
        seeds = results[i]
        m = marks[i]
        seeds.timings = {"total": m["stop"] - m["start"], "cpu": m["stop_cpu"] - m["start_cpu"]}
        out.append(seeds)
    return out
