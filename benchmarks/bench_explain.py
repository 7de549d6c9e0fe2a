"""Mutual-information estimators side by side on Gaussian channels with a closed form,
and the cost of permutation importance on the shipped edge classifier.

x ~ N(0, I_m), y = a.x + noise (|a| = 1), I = 0.5 ln(1 + SNR); "mixed": x through an
invertible non-linear map (rotation, u + u^3 / 3, rotation), which leaves I unchanged.
Columns: scikit-learn's ``mutual_info_regression`` (the reference; one-dimensional X
only), plain KSG on the joint X (``method="ksg"``), the learned-statistic lower bound
(``method="learned"``, the default), each with its error and time on one core.

    python benchmarks/bench_explain.py [--n 20000] [--big 100000] [--event PREFIX]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from sklearn.feature_selection import mutual_info_regression

from lhcml.explain import mutual_information
from lhcml.explain.toys import gaussian_channel

CASES = [(1, 1.0, False), (4, 3.0, False), (12, 8.0, False), (12, 8.0, True), (4, 3.0, True)]


def timed(f: object, *args: object, **kw: object) -> tuple[float, float]:
    t0 = time.perf_counter()
    v = f(*args, **kw)  # type: ignore[operator]
    return float(v), time.perf_counter() - t0


def cell(value: float, truth: float, seconds: float) -> str:
    return f"{value:.3f} ({100 * (value - truth) / truth:+.1f} %, {seconds:.1f} s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--event", type=Path, default=None, help="event prefix for the GNN row")
    args = ap.parse_args()
    torch.set_num_threads(1)
    table = Table(title=f"I(X; Y) [nats], n = {args.n}, one core")
    for col in ("m", "mixed", "truth", "scikit-learn (1-D)", "ksg", "learned (default)"):
        table.add_column(col)
    for m, snr, mix in CASES:
        x, y, truth = gaussian_channel(m, snr, args.n, mix=mix)
        sk = "n/a (1-D X only)"
        if m == 1:
            v, s = timed(lambda a, b: mutual_info_regression(a, b, n_neighbors=3)[0], x, y)
            sk = cell(v, truth, s)
        k, ks = timed(mutual_information, x, y, method="ksg")
        ln, ls = timed(mutual_information, x, y)
        table.add_row(str(m), str(mix), f"{truth:.3f}", sk, cell(k, truth, ks), cell(ln, truth, ls))
    Console().print(table)
    x, y, truth = gaussian_channel(12, 8.0, args.big, mix=True)
    v, s = timed(mutual_information, x, y)
    print(f"learned, {args.big} x 12 mixed: {v:.3f} for {truth:.3f} in {s:.1f} s (target < 60 s)")
    if args.event is not None:
        from lhcml.explain.probes import load_probe

        probe = load_probe("edge_classifier", args.event)
        t0 = time.perf_counter()
        base = probe.run()
        run_s = time.perf_counter() - t0
        n_neurons = sum(
            probe.model.get_submodule(n).weight.shape[0] for n in ("node_encoder.0", "head.0")
        )
        print(
            f"edge classifier on {args.event.name}: one evaluation {run_s:.2f} s (AUC "
            f"{base:.4f}); a neuron x repeat costs one evaluation, e.g. {n_neurons} neurons "
            f"x 5 repeats = {n_neurons * 5 * run_s / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
