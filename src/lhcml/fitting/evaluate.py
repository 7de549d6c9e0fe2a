"""Evaluation of track fits: resolutions versus pT and eta, pulls, charge, quality rates.

Residuals are ``fitted - true`` at the perigee (:mod:`lhcml.fitting.targets`), except
q/pT, whose *relative* residual ``(fitted - true) / true`` is used (the resolution the
targets quote). Widths come from the foundation's estimators
(:mod:`lhcml.metrics.resolution`): iterative 3-sigma clipping (``clipped_rms``), the
Gaussian core fit (``gauss``) and ``sigma68``. Pulls are ``(fitted - true) / sigma``
with the fitter's own uncertainty; a calibrated fitter has pull widths of 1.

Quality: :func:`quality_rates` runs :func:`lhcml.metrics.tracking.tracking_performance`
on the candidates before and after :func:`lhcml.fitting.quality.clean_candidates`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.fitting.candidates import Candidates
from lhcml.fitting.dataset import FeatureConfig
from lhcml.fitting.targets import PARAMS, wrap_angle

#: Bins of the resolution tables and plots.
PT_BINS: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
ETA_BINS: tuple[float, ...] = (-2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
#: Units of the residuals per parameter (q/pT is relative).
UNITS: dict[str, str] = {"qopt": "rel.", "theta": "rad", "phi": "rad", "d0": "mm", "z0": "mm"}


@dataclass
class Prediction:
    """TrackFormer outputs for candidates.

    Attributes:
        params: (n, 5) ``qopt, theta, phi, d0, z0``.
        sigma: (n, 5) predicted uncertainties.
        cand_score: (n,) probability that the candidate is real.
        hit_score: (N,) probability that each hit belongs.
        model_seconds: time in the network's forward passes.
        total_seconds: time including feature computation (helix seed) and batching.
    """

    params: np.ndarray
    sigma: np.ndarray
    cand_score: np.ndarray
    hit_score: np.ndarray
    model_seconds: float
    total_seconds: float


def predict(
    model: Any,
    features: FeatureConfig,
    loss: str,
    cands: Candidates,
    *,
    batch_size: int = 512,
    threads: int | None = None,
    quality: bool = True,
) -> Prediction:
    """Run TrackFormer on ``cands`` (equal-length batches, inference mode).

    Args:
        model: a :class:`lhcml.fitting.trackformer.TrackFormer` (eval mode).
        features: the feature config it was trained with.
        loss: its loss (how to read the outputs).
        cands: candidates.
        batch_size: candidates per forward pass (see
            :func:`lhcml.fitting.dataset.length_buckets`).
        threads: torch CPU threads (None: leave as is).
        quality: also run the quality heads (False: scores are NaN, fitting only).
    """
    import torch

    from lhcml.fitting.dataset import denormalise, encode, length_buckets
    from lhcml.fitting.losses import estimate

    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    enc = encode(cands, features)
    n = len(cands)
    mean = np.zeros((n, 5))
    sig = np.zeros((n, 5))
    cscore = np.full(n, np.nan)
    hscore = np.full(len(enc.hit_features), np.nan)
    model_s = 0.0
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        for batch in length_buckets(enc, batch_size):
            t1 = time.perf_counter()
            out = model(
                batch["hits"].to(device),
                batch["detector_id"].to(device),
                None,
                batch["global"].to(device),
                quality,
            )
            mu, sd = estimate(out["params"], loss)
            if quality:
                cs = torch.sigmoid(out["cand_logit"])
                hs = torch.sigmoid(out["hit_logit"])
            model_s += time.perf_counter() - t1
            idx = batch["index"]
            mean[idx] = mu.double().cpu().numpy()
            sig[idx] = sd.double().cpu().numpy()
            if quality:
                cscore[idx] = cs.double().cpu().numpy()
                hscore[batch["rows"]] = hs.double().cpu().numpy()
    params = denormalise(mean, enc.reference, enc.scale)
    calib = getattr(model, "sigma_scale", None)
    sigma = sig * enc.scale * (1.0 if calib is None else calib.double().cpu().numpy())
    total = time.perf_counter() - t0
    if threads:
        torch.set_num_threads(old)
    return Prediction(params, sigma, cscore, hscore, model_s, total)


def residuals(params: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(n, 5) residuals: relative for q/pT, wrapped for phi, absolute otherwise."""
    d = np.asarray(params, np.float64) - truth
    d[:, 2] = wrap_angle(d[:, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        d[:, 0] = d[:, 0] / truth[:, 0]
    return d


def pulls(params: np.ndarray, sigma: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(n, 5) ``(fitted - true) / sigma`` (phi wrapped)."""
    d = np.asarray(params, np.float64) - truth
    d[:, 2] = wrap_angle(d[:, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        return d / sigma


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def resolution_summary(
    params: np.ndarray,
    truth: np.ndarray,
    pt: np.ndarray,
    eta: np.ndarray,
    sigma: np.ndarray | None = None,
    *,
    pt_bins: Sequence[float] = PT_BINS,
    eta_bins: Sequence[float] = ETA_BINS,
) -> dict[str, Any]:
    """Resolutions (overall, vs pT, vs eta), pulls and charge-sign accuracy.

    Args:
        params: (n, 5) fitted parameters.
        truth: (n, 5) true parameters.
        pt, eta: (n,) true pT and eta (binning).
        sigma: (n, 5) fitted uncertainties (pulls), optional.

    Returns:
        JSON-friendly dict: ``n``, ``failed``, ``charge_accuracy``, and per parameter
        ``overall`` (clipped_rms, gauss, sigma68), ``vs_pt`` / ``vs_eta`` (clipped_rms and
        gauss, :meth:`BinnedResolution.to_dict`) and ``pull`` (clipped_rms and gauss).
    """
    from lhcml.metrics.resolution import binned_resolution, clipped_rms, gaussian_core, sigma68

    res = residuals(params, truth)
    ok = np.all(np.isfinite(params), axis=1)
    out: dict[str, Any] = {
        "n": len(params),
        "failed": int((~ok).sum()),
        "charge_accuracy": _clean(
            float(np.mean(np.sign(params[ok, 0]) == np.sign(truth[ok, 0])))
            if ok.any()
            else math.nan
        ),
    }
    pl = pulls(params, sigma, truth) if sigma is not None else None
    for j, name in enumerate(PARAMS):
        entry: dict[str, Any] = {"unit": UNITS[name]}
        r = res[ok, j]
        entry["overall"] = {
            "clipped_rms": clipped_rms(r).to_dict(),
            "gauss": gaussian_core(r).to_dict(),
            "sigma68": sigma68(r).to_dict(),
        }
        for var, x, bins in (("pt", pt, pt_bins), ("eta", eta, eta_bins)):
            entry[f"vs_{var}"] = {
                m: binned_resolution(r, x[ok], bins, m).to_dict() for m in ("clipped_rms", "gauss")
            }
        if pl is not None:
            p = pl[ok, j]
            entry["pull"] = {
                "clipped_rms": clipped_rms(p).to_dict(),
                "gauss": gaussian_core(p).to_dict(),
            }
            entry["pull_vs_pt"] = binned_resolution(p, pt[ok], pt_bins, "clipped_rms").to_dict()
        out[name] = entry
    return out


def evaluate_model(
    model: Any, features: FeatureConfig, loss: str, cands: Candidates
) -> dict[str, Any]:
    """Validation metrics of a model on candidates: resolutions and pulls on the pure
    ones, candidate / hit classification accuracy on all."""
    pred = predict(model, features, loss, cands)
    pure = cands.is_pure & np.all(np.isfinite(cands.targets), axis=1)
    out: dict[str, Any] = {
        "candidates": len(cands),
        "pure": int(pure.sum()),
        "resolution": resolution_summary(
            pred.params[pure],
            cands.targets[pure],
            cands.pt[pure],
            cands.eta[pure],
            pred.sigma[pure],
        ),
    }
    real = cands.is_real
    out["candidate_accuracy"] = _clean(float(np.mean((pred.cand_score >= 0.5) == real)))
    out["hit_accuracy"] = _clean(float(np.mean((pred.hit_score >= 0.5) == cands.hit_label)))
    out["tracks_per_second"] = _clean(len(cands) / pred.total_seconds)
    return out


def quality_rates(
    events: Mapping[int, Any],
    cands: Candidates,
    cand_score: np.ndarray,
    hit_score: np.ndarray,
    cleaning: Any = None,
    *,
    matching: str = "atlas",
) -> dict[str, Any]:
    """Efficiency, fake and duplicate rates before and after cleaning.

    Args:
        events: event id -> :class:`lhcml.data.Event` (truth and particles) of the
            candidates' events.
        cands: candidates (all events).
        cand_score, hit_score: model scores.
        cleaning: a :class:`lhcml.fitting.quality.CleaningConfig`.
        matching: truth matching of :mod:`lhcml.metrics.tracking`.

    Returns:
        ``{"before": {...}, "after": {...}, "cleaning": {...}}`` with the combined
        :class:`TrackingPerformance` totals of each.
    """
    from lhcml.fitting.quality import CleaningConfig, assignment_table, clean_candidates
    from lhcml.metrics.tracking import TrackingPerformance, tracking_performance

    cfg = cleaning or CleaningConfig()
    cleaned, _ = clean_candidates(cands, cand_score, hit_score, cfg)
    out: dict[str, Any] = {"cleaning": cfg.to_dict()}
    for name, cs in (("before", cands), ("after", cleaned)):
        perfs = []
        for eid, ev in events.items():
            perfs.append(
                tracking_performance(
                    assignment_table(cs, eid),
                    ev.truth,
                    ev.particles,
                    hits=ev.hits,
                    matching=matching,
                )
            )
        total = TrackingPerformance.combine(perfs).to_dict()
        out[name] = {
            k: total[k] for k in ("efficiency", "fake_rate", "duplicate_rate") if k in total
        }
        out[name]["tracks"] = len(cs)
    return out


def plot_resolutions(
    fits: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    truth: np.ndarray,
    pt: np.ndarray,
    eta: np.ndarray,
    out_dir: str | Path,
    *,
    method: str = "clipped_rms",
    title: str | None = None,
    which: Sequence[str] = PARAMS,
) -> list[Path]:
    """Resolution of every parameter vs pT and vs eta, one curve per fitter, and pull
    widths vs pT; PNGs in ``out_dir``.

    Args:
        fits: fitter name -> ``(params, sigma or None)``.
        truth, pt, eta: true parameters and binning variables.
        out_dir: output directory.
        method: resolution estimator.
        title: plot title.
        which: the parameters to plot.
    """
    from lhcml.metrics.plots import plot_resolution
    from lhcml.metrics.resolution import binned_resolution

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for j, name in enumerate(PARAMS):
        if name not in which:
            continue
        for var, x, bins, logx in (("pt", pt, PT_BINS, True), ("eta", eta, ETA_BINS, False)):
            curves = []
            for label, (params, _sigma) in fits.items():
                r = residuals(params, truth)[:, j]
                curves.append((label, binned_resolution(r, x, bins, method)))
            ylabel = f"{name} resolution ({UNITS[name]})"
            written.append(
                plot_resolution(
                    curves,
                    out_dir / f"resolution_{name}_vs_{var}.png",
                    xlabel="true pT [GeV]" if var == "pt" else "true eta",
                    ylabel=ylabel,
                    logx=logx,
                    title=title,
                )
            )
        curves = [
            (label, binned_resolution(pulls(p, s, truth)[:, j], pt, PT_BINS, method))
            for label, (p, s) in fits.items()
            if s is not None
        ]
        if curves:
            written.append(
                plot_resolution(
                    curves,
                    out_dir / f"pull_{name}_vs_pt.png",
                    xlabel="true pT [GeV]",
                    ylabel=f"{name} pull width",
                    logx=True,
                    title=title,
                )
            )
    return written


def run_comparison(
    events_dir: str | Path,
    out_dir: str | Path,
    *,
    fitters: Sequence[str] = ("helix", "kalman", "acts", "trackformer"),
    model_dir: str | Path | None = None,
    selection: Any = None,
    max_events: int | None = None,
    particle: str = "pion",
    quality: bool = True,
    threads: int = 1,
    corruption_seed: int = 12345,
    module_frames: bool = True,
    plots: bool = True,
    submissions: str | Path | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Fit the same truth tracks with each fitter; write ``summary.json`` and plots.

    Args:
        events_dir: simulated events (ACTS Generic detector) with truth.
        out_dir: output directory.
        fitters: any of ``helix``, ``kalman`` (lhcml KF), ``acts`` (ACTS KF), ``trackformer``.
        model_dir: TrackFormer run directory.
        selection: :class:`~lhcml.fitting.candidates.TruthSelection` of the tracks.
        max_events: at most this many events.
        particle: ACTS particle hypothesis.
        quality: also measure efficiency / fake / duplicate rates before and after
            cleaning on candidates with injected corruption (TrackFormer needed).
        threads: torch threads for TrackFormer (1: comparable with the single-threaded
            Kalman filters).
        corruption_seed: seed of the injected corruption.
        module_frames: endcap measurement axes from the Generic detector's module table
            (False: radial; for events not simulated on the Generic detector).
        plots: write the resolution and pull plots (15 PNGs, a few seconds).
        submissions: a track finder's ``event*-submission.csv`` directory: the quality
            rates are then measured on its tracks instead of on truth tracks with
            injected corruption.
        progress: optional callable ``(message)``.

    Returns:
        The summary dict (also in ``summary.json``): per fitter the
        :func:`resolution_summary` and ``tracks_per_second``; ``quality`` if asked.
    """
    from lhcml.fitting.candidates import (
        Candidates,
        Corruption,
        TruthSelection,
        corrupt_candidates,
        truth_candidates,
    )
    from lhcml.fitting.geometry import measurement_frames
    from lhcml.fitting.helix import helix_fit
    from lhcml.fitting.kalman import kalman_fit, pad
    from lhcml.io import list_events, read_event, write_json_atomic

    say = progress or (lambda _m: None)
    sel = selection or TruthSelection(pt_min=0.5, pt_max=10.0, eta_max=2.5)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = list_events(events_dir)[:max_events]
    events = {eid: read_event(events_dir, eid, parts=("hits", "truth", "particles")) for eid in ids}
    cands = Candidates.concat(truth_candidates(ev, sel) for ev in events.values())
    say(f"{len(cands)} truth tracks in {len(ids)} event(s)")
    frames = measurement_frames(
        cands.xyz, cands.volume, cands.layer, cands.module, use_modules=module_frames
    )
    fits: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    speed: dict[str, float] = {}
    extra: dict[str, Any] = {}
    padded, mask = pad(cands.xyz, cands.offsets)
    vol, _ = pad(cands.volume.astype(np.int64)[:, None], cands.offsets)
    fr, _ = pad(frames[:, None], cands.offsets)
    t0 = time.perf_counter()
    seeds = helix_fit(padded, mask, vol[..., 0], frames=fr[..., 0])
    helix_s = time.perf_counter() - t0
    if "helix" in fitters:
        fits["helix"] = (seeds, None)
        speed["helix"] = len(cands) / helix_s
    if "kalman" in fitters:
        say("lhcml Kalman filter")
        few = cands.select(np.arange(min(len(cands), 2)))
        kalman_fit(few.xyz, few.volume, few.layer, few.offsets)  # compile before timing
        t0 = time.perf_counter()
        k = kalman_fit(cands.xyz, cands.volume, cands.layer, cands.offsets, seeds, frames=frames)
        speed["kalman"] = len(cands) / (time.perf_counter() - t0)
        fits["kalman"] = (k.params, k.sigma)
        extra["kalman"] = {"note": "includes nothing but the fit (seeds given)"}
    if "acts" in fitters:
        say("ACTS Kalman filter")
        from lhcml.fitting.acts_kf import acts_kalman_fit

        a = acts_kalman_fit(cands, seeds, particle=particle)
        fits["acts"] = (a.params, a.sigma)
        speed["acts"] = a.tracks_per_second
        extra["acts"] = {"particle": particle, "fit_seconds": a.fit_seconds}
    model = None
    if "trackformer" in fitters or quality:
        from lhcml.fitting.checkpoint import load_model

        model, feat, loss = load_model(model_dir)
    if "trackformer" in fitters:
        say("TrackFormer")
        warm = cands.select(np.arange(min(len(cands), 256)))
        predict(model, feat, loss, warm, threads=threads, quality=False)
        pred = predict(model, feat, loss, cands, threads=threads, quality=False)
        fits["trackformer"] = (pred.params, pred.sigma)
        speed["trackformer"] = len(cands) / pred.total_seconds
        extra["trackformer"] = {
            "threads": threads,
            "model_only_tracks_per_second": len(cands) / pred.model_seconds,
            "model_dir": str(model_dir),
        }
    summary: dict[str, Any] = {
        "events": str(events_dir),
        "n_events": len(ids),
        "tracks": len(cands),
        "selection": {k: getattr(sel, k) for k in ("pt_min", "pt_max", "eta_max", "min_hits")},
        "pt_bins": list(PT_BINS),
        "eta_bins": list(ETA_BINS),
        "fitters": {},
    }
    for name, (params, sigma) in fits.items():
        summary["fitters"][name] = {
            "tracks_per_second": speed[name],
            "resolution": resolution_summary(params, cands.targets, cands.pt, cands.eta, sigma),
            **extra.get(name, {}),
        }
    if quality and model is not None:
        say("quality heads: rates before / after cleaning")
        parts = []
        if submissions is not None:
            from lhcml.fitting.candidates import from_assignment
            from lhcml.metrics.evaluate import read_submission

            for eid, ev in events.items():
                path = Path(submissions) / f"event{eid:09d}-submission.csv"
                parts.append(from_assignment(ev, read_submission(path)))
        else:
            rng = np.random.default_rng(corruption_seed)
            for eid, ev in events.items():
                truth = cands.select(cands.event_id == eid)
                parts += [truth, corrupt_candidates(ev, truth, rng, Corruption())]
        mixed = Candidates.concat(parts)
        qp = predict(model, feat, loss, mixed)
        # A finder's output is cleaned with the cuts chosen for it (the model's
        # cleaning.json, as `lhcml fit infer --clean` does); injected corruption with the
        # defaults the heads were first validated with.
        cleaning = None
        if submissions is not None:
            from lhcml.fitting.quality import cleaning_from_model

            cleaning = cleaning_from_model(model_dir)
        summary["quality"] = quality_rates(events, mixed, qp.cand_score, qp.hit_score, cleaning)
        summary["quality"]["source"] = (
            f"finder output {submissions}" if submissions else "truth + injected corruption"
        )
        summary["quality"]["candidate_accuracy"] = float(
            np.mean((qp.cand_score >= 0.5) == mixed.is_real)
        )
        summary["quality"]["hit_accuracy"] = float(
            np.mean((qp.hit_score >= 0.5) == mixed.hit_label)
        )
    if plots:
        plot_resolutions(fits, cands.targets, cands.pt, cands.eta, out_dir / "plots")
    write_json_atomic(out_dir / "summary.json", summary)
    return summary
