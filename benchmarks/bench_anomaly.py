"""The anomaly stage's costs side by side: augmentations (ours, vectorised, against a
per-jet Python loop written like the reference's ``collinear_fill_jets`` / ``drop``) and
encoders (reference 128 x 4 layers, small 64 x 3, with ParT pair bias): training step and
inference throughput, jets per second, in one run.

    python benchmarks/bench_anomaly.py [--batch 256] [--constituents 50] [--rounds 3]
        [--threads 2]

Inputs are random centred jets of 25-50 constituents (timings do not depend on the
physics); each row is the median of ``--rounds``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table

from lhcml.anomaly import augment as A
from lhcml.anomaly.losses import anomclr_plus
from lhcml.anomaly.model import JetEncoder


def _jets(b: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    n = torch.randint(length // 2, length + 1, (b,), generator=g)
    pt = torch.rand(b, length, generator=g) * (torch.arange(length) < n[:, None])
    return A.recentre_sort(
        torch.cat([pt.unsqueeze(-1), 0.3 * torch.randn(b, length, 2, generator=g)], -1)
    )


def _loop_split(x: torch.Tensor) -> torch.Tensor:
    """Collinear splitting one jet and one constituent at a time (the reference's way)."""
    out = x.clone()
    length = x.shape[1]
    for k in range(x.shape[0]):
        n = int((x[k, :, 0] > 0).sum())
        m = min(n, length - n)
        els = torch.randperm(n)[:m]
        r = torch.rand(m)
        for j in range(m):
            out[k, els[j], 0] = r[j] * x[k, els[j], 0]
            out[k, n + j, 0] = (1 - r[j]) * x[k, els[j], 0]
            out[k, n + j, 1:] = x[k, els[j], 1:]
    return A.recentre_sort(out)


def _loop_drop(x: torch.Tensor, prob: float = 0.5) -> torch.Tensor:
    out = torch.zeros_like(x)
    for k in range(x.shape[0]):
        real = x[k, :, 0] > 0
        keep = real & (torch.rand(x.shape[1]) >= prob)
        if not keep.any():
            keep[0] = True
        kept = x[k, keep].clone()
        kept[:, 0] *= x[k, :, 0].sum() / kept[:, 0].sum()
        out[k, : len(kept)] = kept
    return A.recentre_sort(out)


def _median(fn: Callable[[], object], rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--constituents", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = _jets(args.batch, args.constituents)
    con = Console()

    t = Table(title=f"augmentations, batch of {args.batch} jets x {args.constituents}")
    for c in ("augmentation", "loop (ms)", "vectorised (ms)", "speed-up"):
        t.add_column(c)
    for name, loop, vec in (
        ("collinear_split", _loop_split, A.collinear_split),
        ("drop p=0.5", _loop_drop, A.drop),
    ):
        a = _median(lambda loop=loop: loop(x), args.rounds)
        b = _median(lambda vec=vec: vec(x), args.rounds)
        t.add_row(name, f"{1e3 * a:.1f}", f"{1e3 * b:.2f}", f"{a / b:.0f}x")
    for name, fn in (("rotate", A.rotate), ("translate", A.translate)):
        b = _median(lambda fn=fn: fn(x), args.rounds)
        t.add_row(name, "-", f"{1e3 * b:.2f}", "-")
    con.print(t)

    t = Table(title=f"encoders ({args.threads} threads): jets / s")
    for c in (
        "encoder",
        "parameters",
        "train (3 views, fwd+bwd+Adam)",
        "inference",
        "train vs reference",
    ):
        t.add_column(c)
    variants = {
        "reference 128 x 4": {},
        "small 64 x 3": {"model_dim": 64, "n_layers": 3, "dim_feedforward": 256},
        "reference + ParT pair bias": {"pair_bias": True},
    }
    ref_rate = None
    for name, kw in variants.items():
        torch.manual_seed(0)
        enc = JetEncoder(**kw)
        opt = torch.optim.Adam(enc.parameters(), lr=1e-4)

        def step(enc: JetEncoder = enc, opt: torch.optim.Optimizer = opt) -> None:
            enc.train()
            z, zp, za = enc(torch.cat([x, A.rotate(x), A.drop(x)])).chunk(3)
            loss = anomclr_plus(z, zp, za)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def infer(enc: JetEncoder = enc) -> None:
            enc.eval()
            with torch.no_grad():
                enc.represent(x)

        rate = args.batch / _median(step, args.rounds)
        inf = args.batch / _median(infer, args.rounds)
        ref_rate = ref_rate or rate
        n_par = sum(p.numel() for p in enc.parameters())
        t.add_row(name, f"{n_par:,}", f"{rate:.0f}", f"{inf:.0f}", f"{rate / ref_rate:.2f}x")
    con.print(t)


if __name__ == "__main__":
    main()
