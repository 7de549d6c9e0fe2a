"""``lhcml demo``: the whole study on the embedded defaults, in one command.

Simulate a few ttbar + pile-up events through the ACTS Generic detector, reconstruct
tracks with the GNN chain (the shipped module map and Interaction Network;
``--method dbscan`` for the helix DBSCAN baseline), evaluate them with the TrackML score
and the ATLAS-style rates, print a summary table and write plots.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
        "lhcml-demo"
    ),
    events: Annotated[int, typer.Option(help="Number of events to simulate.")] = 3,
    mu: Annotated[float, typer.Option(help="Mean number of pile-up interactions.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same events).")] = 1,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 2,
    pt_min: Annotated[float, typer.Option(help="Fiducial particles: minimum pT [GeV].")] = 1.0,
    method: Annotated[
        str, typer.Option(help="Track finder: 'gnn' (shipped GNN chain) or 'dbscan' (baseline).")
    ] = "gnn",
) -> None:
    """Simulate, reconstruct and evaluate a few events; print a summary, write plots."""
    from rich.console import Console

    console = Console()
    summary = run_demo(
        out=out,
        events=events,
        mu=mu,
        seed=seed,
        jobs=jobs,
        pt_min=pt_min,
        method=method,
        console=console,
    )
    console.print(summary_table(summary))
    console.print(
        f"plots and summary.json in [bold]{out / 'evaluation'}[/], events in "
        f"[bold]{out / 'events'}[/], submissions in [bold]{out / 'submissions'}[/]"
    )


def run_demo(
    *,
    out: Path,
    events: int,
    mu: float,
    seed: int,
    jobs: int,
    pt_min: float,
    method: str = "gnn",
    console: Any = None,
) -> dict[str, Any]:
    """Run the demo chain; returns the numbers of the summary table (also written as JSON)."""
    import numpy as np
    from rich.progress import Progress

    from lhcml.io import read_events, write_json_atomic
    from lhcml.metrics import FiducialSelection, evaluate_events
    from lhcml.reco.run import reconstruct_events
    from lhcml.simulation import SimulationConfig, simulate_events

    config = SimulationConfig(process="ttbar", mu=mu, seed=seed)
    events_dir, sub_dir, eval_dir = out / "events", out / "submissions", out / "evaluation"

    start = time.perf_counter()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"simulating ttbar + <mu>={mu:g}", total=events)
        sim = simulate_events(
            config,
            events_dir,
            events=events,
            jobs=jobs,
            on_event=lambda _eid: bar.advance(task),
            on_skipped=lambda ids: bar.advance(task, len(ids)),
        )
    sim_seconds = time.perf_counter() - start
    ids = list(range(events))

    reco = reconstruct_events(events_dir, sub_dir, event_ids=ids, method=method)
    fiducial = FiducialSelection(pt_min=pt_min, abs_eta_max=2.5, min_hits=3, exclude_electrons=True)
    # ATLAS matching (track purity > 0.5) lets several tracks match one particle, so the
    # duplicate rate means something (double majority allows one track per particle).
    result = evaluate_events(
        events_dir, sub_dir, out_dir=eval_dir, event_ids=ids, fiducial=fiducial, matching="atlas"
    )

    n_hits, n_particles = [], []
    for event in read_events(events_dir, ids, parts=["hits", "particles"]):
        n_hits.append(len(event.hits))
        assert event.particles is not None
        n_particles.append(int((event.particles["nhits"] > 0).sum()))
    perf = result.performance
    summary = {
        "events": events,
        "mu": mu,
        "seed": seed,
        "simulated": len(sim.written),
        "resumed": len(sim.skipped),
        "simulation_seconds_per_event": sim_seconds / max(len(sim.written), 1)
        if sim.written
        else None,
        "hits_per_event": float(np.mean(n_hits)),
        "particles_with_hits_per_event": float(np.mean(n_particles)),
        "reconstruction": _METHOD_LABELS.get(method, method),
        "reconstruction_seconds_per_event": float(np.mean([r.seconds for r in reco])),
        "tracks_per_event": float(np.mean([r.n_tracks for r in reco])),
        "trackml_score": result.score_mean,
        "matching": perf.matching,
        "fiducial": fiducial.to_dict(),
        "efficiency": perf.efficiency.to_dict(),
        "fake_rate": perf.fake_rate.to_dict(),
        "duplicate_rate": perf.duplicate_rate.to_dict(),
        "plots": [str(p) for p in result.files if p.suffix == ".png"],
    }
    write_json_atomic(out / "demo-summary.json", summary)
    return summary


_METHOD_LABELS = {
    "gnn": "GNN chain (module map, Interaction Network, longest-path track building)",
    "dbscan": "helix-unrolling DBSCAN baseline",
}


def summary_table(summary: dict[str, Any]) -> Any:
    """The rich table printed by ``lhcml demo``."""
    from rich.table import Table

    def rate(d: dict[str, Any]) -> str:
        return (
            f"{100 * d['value']:.1f}% (+{100 * (d['high'] - d['value']):.1f} "
            f"-{100 * (d['value'] - d['low']):.1f})  [{d['k']}/{d['n']}]"
        )

    fid = summary["fiducial"]
    eff_label = f"efficiency ({summary['matching']}; pT > {fid['pt_min']:g} GeV, |eta| < "
    eff_label += f"{fid['abs_eta_max']:g})"
    table = Table(title="lhcml demo", show_header=True, header_style="bold")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    sim_time = summary["simulation_seconds_per_event"]
    rows = [
        ("events (ttbar + pile-up)", f"{summary['events']} at <mu> = {summary['mu']:g}"),
        (
            "simulation time / event",
            "resumed from disk" if sim_time is None else f"{sim_time:.2f} s",
        ),
        ("hits / event", f"{summary['hits_per_event']:.0f}"),
        ("particles with hits / event", f"{summary['particles_with_hits_per_event']:.0f}"),
        ("reconstruction", summary["reconstruction"]),
        ("reconstruction time / event", f"{summary['reconstruction_seconds_per_event']:.2f} s"),
        ("tracks / event", f"{summary['tracks_per_event']:.0f}"),
        ("TrackML score", f"{summary['trackml_score']:.3f}"),
        (eff_label, rate(summary["efficiency"])),
        ("fake rate", rate(summary["fake_rate"])),
        ("duplicate rate", rate(summary["duplicate_rate"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
