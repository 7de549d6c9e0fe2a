"""Timing of the metrics on a synthetic mu=200-sized event (~120k hits, ~15k particles).

Times ``score_event``, ``hit_weights`` and ``tracking_performance`` (efficiency, fake and
duplicate rates, binned). The score and the weights are compared with straightforward
Python-loop implementations (per track, per particle; defined here only, as references):
the results must agree, and the table shows the speed-up.

    python benchmarks/bench_metrics.py [--hits 120000] [--particles 15000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from lhcml.metrics.tracking import tracking_performance
from lhcml.metrics.trackml import hit_weights, score_event


def synthetic_event(
    n_hits: int, n_particles: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Truth, particles, hits and an imperfect submission of a pile-up-like event.

    Particles: pT from a falling spectrum (0.1-20 GeV), |eta| < 4, vz spread 50 mm; hits
    per particle 1-20 (mean ~8), 10 % noise. The submission starts from the truth and
    damages it like a real track finder: 5 % of hits moved to a random track, 5 % of
    tracks split in two, noise in small random clusters.
    """
    rng = np.random.default_rng(seed)
    n_noise = n_hits // 10
    nh = np.clip(rng.poisson(7.0, n_particles) + 1, 1, 20)
    nh = np.maximum(1, np.round(nh * (n_hits - n_noise) / nh.sum())).astype(int)
    pid = rng.choice(np.arange(1, 50 * n_particles), n_particles, replace=False) << 4
    pt = np.clip(0.1 + rng.exponential(0.8, n_particles), 0.1, 20.0)
    eta = rng.uniform(-4.0, 4.0, n_particles)
    phi = rng.uniform(-np.pi, np.pi, n_particles)
    vz = rng.normal(0.0, 50.0, n_particles)
    particles = pd.DataFrame(
        {
            "particle_id": pid,
            "vx": 0.0,
            "vy": 0.0,
            "vz": vz,
            "px": pt * np.cos(phi),
            "py": pt * np.sin(phi),
            "pz": pt * np.sinh(eta),
            "q": 1,
            "nhits": nh,
            "primary": rng.random(n_particles) < 0.9,
        }
    )
    hit_pid = np.r_[np.repeat(pid, nh), np.zeros(n_noise, np.int64)]
    owner = np.r_[np.repeat(np.arange(n_particles), nh), np.full(n_noise, -1)]
    n = len(hit_pid)
    r = rng.uniform(30.0, 1000.0, n)
    theta = np.where(owner >= 0, 2 * np.arctan(np.exp(-eta[owner])), rng.uniform(0.1, 3.0, n))
    z = np.where(owner >= 0, vz[owner], 0.0) + r / np.tan(theta)
    hphi = np.where(owner >= 0, phi[owner], rng.uniform(-np.pi, np.pi, n)) + rng.normal(0, 0.01, n)
    perm = rng.permutation(n)  # hit ids in no particular order
    truth = pd.DataFrame(
        {
            "hit_id": np.arange(1, n + 1),
            "particle_id": hit_pid[perm],
            "tx": (r * np.cos(hphi))[perm],
            "ty": (r * np.sin(hphi))[perm],
            "tz": z[perm],
        }
    )
    truth["weight"] = hit_weights(truth, particles)
    hits = truth[["hit_id", "tx", "ty", "tz"]].rename(columns={"tx": "x", "ty": "y", "tz": "z"})

    track = pd.factorize(truth["particle_id"])[0].astype(np.int64)
    noise = truth["particle_id"].to_numpy() == 0
    track[noise] = 10_000_000 + rng.integers(0, n_noise // 3, noise.sum())
    moved = rng.random(n) < 0.05
    track[moved] = rng.choice(track, moved.sum())
    split = np.isin(track, rng.choice(np.unique(track), len(np.unique(track)) // 20))
    track[split & (rng.random(n) < 0.5)] += 20_000_000
    submission = pd.DataFrame({"hit_id": truth["hit_id"], "track_id": track})
    return truth, particles, hits, submission


def reference_score(truth: pd.DataFrame, submission: pd.DataFrame) -> float:
    """The TrackML score written plainly: one Python loop over tracks, one over hits."""
    particle_of = dict(zip(truth["hit_id"], truth["particle_id"], strict=True))
    weight_of = dict(zip(truth["hit_id"], truth["weight"], strict=True))
    particle_nhits = Counter(truth["particle_id"])
    tracks: dict[int, list[int]] = defaultdict(list)
    for h, t in zip(submission["hit_id"], submission["track_id"], strict=True):
        tracks[t].append(h)
    total = sum(weight_of.values())
    score = 0.0
    for hit_ids in tracks.values():
        counts = Counter(particle_of[h] for h in hit_ids)
        # Majority: most hits, ties to the smaller particle id.
        major, n_major = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if 2 * n_major > len(hit_ids) and 2 * n_major > particle_nhits[major]:
            score += sum(weight_of[h] for h in hit_ids if particle_of[h] == major)
    return score / total


def reference_hit_weights(truth: pd.DataFrame, particles: pd.DataFrame) -> np.ndarray:
    """Hit weights written plainly: one Python loop over particles (same rule as lhcml)."""
    from scipy.stats import rankdata

    from lhcml.metrics.trackml import ORDER_MATRIX, pt_weight

    info = {
        p: (vz, float(pt_weight(np.hypot(px, py))))
        for p, vz, px, py in zip(
            particles["particle_id"], particles["vz"], particles["px"], particles["py"], strict=True
        )
    }
    rows_of: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(truth["particle_id"]):
        rows_of[p].append(i)
    tz = truth["tz"].to_numpy()
    w = np.zeros(len(truth))
    for p, rows in rows_of.items():
        if p == 0 or p not in info or len(rows) < 4:
            continue
        vz, w_pt = info[p]
        ranks = rankdata([abs(tz[i] - vz) for i in rows], method="average")
        nhits = min(len(rows), 20)
        for i, rank in zip(rows, ranks, strict=True):
            ihit = int(rank - 1)
            w[i] = w_pt * ORDER_MATRIX[nhits, ihit] if ihit < 20 else 0.0
    return w / w.sum()


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time over ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=120_000)
    parser.add_argument("--particles", type=int, default=15_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    truth, particles, hits, submission = synthetic_event(args.hits, args.particles)
    console = Console()
    console.print(
        f"synthetic event: {len(truth):,} hits, {len(particles):,} particles, "
        f"{submission['track_id'].nunique():,} tracks; median of {args.repeat} runs"
    )
    # Warm up imports (scipy, pandas paths) outside the timing.
    tracking_performance(submission.head(1000), truth, particles, hits=hits)

    t_ref, s_ref = timed(lambda: reference_score(truth, submission), max(1, args.repeat // 2))
    t_score, s_vec = timed(lambda: score_event(truth, submission), args.repeat)
    t_wref, w_ref = timed(lambda: reference_hit_weights(truth, particles), max(1, args.repeat // 2))
    t_w, w_vec = timed(lambda: hit_weights(truth, particles), args.repeat)
    t_w2, _ = timed(lambda: hit_weights(truth, particles, secondaries_zero=True), args.repeat)
    t_eff, perf = timed(
        lambda: tracking_performance(submission, truth, particles, hits=hits), args.repeat
    )
    if abs(s_ref - s_vec) > 1e-9:
        raise SystemExit(f"scores disagree: reference {s_ref!r} vs vectorised {s_vec!r}")
    if np.abs(w_ref - w_vec).max() > 1e-12:
        raise SystemExit("hit weights disagree with the loop reference")

    table = Table(title=f"metrics timing (score {s_vec:.4f}; loop references agree)")
    table.add_column("function")
    table.add_column("time \\[ms]", justify="right")
    table.add_column("loop reference \\[ms]", justify="right")
    table.add_column("speed-up", justify="right")
    rows = [
        ("score_event", t_score, t_ref),
        ("hit_weights", t_w, t_wref),
        ("hit_weights(secondaries_zero)", t_w2, None),
        ("tracking_performance", t_eff, None),
    ]
    for name, t, ref in rows:
        table.add_row(
            name,
            f"{1e3 * t:.1f}",
            "-" if ref is None else f"{1e3 * ref:.1f}",
            "-" if ref is None else f"{ref / t:.1f}x",
        )
    console.print(table)
    console.print(
        f"efficiency {perf.efficiency.value:.3f}, fake rate {perf.fake_rate.value:.3f}, "
        f"duplicate rate {perf.duplicate_rate.value:.3f} (double majority)"
    )


if __name__ == "__main__":
    main()
