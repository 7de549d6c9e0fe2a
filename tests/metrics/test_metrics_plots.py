"""Plots: PNGs written atomically, no warnings (pytest turns warnings into errors)."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np

from lhcml.metrics.plots import plot_ratios, plot_resolution, plot_tracking_performance
from lhcml.metrics.resolution import binned_resolution
from lhcml.metrics.stats import BinnedRatio
from lhcml.metrics.tracking import tracking_performance

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000


def test_tracking_plots(hand_event, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    event, assignment = hand_event(1)
    perf = tracking_performance(assignment, event.truth, event.particles, hits=event.hits)
    rc_before = dict(mpl.rcParams)
    files = plot_tracking_performance(perf, tmp_path / "plots")
    names = sorted(p.name for p in files)
    assert names == [
        "efficiency_vs_eta.png",
        "efficiency_vs_pt.png",
        "efficiency_vs_vz.png",
        "fake_duplicate_vs_eta.png",
        "fake_duplicate_vs_pt.png",
    ]
    assert all(_is_png(p) for p in files)
    # Atomic writes leave no temporary files; the style does not leak into rcParams.
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == names
    assert dict(mpl.rcParams) == rc_before


def test_ratio_plot_with_empty_bins_and_resolution_plot(tmp_path: Path) -> None:
    empty = BinnedRatio.from_counts("eta", np.array([-1.0, 0.0, 1.0]), [0, 0], [0, 0])
    some = BinnedRatio.from_counts("eta", np.array([-1.0, 0.0, 1.0]), [1, 0], [2, 0])
    out = plot_ratios([("none", empty), ("some", some)], tmp_path / "r.png", ylabel="eff")
    assert _is_png(out)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 2, 2000)
    res = binned_resolution(rng.normal(0, 1 + x), x, [0, 1, 2, 3], "sigma68")  # last bin empty
    out = plot_resolution([("test", res)], tmp_path / "res.png", xlabel="x", ylabel="width")
    assert _is_png(out)
    out = plot_resolution(
        [("test", res)], tmp_path / "bias.png", xlabel="x", ylabel="m", what="mean"
    )
    assert _is_png(out)
