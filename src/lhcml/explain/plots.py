"""Plots of the explain steps (mplhep ATLAS style, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml.metrics.plots import _figure, _style, save_png


def importance_bars(results: list[Any], groups: list[str], path: Path, model: str) -> Path:
    """One horizontal bar chart per group of inputs: drop of the metric, +- std."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _style():
        n = max(len(results), 1)
        fig = Figure(figsize=(7 * n, 6), layout="constrained")
        FigureCanvasAgg(fig)
        for i, (imp, group) in enumerate(zip(results, groups, strict=True)):
            ax = fig.add_subplot(1, n, i + 1)
            order = np.argsort(imp.mean)
            ax.barh(np.array(imp.names)[order], imp.mean[order], xerr=imp.std[order], color="C0")
            ax.set_xlabel(f"drop of {imp.metric} (baseline {imp.baseline:.4g})")
            ax.set_title(f"{model}: {group}", fontsize=12)
        return save_png(fig, path)


def neuron_ranking(layers: dict[str, dict], path: Path, model: str) -> Path:
    """Sorted neuron drops per layer (LayerNorm dashed) and the cumulative share."""
    with _style():
        fig, ax = _figure()
        for name, layer in layers.items():
            drops = np.sort([it["drop"] for it in layer["items"]])[::-1]
            style = "--" if "Norm" in layer["type"] else "-"
            ax.plot(
                np.arange(1, len(drops) + 1),
                drops,
                style,
                label=name if len(layers) <= 12 else None,
            )
        ax.set_xscale("log")
        ax.set_xlabel("neuron rank in its layer")
        ax.set_ylabel("drop of the metric when permuted")
        ax.set_title(f"{model}: neurons (dashed: normalisation layers)", fontsize=12)
        if len(layers) <= 12:
            ax.legend(fontsize=8)
        return save_png(fig, path)


def mi_heatmap(layers: dict[str, dict], path: Path, model: str) -> Path:
    """Layer x parameter proficiency, the joint MI written in each cell."""
    params = sorted({p for v in layers.values() for p in v["params"]})
    names = list(layers)
    grid = np.full((len(names), len(params)), np.nan)
    info = np.full_like(grid, np.nan)
    for i, n in enumerate(names):
        for j, p in enumerate(params):
            if p in layers[n]["params"]:
                grid[i, j] = layers[n]["params"][p]["proficiency"]
                info[i, j] = layers[n]["params"][p]["mi"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _style():
        fig = Figure(figsize=(2 + 1.2 * len(params), 1.5 + 0.35 * len(names)), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(params)), params)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        for i in range(len(names)):
            for j in range(len(params)):
                if np.isfinite(info[i, j]):
                    ax.text(
                        j, i, f"{info[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w"
                    )
        fig.colorbar(im, ax=ax, label="proficiency I(X;Y_B)/H(Y_B)")
        ax.set_title(f"{model}: joint MI [nats] per layer", fontsize=11)
        return save_png(fig, path)


def rz_map(activation: np.ndarray, table: Any, formula: Any, path: Path, bins: int = 40) -> Path:
    """Mean activation in (z, r) bins, with isocurves of the formula evaluated on the bins'
    mean physics variables."""
    from scipy.stats import binned_statistic_2d

    assert table.r is not None and table.z is not None
    r, z = table.r, table.z
    edges = [np.linspace(z.min(), z.max(), bins + 1), np.linspace(r.min(), r.max(), bins + 1)]
    mean = binned_statistic_2d(z, r, activation, "mean", bins=edges).statistic
    zc, rc = 0.5 * (edges[0][1:] + edges[0][:-1]), 0.5 * (edges[1][1:] + edges[1][:-1])
    if set(formula.variables) <= {"r", "z", "eta", "theta", "rho", "phi"}:
        # Hit variables are functions of (r, z) (and phi, held at its median): the
        # formula's isocurves on a smooth grid.
        zz, rr = np.meshgrid(zc / 1000.0, rc / 1000.0, indexing="ij")
        theta = np.arctan2(rr, zz)
        grid = pd.DataFrame(
            {
                "r": rr.ravel(),
                "z": zz.ravel(),
                "theta": theta.ravel(),
                "eta": -np.log(np.tan(theta / 2)).ravel(),
                "rho": np.hypot(rr, zz).ravel(),
                "phi": np.full(rr.size, float(np.median(table.physics["phi"]))),
            }
        )
        fmean = formula.predict(grid).reshape(zz.shape)
    else:  # pair variables: the formula's mean over each bin's rows
        pred = formula.predict(table.physics)
        fmean = binned_statistic_2d(z, r, pred, "mean", bins=edges).statistic
    with _style():
        fig, ax = _figure()
        mesh = ax.pcolormesh(edges[0], edges[1], mean.T, cmap="coolwarm", shading="flat")
        fig.colorbar(mesh, ax=ax, label="mean activation")
        if np.isfinite(fmean).sum() > 4 and np.nanstd(fmean) > 0:
            cs = ax.contour(
                zc, rc, np.ma.masked_invalid(fmean.T), levels=6, colors="k", linewidths=0.8
            )
            ax.clabel(cs, fontsize=7)
        ax.set_xlabel("z [mm]")
        ax.set_ylabel("r [mm]")
        ax.set_title(
            f"{formula.neuron}: {formula.expression[:60]} (R2 {formula.r2:.2f})", fontsize=9
        )
        return save_png(fig, path)
