"""Performance plots: efficiency, fake / duplicate rates and resolutions versus pT / eta.

Figures use matplotlib's object API on the Agg canvas (no pyplot, no global figure state,
safe in threads and without a display) inside the mplhep ATLAS style as a context (the
global rcParams are left untouched). Every PNG is written atomically (temporary file +
``os.replace``), so a reader never sees a half-written plot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lhcml.io.atomic import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lhcml.metrics.resolution import BinnedResolution
    from lhcml.metrics.stats import BinnedRatio
    from lhcml.metrics.tracking import TrackingPerformance

LABELS: dict[str, str] = {
    "pt": r"$p_\mathrm{T}$ [GeV]",
    "eta": r"$\eta$",
    "vz": r"production vertex $z$ [mm]",
}


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _style() -> Any:
    import matplotlib.style
    import mplhep

    return matplotlib.style.context(mplhep.style.ATLAS)


def save_png(fig: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically (temporary file + ``os.replace``)."""
    return write_atomic(Path(path), lambda p: fig.savefig(p, format="png", dpi=dpi))


def _draw_ratio(ax: Axes, ratio: BinnedRatio, label: str, marker: str) -> None:
    ok = ratio.n > 0
    if not ok.any():
        return
    x = ratio.centers[ok]
    xerr = 0.5 * np.diff(ratio.edges)[ok]
    yerr = np.vstack([ratio.value[ok] - ratio.low[ok], ratio.high[ok] - ratio.value[ok]])
    ax.errorbar(x, ratio.value[ok], xerr=xerr, yerr=yerr, fmt=marker, label=label, capsize=0)


def plot_ratios(
    curves: Sequence[tuple[str, BinnedRatio]],
    path: str | Path,
    *,
    ylabel: str,
    xlabel: str | None = None,
    logx: bool | None = None,
    ylim: tuple[float, float] | None = (0.0, 1.05),
    title: str | None = None,
) -> Path:
    """Plot binned ratios (efficiency, rates) with their binomial intervals and save a PNG.

    Args:
        curves: ``(legend label, BinnedRatio)`` pairs drawn on one axis; empty bins skipped.
        path: output PNG.
        ylabel: y-axis label; ``xlabel`` defaults from the variable (``pt``, ``eta``).
        logx: log x axis (default: for ``pt``).
        ylim: y range (``None``: automatic).
        title: text above the axes, left-aligned.
    """
    variable = curves[0][1].variable if curves else ""
    with _style():
        fig, ax = _figure()
        for (label, ratio), marker in zip(curves, ("o", "s", "^", "v", "D"), strict=False):
            _draw_ratio(ax, ratio, label, marker)
        if logx if logx is not None else variable == "pt":
            ax.set_xscale("log")
        if curves:
            ax.set_xlim(curves[0][1].edges[0], curves[0][1].edges[-1])
        if ylim is not None:
            ax.set_ylim(*ylim)
        else:
            ax.set_ylim(bottom=0.0)
        ax.set_xlabel(xlabel or LABELS.get(variable, variable))
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, loc="left", fontsize="medium")
        if any(r.n.any() for _, r in curves):
            ax.legend(loc="best")
        return save_png(fig, path)


def plot_resolution(
    curves: Sequence[tuple[str, BinnedResolution]],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    what: str = "width",
    title: str | None = None,
) -> Path:
    """Plot binned resolutions (``what`` = ``width`` or ``mean``) versus x and save a PNG."""
    if what not in ("width", "mean"):
        raise ValueError("what must be 'width' or 'mean'")
    with _style():
        fig, ax = _figure()
        for (label, res), marker in zip(curves, ("o", "s", "^", "v", "D"), strict=False):
            y = getattr(res, what)
            yerr = getattr(res, f"{what}_err")
            ok = np.isfinite(y)
            if not ok.any():
                continue
            ax.errorbar(
                res.centers[ok],
                y[ok],
                xerr=0.5 * np.diff(res.edges)[ok],
                yerr=np.where(np.isfinite(yerr[ok]), yerr[ok], 0.0),
                fmt=marker,
                label=f"{label} ({res.method})",
            )
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, loc="left", fontsize="medium")
        if any(np.isfinite(getattr(r, what)).any() for _, r in curves):
            ax.legend(loc="upper right")
        return save_png(fig, path)


def plot_binned_rates(
    binned: Mapping[str, BinnedRatio],
    out_dir: str | Path,
    *,
    title: str,
    prefix: str = "",
    efficiency_label: str = "efficiency",
    efficiency_ylabel: str = "Tracking efficiency",
) -> list[Path]:
    """Efficiency and fake / duplicate rates versus pT and eta, one PNG per variable.

    Args:
        binned: ``efficiency_vs_{pt,eta,vz}``, ``fake_rate_vs_*``, ``duplicate_rate_vs_*``
            (missing or empty ones are skipped).
        out_dir: output directory.
        title: text above the axes.
        prefix: file-name prefix (``seed_`` for seeding plots).
        efficiency_label, efficiency_ylabel: legend and axis label of the efficiency.

    Returns:
        ``{prefix}efficiency_vs_{var}.png`` and ``{prefix}fake_duplicate_vs_{var}.png`` written.
    """
    out_dir = Path(out_dir)
    written = []
    for var in ("pt", "eta", "vz"):
        eff = binned.get(f"efficiency_vs_{var}")
        if eff is not None and eff.n.sum() > 0:
            written.append(
                plot_ratios(
                    [(efficiency_label, eff)],
                    out_dir / f"{prefix}efficiency_vs_{var}.png",
                    ylabel=efficiency_ylabel,
                    title=title,
                )
            )
        fake = binned.get(f"fake_rate_vs_{var}")
        dup = binned.get(f"duplicate_rate_vs_{var}")
        if fake is not None and dup is not None:
            written.append(
                plot_ratios(
                    [("fake rate", fake), ("duplicate rate", dup)],
                    out_dir / f"{prefix}fake_duplicate_vs_{var}.png",
                    ylabel="Rate",
                    ylim=None,
                    title=title,
                )
            )
    return written


def plot_tracking_performance(
    perf: TrackingPerformance, out_dir: str | Path, *, title: str | None = None
) -> list[Path]:
    """Write the standard tracking plots of ``perf`` to ``out_dir``.

    Files: ``efficiency_vs_pt.png``, ``efficiency_vs_eta.png``, ``efficiency_vs_vz.png``
    (when the particles have ``vz``) and, when track kinematics
    were available, ``fake_duplicate_vs_pt.png``, ``fake_duplicate_vs_eta.png``.
    """
    title = title or f"{perf.matching} matching, {perf.n_events} event(s)"
    return plot_binned_rates(perf.binned, out_dir, title=title)
