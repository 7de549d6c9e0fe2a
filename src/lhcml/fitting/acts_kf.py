"""The ACTS Kalman filter (pyacts) as the reference fit of lhcml candidates.

The same candidates the other fitters see are fed to ACTS' ``TrackFittingAlgorithm``
with ``makeKalmanFitterFunction`` (multiple scattering and energy loss on, the Generic
detector's material, no outlier rejection: ``chi2Cut = inf``) entirely in process:

1. :class:`_Feed`, a Python ``IAlgorithm``, puts on the whiteboard per chunk of
   candidates: a ``MeasurementContainer`` (one 2D measurement per candidate hit: the
   hit's local position on its module from the module table of
   :class:`lhcml.simulation.detector.DetectorSimulation`, variances from the
   digitization config), a ``ProtoTrackContainer`` (measurement indices per candidate)
   and a ``ConstTrackContainer`` holding the seed of each candidate as parameters on a
   perigee surface at the origin.
2. ``TracksToParameters`` turns the seeds into the ``vector<BoundTrackParameters>`` the
   fitter wants, and ``TrackParameterSmearing`` with every smearing sigma set to 0 gives
   them their initial covariance (``initial_sigmas``).

   Why the detour: in pyacts 48.1 Python cannot put a ``vector<BoundTrackParameters>``
   on the whiteboard (the type is not registered with the whiteboard registry), and
   ``BoundMatrix`` has no element setters (only ``Identity`` / ``Zero``), so a seed's
   covariance can only be set by an ACTS algorithm.
3. ``TrackFittingAlgorithm`` fits, a Python collector reads the fitted perigee
   parameters and covariances as numpy arrays (``ConstTrackContainer.parameters``).

Failed fits are left out of ACTS' output; each output track is mapped back to its
candidate through its first measurement's source-link index. The fit time is taken
between two marks around ``TrackFittingAlgorithm`` (what ``tracks_per_second``
reports), excluding the Python feed.

Parameters are returned in the :mod:`lhcml.fitting.targets` convention (ACTS'
perigee ``d0, z0, phi, theta, q/p`` is the same frame; ``q/pT = q/p / sin(theta)``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lhcml.errors import InputError
from lhcml.fitting import geometry
from lhcml.fitting.candidates import Candidates
from lhcml.fitting.targets import BFIELD

#: Default initial sigmas of the seed (ACTS truth-tracking defaults): loc0, loc1 [mm],
#: phi, theta [rad], q/p relative is set via ``initial_sigma_ptrel``, time [ns].
INITIAL_SIGMAS = (1.0, 1.0, 0.0175, 0.0175, 0.0, 1.0)


@dataclass
class ActsKalmanResult:
    """Output of :func:`acts_kalman_fit`.

    Attributes:
        params: (n, 5) ``qopt, theta, phi, d0, z0`` (NaN where ACTS returned no track).
        cov: (n, 5, 5) their covariance.
        chi2, ndf: ACTS' fit quality.
        fit_seconds: wall time spent inside ``TrackFittingAlgorithm``.
        tracks_per_second: candidates fitted per second of that time.
    """

    params: np.ndarray
    cov: np.ndarray
    chi2: np.ndarray
    ndf: np.ndarray
    fit_seconds: float

    @property
    def sigma(self) -> np.ndarray:
        """(n, 5) standard deviations."""
        return np.sqrt(np.diagonal(self.cov, axis1=1, axis2=2))

    @property
    def tracks_per_second(self) -> float:
        n = int(np.isfinite(self.params[:, 0]).sum())
        return n / self.fit_seconds if self.fit_seconds > 0 else float("nan")


class _Clock:
    def __init__(self) -> None:
        self.total = 0.0
        self._t0 = 0.0

    def mark(self, name: str) -> None:
        if name == "before_fit":
            self._t0 = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t0


def local_coordinates(cands: Candidates, modules: Any) -> tuple[np.ndarray, np.ndarray]:
    """Local (u, v) of every candidate hit on its module and the module rows.

    Args:
        cands: candidates (their hits' volume / layer / module ids and positions).
        modules: :class:`lhcml.simulation.detector.ModuleTable`.

    Raises:
        InputError: a hit's module is not in the detector.
    """
    key = (
        (modules.volume.astype(np.int64) << 32)
        | (modules.layer.astype(np.int64) << 16)
        | modules.module.astype(np.int64)
    )
    order = np.argsort(key)
    hk = (
        (cands.volume.astype(np.int64) << 32)
        | (cands.layer.astype(np.int64) << 16)
        | cands.module.astype(np.int64)
    )
    pos = np.clip(np.searchsorted(key[order], hk), 0, len(key) - 1)
    rows = order[pos]
    if len(hk) and not np.array_equal(key[rows], hk):
        bad = int(np.flatnonzero(key[rows] != hk)[0])
        raise InputError(
            f"hit {cands.hit_id[bad]} is on a module the Generic detector lacks "
            f"(volume {cands.volume[bad]}, layer {cands.layer[bad]}, module {cands.module[bad]})",
            column="module_id",
        )
    d = cands.xyz - modules.center[rows]
    loc = np.einsum("nij,ni->nj", modules.rotation[rows], d)
    return loc[:, :2], rows


def acts_kalman_fit(
    cands: Candidates,
    seeds: np.ndarray | None = None,
    *,
    particle: str = "pion",
    chunk: int = 5000,
    initial_sigmas: tuple[float, ...] = INITIAL_SIGMAS,
    initial_sigma_ptrel: float = 0.1,
    multiple_scattering: bool = True,
    energy_loss: bool = True,
    bfield: float = BFIELD,
    simulation: Any = None,
) -> ActsKalmanResult:
    """Fit candidates with the ACTS Kalman filter (see the module docstring).

    Args:
        cands: candidates on the ACTS Generic detector (lhcml-simulated events).
        seeds: (n, 5) perigee seeds ``qopt, theta, phi, d0, z0``; default: the helix fit.
        particle: ACTS particle hypothesis: ``pion``, ``muon``, ``electron``, ``kaon``,
            ``proton``.
        chunk: candidates per sequencer event.
        initial_sigmas: seed sigmas (loc0, loc1, phi, theta, -, time).
        initial_sigma_ptrel: relative pT sigma of the seed.
        multiple_scattering, energy_loss: material effects in the fit.
        bfield: field [T] (must match the simulation).
        simulation: a :class:`lhcml.simulation.detector.DetectorSimulation` to reuse.

    Returns:
        An :class:`ActsKalmanResult`.
    """
    import acts
    import acts.examples as ae

    from lhcml.simulation import _acts_elements as el
    from lhcml.simulation.config import DetectorConfig, SimulationConfig
    from lhcml.simulation.detector import DetectorSimulation

    if seeds is None:
        from lhcml.fitting.helix import helix_fit
        from lhcml.fitting.kalman import pad

        padded, mask = pad(cands.xyz, cands.offsets)
        vol, _ = pad(cands.volume.astype(np.int64)[:, None], cands.offsets)
        seeds = helix_fit(padded, mask, vol[..., 0], bfield=bfield)
    sim = simulation or DetectorSimulation(
        SimulationConfig(detector=DetectorConfig(bfield_t=bfield))
    )
    hypothesis = getattr(acts.ParticleHypothesis, particle)
    level = acts.logging.WARNING
    loc, _ = local_coordinates(cands, sim.modules)
    var = geometry.hit_resolution(cands.volume) ** 2
    n = len(cands)
    chunks = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    params = np.full((n, 5), np.nan)
    covs = np.full((n, 5, 5), np.nan)
    chi2 = np.full(n, np.nan)
    ndf = np.full(n, -1, np.int64)
    good_seed = np.all(np.isfinite(seeds), axis=1)
    perigee = acts.Surface.createPerigee(acts.Vector3(0, 0, 0))

    class _Feed(ae.IAlgorithm):
        def __init__(self) -> None:
            ae.IAlgorithm.__init__(self, "LhcmlFitFeed", level)
            self.meas = ae.WriteDataHandle(self, ae.MeasurementContainer, "OutputMeasurements")
            self.meas.initialize("measurements")
            self.protos = ae.WriteDataHandle(self, ae.ProtoTrackContainer, "OutputProtoTracks")
            self.protos.initialize("lhcml_protos")
            self.seeds = ae.WriteDataHandle(self, ae.ConstTrackContainer, "OutputSeeds")
            self.seeds.initialize("lhcml_seed_tracks")
            #: candidate index of each proto track of the current chunk
            self.cand_index: dict[int, np.ndarray] = {}

        def execute(self, ctx: Any) -> Any:
            lo, hi = chunks[ctx.eventNumber]
            a, b = int(cands.offsets[lo]), int(cands.offsets[hi])
            mc = ae.MeasurementContainer()
            mc.reserve(b - a)
            for i in range(a, b):
                gid = acts.GeometryIdentifier(
                    volume=int(cands.volume[i]),
                    layer=int(cands.layer[i]),
                    sensitive=int(cands.module[i]),
                )
                mc.emplaceMeasurement(
                    gid, [0, 1], [float(loc[i, 0]), float(loc[i, 1])], [var[i, 0], var[i, 1]]
                )
            pc = ae.ProtoTrackContainer()
            tc = ae.TrackContainer()
            used = []
            for c in range(lo, hi):
                if not good_seed[c]:
                    continue
                used.append(c)
                pt = ae.ProtoTrack()
                pt.extend(range(int(cands.offsets[c]) - a, int(cands.offsets[c + 1]) - a))
                pc.append(pt)
                qopt, theta, phi, d0, z0 = seeds[c]
                tr = tc.makeTrack()
                tr.referenceSurface = perigee
                tr.parameters = acts.BoundVector([d0, z0, phi, theta, qopt * np.sin(theta), 0.0])
                tr.covariance = acts.BoundMatrix.Identity()
                tr.particleHypothesis = hypothesis
            self.cand_index[ctx.eventNumber] = np.array(used, dtype=np.int64)
            self.meas(ctx, mc)
            self.protos(ctx, pc)
            self.seeds(ctx, tc.makeConst())
            return ae.ProcessCode.SUCCESS

    class _Collect(ae.IAlgorithm):
        def __init__(self, feed: _Feed) -> None:
            ae.IAlgorithm.__init__(self, "LhcmlFitCollect", level)
            self.feed = feed
            self.tracks = ae.ReadDataHandle(self, ae.ConstTrackContainer, "InputTracks")
            self.tracks.initialize("lhcml_kf_tracks")

        def execute(self, ctx: Any) -> Any:
            tc = self.tracks(ctx.eventStore)
            used = self.feed.cand_index.pop(ctx.eventNumber)
            lo = chunks[ctx.eventNumber][0]
            a = int(cands.offsets[lo])
            if len(tc) == 0:
                return ae.ProcessCode.SUCCESS
            par = np.asarray(tc.parameters, dtype=np.float64).reshape(-1, 6)
            cov = np.asarray(tc.covariance, dtype=np.float64).reshape(-1, 6, 6)
            if len(tc) == len(used):
                which = used
            else:  # failed fits are missing: map by the first measurement index
                first = []
                for tr in tc:
                    idx = -1
                    for ts in tr.trackStates:
                        if ts.hasUncalibratedSourceLink():
                            sl = ae.IndexSourceLink.fromSourceLink(ts.uncalibratedSourceLink)
                            idx = sl.index() + a
                            break
                    first.append(idx)
                which = np.searchsorted(cands.offsets, np.array(first), side="right") - 1
            d0, z0, phi, theta, qop = (par[:, i] for i in range(5))
            sth = np.sin(theta)
            params[which] = np.column_stack([qop / sth, theta, phi, d0, z0])
            # Jacobian (d0, z0, phi, theta, qop) -> (qopt, theta, phi, d0, z0).
            jac = np.zeros((len(par), 5, 5))
            jac[:, 0, 4] = 1.0 / sth
            jac[:, 0, 3] = -qop * np.cos(theta) / sth**2
            jac[:, 1, 3] = 1.0
            jac[:, 2, 2] = 1.0
            jac[:, 3, 0] = 1.0
            jac[:, 4, 1] = 1.0
            covs[which] = jac @ cov[:, :5, :5] @ np.transpose(jac, (0, 2, 1))
            chi2[which] = np.asarray(tc.chi2, dtype=np.float64)
            ndf[which] = np.asarray(tc.ndf, dtype=np.int64)
            return ae.ProcessCode.SUCCESS

    clock = _Clock()
    seq = ae.Sequencer(
        events=len(chunks),
        numThreads=1,
        trackFpes=False,
        logLevel=level,
        outputDir="",
        outputTimingFile="",
    )
    keep: list[Any] = []

    def add(alg: Any) -> None:
        keep.append(alg)
        seq.addAlgorithm(alg)

    feed = _Feed()
    add(feed)
    add(
        ae.TracksToParameters(
            level=level, inputTracks="lhcml_seed_tracks", outputTrackParameters="lhcml_seed0"
        )
    )
    smear = ae.TrackParameterSmearing.Config()
    smear.inputTrackParameters = "lhcml_seed0"
    smear.outputTrackParameters = "lhcml_seed_params"
    smear.randomNumbers = ae.RandomNumbers(seed=1)
    for key in (
        "sigmaLoc0",
        "sigmaLoc1",
        "sigmaPhi",
        "sigmaTheta",
        "sigmaPtRel",
        "sigmaTime",
        "sigmaLoc0PtA",
        "sigmaLoc0PtB",
        "sigmaLoc1PtA",
        "sigmaLoc1PtB",
    ):
        setattr(smear, key, 0.0)
    smear.initialSigmas = list(initial_sigmas)
    smear.initialSigmaPtRel = initial_sigma_ptrel
    smear.initialVarInflation = [1.0] * 6
    smear.particleHypothesis = hypothesis
    add(ae.TrackParameterSmearing(smear, level))
    fit = ae.makeKalmanFitterFunction(
        sim.tracking_geometry,
        sim.field,
        multipleScattering=multiple_scattering,
        energyLoss=energy_loss,
        reverseFilteringMomThreshold=0.0,
        reverseFilteringCovarianceScaling=100.0,
        freeToBoundCorrection=ae.FreeToBoundCorrection(False),
        chi2Cut=float("inf"),
        useJosephFormulation=False,
        level=level,
    )
    add(el.Mark("before_fit", clock))
    add(
        ae.TrackFittingAlgorithm(
            level=level,
            inputMeasurements="measurements",
            inputProtoTracks="lhcml_protos",
            inputInitialTrackParameters="lhcml_seed_params",
            inputClusters="",
            outputTracks="lhcml_kf_tracks",
            pickTrack=-1,
            fit=fit,
            calibrator=ae.makePassThroughCalibrator(),
            linkForward=False,
            referenceSurface=perigee,
        )
    )
    add(el.Mark("after_fit", clock))
    add(_Collect(feed))
    if chunks:
        seq.run()
    keep.clear()
    return ActsKalmanResult(params=params, cov=covs, chi2=chi2, ndf=ndf, fit_seconds=clock.total)
