"""Evaluation of an anomaly detector: background vs each signal sample, for every score.

Per signal and score: AUC with its statistical uncertainty (Hanley & McNeil 1982) and
background rejection ``1 / eps_B`` at 20 % and 50 % signal efficiency with the binomial
uncertainty of ``eps_B`` (:func:`lhcml.jets.evaluation.binary_metrics`). Writes
``metrics.json`` (top-level ``auc``: the primary score on the first signal), ROC curves
and score distributions (PNG).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lhcml.anomaly.data import ConstituentJets
from lhcml.anomaly.scores import SCORES, AnomalyDetector
from lhcml.anomaly.train import DataConfig, embed_jets
from lhcml.errors import ConfigError
from lhcml.io.atomic import write_atomic, write_json_atomic
from lhcml.jets.evaluation import binary_metrics, roc

#: Signal efficiencies of the background rejections.
WORKING_POINTS: tuple[float, ...] = (0.2, 0.5)
#: The score reported as ``auc`` at the top of ``metrics.json``.
PRIMARY_SCORE = "clr"


def auc_uncertainty(auc: float, n_signal: int, n_background: int) -> float:
    """Standard error of an AUC (Hanley & McNeil, Radiology 143 (1982) 29)."""
    a = float(auc)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = a * (1 - a) + (n_signal - 1) * (q1 - a * a) + (n_background - 1) * (q2 - a * a)
    return float(np.sqrt(max(var, 0.0) / (n_signal * n_background)))


def score_jets(
    detector: AnomalyDetector, jets: ConstituentJets, batch_size: int = 2048
) -> dict[str, np.ndarray]:
    """Every score of every jet, ``{score: (n_jets,)}`` (CPU, eval mode)."""
    detector.eval()
    h, z = embed_jets(detector.encoder, jets.x, batch_size)
    out: dict[str, list[np.ndarray]] = {s: [] for s in SCORES}
    for i in range(0, len(h), batch_size):
        sc = detector.scores_from(h[i : i + batch_size], z[i : i + batch_size])
        for k, v in sc.items():
            out[k].append(v.numpy())
    return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


def separation(background: np.ndarray, signal: np.ndarray) -> dict[str, Any]:
    """AUC (+ uncertainty) and rejections of ``signal`` against ``background`` scores."""
    labels = np.r_[np.zeros(len(background)), np.ones(len(signal))]
    m = binary_metrics(labels, np.r_[background, signal], WORKING_POINTS)
    m["auc_unc"] = auc_uncertainty(m["auc"], m["n_signal"], m["n_background"])
    return m


def evaluate(
    detector: AnomalyDetector,
    cfg: dict[str, Any],
    background: Sequence[str],
    signals: Sequence[str],
    out_dir: str | Path,
    *,
    split: str | None = "test",
    max_background: int | None = 10000,
    max_signal: int | None = None,
    primary: str | None = None,
    name: str = "",
) -> dict[str, Any]:
    """Score background and signal samples; write ``metrics.json`` and plots.

    Args:
        detector: a trained detector (:func:`lhcml.anomaly.train.load_detector`).
        cfg: its config (the ``data`` section fixes constituents, pT scale, splits).
        background: background sample directories.
        signals: signal sample directories, one entry per signal point.
        out_dir: output directory.
        split: the split of both (``test``: jets never trained on) or None (all).
        max_background, max_signal: caps of jets per sample (the first ones).
        primary: the score of the top-level ``auc`` (default: the config's
            ``primary_score``, else :data:`PRIMARY_SCORE`).

    Raises:
        InputError: unreadable or empty samples.
        ConfigError: no signal, unknown primary score.
    """
    if not signals:
        raise ConfigError("evaluate: at least one --signal sample is needed")
    primary = primary or cfg.get("primary_score", PRIMARY_SCORE)
    if primary not in SCORES:
        raise ConfigError(f"--score: unknown score {primary!r}; choose from {', '.join(SCORES)}")
    data_cfg = dict(cfg.get("data", {}))
    data_cfg["background"] = list(background)
    data = DataConfig(**data_cfg)
    t0 = time.perf_counter()
    bkg = data.read(list(background), split, max_background, "background")
    bkg_scores = score_jets(detector, bkg, data.eval_batch_size)
    per_signal: dict[str, Any] = {}
    sig_scores: dict[str, dict[str, np.ndarray]] = {}
    n_scored = len(bkg)
    for path in signals:
        label = Path(path).name or str(path)
        sig = data.read([path], split, max_signal, "signal")
        sc = score_jets(detector, sig, data.eval_batch_size)
        n_scored += len(sig)
        sig_scores[label] = sc
        per_signal[label] = {s: separation(bkg_scores[s], sc[s]) for s in SCORES}
        per_signal[label]["path"] = str(path)
    seconds = time.perf_counter() - t0
    first = next(iter(per_signal.values()))
    metrics: dict[str, Any] = {
        "name": name or cfg.get("name", ""),
        "primary_score": primary,
        "auc": first[primary]["auc"],
        "split": split or "all",
        "n_background": len(bkg),
        "background": list(background),
        "signals": per_signal,
        "mean_auc": {s: float(np.mean([v[s]["auc"] for v in per_signal.values()])) for s in SCORES},
        "jets_per_s": n_scored / max(seconds, 1e-9),
        "torch_threads": torch.get_num_threads(),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "metrics.json", metrics)
    _plots(bkg_scores, sig_scores, primary, out)
    return metrics


def _plots(
    bkg: dict[str, np.ndarray], sig: dict[str, dict[str, np.ndarray]], primary: str, out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, sc in sig.items():
        labels = np.r_[np.zeros(len(bkg[primary])), np.ones(len(sc[primary]))]
        es, eb = roc(labels, np.r_[bkg[primary], sc[primary]])
        keep = eb > 0
        axes[0].plot(es[keep], 1 / eb[keep], label=label)
    axes[0].set(xlabel="signal efficiency", ylabel="background rejection", yscale="log")
    axes[0].set_title(f"ROC, score '{primary}'")
    axes[0].legend(fontsize=7)
    lo, hi = np.percentile(
        np.concatenate([bkg[primary], *[s[primary] for s in sig.values()]]), [0.5, 99.5]
    )
    bins = np.linspace(lo, hi, 60)
    axes[1].hist(
        bkg[primary], bins, density=True, histtype="stepfilled", alpha=0.3, label="background"
    )
    for label, sc in sig.items():
        axes[1].hist(sc[primary], bins, density=True, histtype="step", label=label)
    axes[1].set(xlabel=f"score '{primary}'", ylabel="density")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    write_atomic(out / "roc.png", lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def score_table(detector: AnomalyDetector, jets: ConstituentJets, batch_size: int = 2048) -> Any:
    """A pyarrow table of per-jet scores (``jet``, ``process``, ``jet_pt``, one column
    per score) for ``lhcml anomaly score``."""
    import pyarrow as pa

    sc = score_jets(detector, jets, batch_size)
    cols = {
        "jet": np.arange(len(jets), dtype=np.int64),
        "process": jets.process.astype(np.int64),
        "jet_pt": jets.jet_pt.astype(np.float32),
        **{f"score_{k}": v.astype(np.float32) for k, v in sc.items()},
    }
    return pa.table(cols)
