"""Tagger evaluation: accuracy, AUC, background rejection, ROC plots, throughput.

Background rejection is ``1 / eps_B`` at a fixed signal efficiency ``eps_S`` (30% and
50%, as in the Particle Transformer paper), read off the ROC curve by linear
interpolation in ``eps_S``. Its statistical uncertainty is the binomial one of eps_B
propagated: ``sigma(1/eps_B) = sqrt(eps_B (1 - eps_B) / n_B) / eps_B^2``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lhcml.errors import InputError

if TYPE_CHECKING:
    import torch

    from lhcml.jets.dataset import JetData

WORKING_POINTS: tuple[float, ...] = (0.3, 0.5)


def roc(labels: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal efficiency and background efficiency along a threshold scan.

    Args:
        labels: ``(n,)`` 1 signal, 0 background.
        score: ``(n,)`` larger is more signal-like.

    Returns:
        ``(eps_S, eps_B)``, both increasing, from (0, 0) to (1, 1).
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, score)
    return tpr, fpr


def binary_metrics(
    labels: np.ndarray, score: np.ndarray, working_points: Sequence[float] = WORKING_POINTS
) -> dict[str, Any]:
    """AUC and rejections of a signal-vs-background score.

    Args:
        labels: ``(n,)`` 1 signal, 0 background (both present).
        score: ``(n,)`` larger is more signal-like.
        working_points: signal efficiencies of the rejections.

    Returns:
        ``auc``, ``rejection_<100 wp>`` per working point (``rejection_30`` /
        ``rejection_50`` by default; ``1/eps_B``, ``inf`` if no background passes) with
        ``*_unc``, ``n_signal``, ``n_background``.

    Raises:
        InputError: a class is missing.
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).astype(int)
    n_s, n_b = int((labels == 1).sum()), int((labels == 0).sum())
    if n_s == 0 or n_b == 0:
        raise InputError(f"need signal and background jets, got {n_s} and {n_b}")
    eps_s, eps_b = roc(labels, score)
    out: dict[str, Any] = {"auc": float(roc_auc_score(labels, score))}
    for wp in working_points:
        eb = float(np.interp(wp, eps_s, eps_b))
        key = f"rejection_{round(wp * 100)}"
        out[key] = 1.0 / eb if eb > 0 else float("inf")
        out[f"{key}_unc"] = float(np.sqrt(eb * (1 - eb) / n_b) / eb**2) if eb > 0 else float("inf")
    out["n_signal"] = n_s
    out["n_background"] = n_b
    return out


def classification_metrics(
    labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy over all classes and, for each class k > 0, ``k`` vs ``classes[0]``.

    The binary score of class k against the background class 0 is
    ``p_k / (p_k + p_0)`` on the jets of those two classes. With two classes the
    binary metrics are also put at the top level.

    Args:
        labels: ``(n,)`` class indices.
        probs: ``(n, C)`` class probabilities.
        classes: class names.
    """
    labels = np.asarray(labels)
    out: dict[str, Any] = {
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "n_jets": len(labels),
        "classes": list(classes),
    }
    for k in range(1, len(classes)):
        sel = (labels == 0) | (labels == k)
        denom = probs[sel, k] + probs[sel, 0]
        score = np.divide(probs[sel, k], denom, out=np.full(int(sel.sum()), 0.5), where=denom > 0)
        out[f"{classes[k]}_vs_{classes[0]}"] = binary_metrics(labels[sel] == k, score)
    if len(classes) == 2:
        out.update(out[f"{classes[1]}_vs_{classes[0]}"])
    return out


def predict(
    model: torch.nn.Module, data: JetData, batch_size: int = 512, device: str = "cpu"
) -> tuple[np.ndarray, float]:
    """Class probabilities of a network tagger, and its inference speed.

    Args:
        model: a tagger ``model(x, v, mask) -> logits``; put in eval mode here.
        data: the jets (in order).
        batch_size: jets per forward pass.
        device: torch device.

    Returns:
        ``(probs (n, C), jets per second)`` (wall time of the forward passes).
    """
    import torch

    model.eval()
    probs = np.zeros((len(data), len(data.classes)), dtype=np.float32)
    seconds = 0.0
    # Jets sorted by length: batches with little padding; results put back in order.
    order = np.argsort(data.lengths, kind="stable")
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            index = order[start : start + batch_size]
            batch = data.batch(index)
            t0 = time.perf_counter()
            logits = model(batch["x"].to(device), batch["v"].to(device), batch["mask"].to(device))
            probs[index] = torch.softmax(logits.float(), dim=1).cpu().numpy()
            seconds += time.perf_counter() - t0
    return probs, len(data) / max(seconds, 1e-9)


def plot_roc(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Background rejection versus signal efficiency (log y), saved as PNG atomically.

    Args:
        curves: ``(legend label, labels 0/1, score)`` per tagger.
        path: output PNG.
        title: axis title.
    """
    import matplotlib.style
    import mplhep
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lhcml.metrics.plots import save_png

    # Object API on the Agg canvas (no pyplot state), mplhep style as a context only.
    with matplotlib.style.context(mplhep.style.ATLAS):
        fig = Figure(figsize=(8, 6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for name, labels, score in curves:
            eps_s, eps_b = roc(np.asarray(labels), np.asarray(score))
            ok = (eps_b > 0) & (eps_s > 0.05)
            auc = binary_metrics(labels, score)["auc"]
            ax.plot(eps_s[ok], 1.0 / eps_b[ok], label=f"{name} (AUC {auc:.4f})")
        ax.set_yscale("log")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(bottom=1.0)
        ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
        ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
        for wp in WORKING_POINTS:
            ax.axvline(wp, color="grey", lw=0.8, ls=":")
        if title:
            ax.set_title(title)
        ax.legend(loc="upper right")
        return save_png(fig, path)
