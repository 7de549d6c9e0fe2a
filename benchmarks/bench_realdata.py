"""The GNN chain on simulated, real and reduced events, side by side in one run.

Every row is one event kind: a held-out simulated ttbar <mu> = 200 event, the shared real
TrackML event, and each of them reduced by one knob of :func:`lhcml.data.subset.make_subset`
at a time (barrel volumes only, 20 % of the particles, no double hits, noise share), then
all knobs together (the hepqpr-qallse reduction). Columns: efficiency (double majority,
pT > 1 GeV, >= 5 hits, primaries), fake and duplicate rates (tracks of >= 3 hits), the
TrackML score, where the fiducial particles' truth edges are lost (share kept by the
graph, the edge filter and the classifier's cut), the share of missed particles left with
no hit on any track, and seconds per event.

    python benchmarks/bench_realdata.py [--sim DIR] [--noisy-sim DIR] [--real DIR]
        [--models DIR ...] [--repeats 5] [--threads 1] [--json OUT.json]

Missing ``--sim`` / ``--noisy-sim`` events are simulated as the first event of the model
sets' held-out test sample (seed 303, event 2000; ``--noisy-sim`` with ``--noise 0.35``,
a 26 % noise share, so that every noise share up to that can be sampled). ``--models``
takes one or more model-set folders (default: the shipped one) whose rows are printed
side by side, e.g. the shipped set against a freshly trained ``runs/.../model_set``. ``--real`` defaults to
``../shared/data/trackml`` beside the checkout. Reductions with ``density < 1`` are drawn
``--repeats`` times (seeds 0..) and their counts pooled.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from lhcml.data.subset import BARREL_VOLUMES, SubsetConfig, make_subset
from lhcml.errors import InputError

ROOT = Path(__file__).resolve().parents[1]

#: (row name, event kind, reduction); kind "noisy" is the simulated event with noise.
CASES: list[tuple[str, str, SubsetConfig | None]] = [
    ("full", "base", None),
    ("barrel 8,13,17", "base", SubsetConfig(volumes=BARREL_VOLUMES)),
    ("density 0.2", "base", SubsetConfig(density=0.2)),
    ("no double hits", "base", SubsetConfig(double_hits=False)),
    ("noise 0 %", "noisy", SubsetConfig(noise_fraction=0.0)),
    ("noise 15 %", "noisy", SubsetConfig(noise_fraction=0.15)),
    ("noise 23 %", "noisy", SubsetConfig(noise_fraction=0.23)),
    (
        "qallse: all four",
        "noisy",
        SubsetConfig(volumes=BARREL_VOLUMES, density=0.2, double_hits=False, noise_fraction=0.23),
    ),
]


@dataclass
class Counts:
    """Pooled counts of one row."""

    found: int = 0
    fiducial: int = 0
    fakes: int = 0
    tracks: int = 0
    found_atlas: int = 0
    fakes_atlas: int = 0
    duplicates: int = 0
    matched: int = 0
    score: list[float] = field(default_factory=list)
    edges: dict[str, list[int]] = field(default_factory=dict)
    no_track: int = 0
    seconds: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        def r(k: int, n: int) -> float:
            return k / n if n else float("nan")

        return {
            "efficiency": r(self.found, self.fiducial),
            "n_fiducial": self.fiducial,
            "fake_rate": r(self.fakes, self.tracks),
            "efficiency_atlas": r(self.found_atlas, self.fiducial),
            "fake_rate_atlas": r(self.fakes_atlas, self.tracks),
            "duplicate_rate": r(self.duplicates, self.matched),
            "score": float(np.mean(self.score)),
            **{f"edges_{k}": r(v[0], v[1]) for k, v in self.edges.items()},
            "missed_without_track": r(self.no_track, self.fiducial - self.found),
            "seconds": float(np.mean(self.seconds)),
        }


def simulate(out: Path, noise: float) -> None:
    # The test sample of experiments/gnn/*.yaml: no model set trains on it.
    cmd = ["lhcml", "simulate", "--mu", "200", "--events", "1", "--seed", "303"]
    cmd += ["--first-event", "2000"]
    cmd += ["--out", str(out)] + (["--noise", str(noise)] if noise else [])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def measure(chain: Any, event: Any, detectors: Any, counts: Counts) -> None:
    from lhcml.gnn.features import target_particles, truth_edges, truth_edges_found
    from lhcml.metrics.tracking import FiducialSelection, tracking_performance
    from lhcml.metrics.trackml import score_event

    fid = FiducialSelection(pt_min=1.0, min_hits=5)
    t0 = time.perf_counter()
    res = chain.reconstruct(event, detectors=detectors)
    counts.seconds.append(time.perf_counter() - t0)
    perf = tracking_performance(res.tracks, event.truth, event.particles, fiducial=fid)
    counts.found += perf.efficiency.k
    counts.fiducial += perf.efficiency.n
    counts.fakes += perf.fake_rate.k
    counts.tracks += perf.fake_rate.n
    counts.duplicates += perf.duplicate_rate.k
    counts.matched += perf.duplicate_rate.n
    atlas = tracking_performance(
        res.tracks, event.truth, event.particles, fiducial=fid, matching="atlas"
    )
    counts.found_atlas += atlas.efficiency.k
    counts.fakes_atlas += atlas.fake_rate.k
    counts.score.append(score_event(event.truth, res.tracks))
    # Truth edges of the fiducial particles: which stage loses them.
    tedges, tpid = truth_edges(event)
    tedges = tedges[:, np.isin(tpid, target_particles(event, fid))]
    n = len(event.hits)
    stages = dict(res.edges)
    assert res.scores is not None
    last = list(stages)[-1]
    stages["classifier"] = stages[last][:, res.scores >= chain.threshold]
    for name, ei in stages.items():
        k = int(truth_edges_found(ei, tedges, n).sum())
        prev = counts.edges.setdefault(name, [0, 0])
        prev[0] += k
        prev[1] += tedges.shape[1]
    # Missed fiducial particles whose hits are on no track at all.
    pid = event.truth.set_index("hit_id")["particle_id"]
    on_track = res.tracks.set_index("hit_id")["track_id"].reindex(pid.index).to_numpy() >= 0
    fiducial = target_particles(event, fid)
    assigned = np.unique(pid.to_numpy()[on_track])
    from lhcml.metrics.tracking import match_tracks

    tracks = match_tracks(res.tracks, event.truth, "double_majority")
    found = np.unique(tracks.loc[tracks["matched"] & (tracks["nhits"] >= 3), "particle_id"])
    missed = np.setdiff1d(fiducial, found)
    counts.no_track += int((~np.isin(missed, assigned)).sum())


def _label(model_dir: Path) -> str:
    """Short row label of a model set: "shipped", or its run folder's name."""
    from lhcml.gnn.pipeline import default_model_dir

    if model_dir.resolve() == default_model_dir().resolve():
        return "shipped"
    return model_dir.parent.name if model_dir.name == "model_set" else model_dir.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", type=Path, default=None)
    ap.add_argument("--noisy-sim", type=Path, default=None)
    ap.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "trackml")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", type=Path, nargs="+", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from lhcml.gnn.files import find_detectors
    from lhcml.gnn.pipeline import GNNChain, default_model_dir
    from lhcml.io import read_detectors, read_event

    tmp = Path(tempfile.mkdtemp(prefix="bench_realdata_"))
    # Missing events are simulated (into the given folder, so a second run reuses them).
    args.sim = args.sim or tmp / "sim"
    args.noisy_sim = args.noisy_sim or tmp / "noisy"
    for folder, noise in ((args.sim, 0.0), (args.noisy_sim, 0.35)):
        if not folder.exists():
            simulate(folder, noise)
    model_dirs = args.models or [default_model_dir()]
    chains = {_label(d): GNNChain(d, threads=args.threads) for d in model_dirs}
    for chain in chains.values():
        chain.reconstruct(read_event(args.sim))  # warm-up: numba compiles on the first event
    sources: dict[str, dict[str, Any]] = {
        "simulated": {"base": read_event(args.sim), "noisy": read_event(args.noisy_sim)}
    }
    det = None
    if args.real.exists():
        real = read_event(args.real)
        det_file = find_detectors(args.real)
        det = read_detectors(det_file) if det_file is not None else None
        # The real event's own noise (15 %) serves both kinds.
        sources["real"] = {"base": real, "noisy": real}
    else:
        print(f"no real event at {args.real}: simulated rows only", file=sys.stderr)

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for source, events in sources.items():
        detectors = det if source == "real" else None
        for name, kind, cfg in CASES:
            seeds = range(args.repeats) if cfg is not None and cfg.density < 1 else [0]
            try:
                reduced = [
                    events[kind]
                    if cfg is None
                    else make_subset(events[kind], dataclasses.replace(cfg, seed=seed))
                    for seed in seeds
                ]
            except InputError as e:  # e.g. fewer noise hits in the event than asked for
                print(f"{source} {name}: skipped: {e}", file=sys.stderr)
                continue
            for label, chain in chains.items():
                counts = Counts()
                for event in reduced:
                    measure(chain, event, detectors, counts)
                results.setdefault(source, {}).setdefault(name, {})[label] = counts.row()
                print(f"{source:9s} {label} {name:18s} {counts.row()}", file=sys.stderr)

    table = Table(title="GNN chain on simulated, real and reduced events, per model set")
    rows = [
        (source, name, label, r)
        for source, cases in results.items()
        for name, per_model in cases.items()
        for label, r in per_model.items()
    ]
    # Model sets may differ in stages (an edge filter or not): columns are their union.
    stages = list(dict.fromkeys(k for *_, r in rows for k in r if k.startswith("edges_")))
    cols = ["event", "reduction", "models", "eff. DM (n)", "eff. ATLAS", "fake DM"]
    cols += ["fake ATLAS", "dup.", "score"] + [f"edges: {k[6:]}" for k in stages]
    cols += ["missed: no track", "s/event"]
    for c in cols:
        table.add_column(c, justify="right")
    for source, name, label, r in rows:
        table.add_row(
            source,
            name,
            label,
            f"{r['efficiency']:.1%} ({r['n_fiducial']})",
            f"{r['efficiency_atlas']:.1%}",
            f"{r['fake_rate']:.1%}",
            f"{r['fake_rate_atlas']:.1%}",
            f"{r['duplicate_rate']:.1%}",
            f"{r['score']:.3f}",
            *(f"{r[k]:.1%}" if k in r else "-" for k in stages),
            f"{r['missed_without_track']:.0%}",
            f"{r['seconds']:.2f}",
        )
    Console(width=200).print(table)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
