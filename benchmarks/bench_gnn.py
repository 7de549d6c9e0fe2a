"""CPU time and peak memory of the GNN chain per stage, per mu=200 event, against the
helix DBSCAN baseline (the reference) on the same events in the same run.

Stages: node features, graph construction (module map), edge filter, edge classifier
(Interaction Network), track building. Memory: the process's resident set, sampled every
2 ms by a thread while each stage runs (peak minus the resident set before the event, and
the absolute peak). Events: ``--events DIR`` (default ``data/gnn/test``); missing ones are
simulated (ttbar, <mu> = 200).

    python benchmarks/bench_gnn.py [--events data/gnn/test] [--n 3] [--threads 2]
        [--device cpu|cuda] [--model DIR] [--previous DIR] [--json OUT.json] [--no-reference] [--no-torch-path]
        [--no-onnx]

The edge classifier also runs on its unfused torch path (the training code) as a second
reference: the fused CPU inference must give the same scores, faster; and exported to ONNX
in ONNX Runtime (``--backend onnx``; ``--no-onnx`` skips it).

A second table puts the previous ``lhcml reconstruct`` beside the current one, stage by
stage, with each one's graph size, efficiency and fake rate on the same events (ATLAS
matching, pT > 1 GeV, tracks of >= 5 hits): a previous model set (``--previous DIR``, e.g.
v10 from ``git archive``) with the old arithmetic (float32 products, numpy module-map loop;
the buffer reuse of the fused path is in both) and with the current one (``--precision
auto``: bfloat16 products where the CPU has AMX; the numba loop), then this set.
``--no-versions`` skips it.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

_PAGE = 4096


def rss() -> int:
    """Resident set size of this process [bytes] (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakRSS:
    """Highest resident set size seen between :meth:`reset` calls (a sampling thread)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(self.interval)

    def reset(self) -> int:
        """Start a new window; returns the resident set now."""
        now = rss()
        self.peak = now
        return now

    def read(self) -> int:
        """Peak of the current window."""
        time.sleep(2 * self.interval)
        return max(self.peak, rss())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def timed_stages(
    chain: Any,
    event: Any,
    detectors: Any,
    sampler: PeakRSS,
    *,
    torch_path: bool = False,
    onnx_session: Any = None,
) -> dict[str, dict[str, float]]:
    """Run the chain stage by stage (the code of ``GNNChain.reconstruct``, unrolled so each
    stage gets its own memory window)."""
    import torch

    from lhcml.gnn.features import distance_key, event_nodes
    from lhcml.gnn.lightning import compact
    from lhcml.gnn.pipeline import _sync, _without_truth
    from lhcml.gnn.track_building import build_tracks

    out: dict[str, dict[str, float]] = {}
    state: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], None]) -> None:
        base = sampler.reset()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        fn()
        _sync(chain.device)
        out[name] = {
            "wall": time.perf_counter() - t0,
            "cpu": time.process_time() - cpu0,
            "peak_mb": sampler.read() / 2**20,
            "delta_mb": (sampler.read() - base) / 2**20,
        }

    def features() -> None:
        state["nodes"] = event_nodes(_without_truth(event), use_cells=chain.use_cells)

    def graph() -> None:
        hits = event.hits
        if detectors is not None:
            from lhcml.gnn.graph_construction.module_map import translate_modules

            hits = translate_modules(hits, detectors, chain.centres)
        state["ei"] = torch.from_numpy(chain.module_map.build_edges(hits)).to(chain.device)
        state["x"] = torch.from_numpy(state["nodes"].x).to(chain.device)

    def edge_filter() -> None:
        with torch.no_grad():
            keep = chain.filter.scores(state["x"], state["ei"]) >= chain.filter_threshold
        state["ei"] = state["ei"][:, keep]

    def classifier() -> None:
        with torch.no_grad():
            state["scores"] = torch.sigmoid(chain.gnn(*compact(state["x"], state["ei"])))

    def tracks() -> None:
        state["tid"] = build_tracks(
            state["nodes"].n_nodes,
            state["ei"].cpu().numpy(),
            state["scores"].float().cpu().numpy(),
            distance_key(state["nodes"].x),
            **{
                "cc_threshold": chain.threshold,
                "walk_threshold": chain.threshold,
                **chain.track_building,
            },
        )

    stage("node features", features)
    stage("graph construction", graph)
    out["graph construction"]["edges"] = float(state["ei"].shape[1])
    if chain.filter is not None:
        stage("edge filter", edge_filter)
        out["edge filter"]["edges"] = float(state["ei"].shape[1])
    stage("edge classifier (GNN)", classifier)
    stage("track building", tracks)
    if torch_path:
        # The same network on the unfused torch path (training code, v1 inference).
        fused_scores = state["scores"]
        chain.gnn.fused = False
        try:
            stage(TORCH_PATH, classifier)
        finally:
            chain.gnn.fused = True
        out[TORCH_PATH]["max_score_diff"] = float((state["scores"] - fused_scores).abs().max())
        state["scores"] = fused_scores
    if onnx_session is not None:
        # The same weights exported to ONNX, run by ONNX Runtime (--backend onnx).
        fused_scores = state["scores"]
        torch_gnn, chain.gnn = chain.gnn, onnx_session
        try:
            stage(ONNX_PATH, classifier)
        finally:
            chain.gnn = torch_gnn
        out[ONNX_PATH]["max_score_diff"] = float((state["scores"] - fused_scores).abs().max())
    return out


#: Reference row: the Interaction Network without fused inference.
TORCH_PATH = "edge classifier, torch path (reference)"
#: The Interaction Network in ONNX Runtime (one intra-op thread: its scatter races).
ONNX_PATH = "edge classifier, ONNX Runtime (1 thread)"


#: (name, products' precision, module-map loop) of the versions compared.
#: Columns of the version table: label, model set (None: the one benchmarked, ``--model``;
#: "previous": ``--previous``), precision, module-map engine.
VERSIONS: tuple[tuple[str, str | None, str, str], ...] = (
    ("previous set, float32, numpy map", "previous", "float32", "numpy"),
    ("previous set, auto, numba map", "previous", "auto", "numba"),
    ("this set, auto, numba map (now)", None, "auto", "numba"),
)


def versions_table(
    chain: Any, events: Path, ids: list[int], previous: Any | None
) -> dict[str, dict[str, float]]:
    """The previous and the current ``lhcml reconstruct`` on the same events: stage
    times (``GNNChain.reconstruct``'s own) and ATLAS efficiency / fake rate.
    Without a previous model set, its columns run on this one."""
    from lhcml.gnn.edge_classification.fused import check_precision
    from lhcml.io import read_event
    from lhcml.metrics.tracking import FiducialSelection, TrackSelection, tracking_performance

    fid = FiducialSelection(pt_min=1.0, min_hits=3, exclude_electrons=True)
    sel = TrackSelection(min_hits=5)
    out: dict[str, dict[str, float]] = {}
    loaded = [read_event(events, eid) for eid in ids]
    names = []
    for name, which, precision, engine in VERSIONS:
        run = previous if which == "previous" and previous is not None else chain
        if which == "previous" and previous is None:
            name = name.replace("previous set", "this set")
        names.append(name)
        run.gnn.precision = check_precision(precision)
        run.graph_engine = engine
        run.reconstruct(loaded[0])  # warm-up (compilation, workspace)
        times: dict[str, list[float]] = {}
        counts = np.zeros(4)
        for event in loaded:
            res = run.reconstruct(event)
            for stage, t in res.timings.items():
                times.setdefault(stage, []).append(t)
            times.setdefault("edges", []).append(res.n_edges["graph_construction"])
            perf = tracking_performance(
                res.tracks,
                event.truth,
                event.particles,
                matching="atlas",
                fiducial=fid,
                track_selection=sel,
            )
            counts += [perf.efficiency.k, perf.efficiency.n, perf.fake_rate.k, perf.fake_rate.n]
        row = {stage: float(np.mean(t)) for stage, t in times.items()}
        row["total"] = sum(v for k, v in row.items() if k != "edges")
        row["efficiency"] = counts[0] / counts[1]
        row["fake_rate"] = counts[2] / counts[3]
        out[name] = row
        run.gnn.precision = check_precision("auto")
        run.graph_engine = "numba"
    table = Table(title=f"lhcml reconstruct, previous vs current ({len(ids)} events, 1 process)")
    table.add_column("", justify="left")
    for name in [*names, "ratio last / first"]:
        table.add_column(name, justify="right")
    first, last = out[names[0]], out[names[-1]]
    for stage in [k for k in last if k not in ("efficiency", "fake_rate", "edges")]:
        cells = [f"{out[n].get(stage, np.nan):.3f}" for n in names]
        before = first.get(stage, np.nan)
        table.add_row(f"{stage} [s]", *cells, f"{last[stage] / before:.2f}" if before > 0 else "")
    cells = [f"{out[n]['edges']:,.0f}" for n in names]
    table.add_row("graph edges", *cells, f"{last['edges'] / first['edges']:.2f}")
    for key in ("efficiency", "fake_rate"):
        cells = [f"{out[n][key]:.2%}" for n in names]
        table.add_row(f"{key} (ATLAS)", *cells, f"{100 * (last[key] - first[key]):+.2f} points")
    Console(width=180).print(table)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=Path("data/gnn/test"))
    parser.add_argument("--n", type=int, default=3, help="events to time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", type=Path, default=None, help="model set (default: shipped)")
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="previous model set for the version table (e.g. one from git archive)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the DBSCAN reference (~100 s/event)"
    )
    parser.add_argument(
        "--no-torch-path",
        action="store_true",
        help="skip the edge classifier's unfused torch path (reference, ~5 s/event)",
    )
    parser.add_argument(
        "--no-onnx", action="store_true", help="skip the ONNX Runtime row (needs lhcml[onnx])"
    )
    parser.add_argument(
        "--no-versions", action="store_true", help="skip the previous / current version table"
    )
    args = parser.parse_args()

    import torch

    from lhcml.gnn.pipeline import GNNChain
    from lhcml.io import list_events, read_event
    from lhcml.reco import HelixDBSCAN

    torch.set_num_threads(args.threads)
    ids = list_events(args.events) if args.events.is_dir() else []
    if len(ids) < args.n:
        from lhcml.simulation import SimulationConfig, simulate_events

        simulate_events(
            SimulationConfig(process="ttbar", mu=200, seed=303),
            args.events,
            events=args.n,
            first_event=2000,
        )
        ids = list_events(args.events)
    ids = ids[: args.n]
    sampler = PeakRSS()
    chain = GNNChain(args.model, device=args.device)
    onnx_session = None
    if not args.no_onnx and args.device == "cpu":
        from lhcml.gnn.onnx import onnx_model

        onnx_session = onnx_model(chain.gnn, chain.model_dir / "edge_classifier.pt")
    dbscan = HelixDBSCAN()
    rows: dict[str, list[dict[str, float]]] = {}
    hits = []
    # Warm-up (numba compilation, allocator): not timed.
    warm = read_event(args.events, ids[0], parts=["hits"])
    chain.reconstruct(warm)
    for eid in ids:
        event = read_event(args.events, eid, parts=["hits"])
        hits.append(len(event.hits))
        stages = timed_stages(
            chain,
            event,
            None,
            sampler,
            torch_path=not args.no_torch_path,
            onnx_session=onnx_session,
        )
        for name, values in stages.items():
            rows.setdefault(name, []).append(values)
        if args.no_reference:
            continue
        base = sampler.reset()
        t0, c0 = time.perf_counter(), time.process_time()
        dbscan.find_tracks(event.hits)
        rows.setdefault("DBSCAN baseline (reference)", []).append(
            {
                "wall": time.perf_counter() - t0,
                "cpu": time.process_time() - c0,
                "peak_mb": sampler.read() / 2**20,
                "delta_mb": (sampler.read() - base) / 2**20,
            }
        )
    sampler.close()

    def mean(name: str, key: str) -> float:
        return float(np.mean([r.get(key, np.nan) for r in rows[name]]))

    gnn_names = [n for n in rows if not n.startswith("DBSCAN") and n not in (TORCH_PATH, ONNX_PATH)]
    total_wall = sum(mean(n, "wall") for n in gnn_names)
    total_cpu = sum(mean(n, "cpu") for n in gnn_names)
    ref = "DBSCAN baseline (reference)"
    table = Table(
        title=f"GNN chain per event: {len(ids)} ttbar <mu>=200 events, {np.mean(hits):.0f} hits, "
        f"{args.threads} thread(s), {args.device}"
    )
    for col in ("stage", "wall [s]", "CPU [s]", "edges out", "peak RSS [MB]", "+RSS [MB]"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    refs = [n for n in (TORCH_PATH, ONNX_PATH, ref) if n in rows]
    for name in [*gnn_names, *refs]:
        edges = mean(name, "edges") if name in gnn_names else float("nan")
        table.add_row(
            name,
            f"{mean(name, 'wall'):.3f}",
            f"{mean(name, 'cpu'):.3f}",
            "" if np.isnan(edges) else f"{edges:,.0f}",
            f"{max(r['peak_mb'] for r in rows[name]):.0f}",
            f"{max(r['delta_mb'] for r in rows[name]):.0f}",
        )
    peak = max(r["peak_mb"] for n in gnn_names for r in rows[n])
    table.add_row("GNN chain total", f"{total_wall:.3f}", f"{total_cpu:.3f}", "", f"{peak:.0f}", "")
    if TORCH_PATH in rows:
        fused_wall = mean("edge classifier (GNN)", "wall")
        diff = max(r["max_score_diff"] for r in rows[TORCH_PATH])
        table.add_row(
            f"ratio fused / torch path (max |score diff| {diff:.1e})",
            f"{fused_wall / mean(TORCH_PATH, 'wall'):.2f}",
            f"{mean('edge classifier (GNN)', 'cpu') / mean(TORCH_PATH, 'cpu'):.2f}",
            "",
            "",
            "",
        )
    if ONNX_PATH in rows:
        diff = max(r["max_score_diff"] for r in rows[ONNX_PATH])
        table.add_row(
            f"ratio fused / ONNX Runtime (max |score diff| {diff:.1e})",
            f"{mean('edge classifier (GNN)', 'wall') / mean(ONNX_PATH, 'wall'):.2f}",
            f"{mean('edge classifier (GNN)', 'cpu') / mean(ONNX_PATH, 'cpu'):.2f}",
            "",
            "",
            "",
        )
    if ref in rows:
        table.add_row(
            "ratio GNN / DBSCAN",
            f"{total_wall / mean(ref, 'wall'):.2f}",
            f"{total_cpu / mean(ref, 'cpu'):.2f}",
            "",
            "",
            "",
        )
    Console(width=160).print(table)
    previous = None
    if args.previous is not None and not args.no_versions:
        previous = GNNChain(args.previous, device=args.device)
    versions = None if args.no_versions else versions_table(chain, args.events, ids, previous)
    if args.json:
        summary = {
            "events": len(ids),
            "hits_per_event": float(np.mean(hits)),
            "threads": args.threads,
            "device": args.device,
            "stages": {
                n: {k: mean(n, k) for k in ("wall", "cpu", "edges") if k in rows[n][0]}
                for n in rows
            },
            "peak_rss_mb": {n: max(r["peak_mb"] for r in rows[n]) for n in rows},
            "total_wall": total_wall,
            "total_cpu": total_cpu,
            "versions": versions,
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
