"""``lhcml reconstruct``: find tracks in events and write TrackML submissions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from lhcml.cli._options import EventIdsOpt, EventsArg


def reconstruct(
    events: EventsArg,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for event*-submission.csv files.")
    ] = Path("submissions"),
    event_id: EventIdsOpt = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            "--finder",
            help="Track finder: 'gnn' (module map + edge filter + Interaction Network + "
            "track building, the shipped model set), 'dbscan' (helix-unrolling baseline) "
            "or 'maskformer' (hit filter + MaskFormer transformer; --model DIR from "
            "`lhcml maskformer train`).",
        ),
    ] = "gnn",
    pt_min: Annotated[
        float, typer.Option(help="DBSCAN: lowest pT hypothesis of the scan [GeV].")
    ] = 0.8,
    model: Annotated[
        Path | None,
        typer.Option(
            help="GNN: model-set folder (default: the shipped one); MaskFormer: trained "
            "model folder."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="GNN / MaskFormer: 'cpu' or 'cuda'.")] = "cpu",
    detectors: Annotated[
        Path | None,
        typer.Option(
            help="GNN: detectors.csv(.gz) of the events' module numbering (default: one "
            "beside the events, as in the TrackML data)."
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="GNN: torch CPU threads.")] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="GNN: run the networks with 'torch' or 'onnx' (ONNX Runtime, CPU; needs "
            'pip install "lhcml[onnx]").'
        ),
    ] = "torch",
    precision: Annotated[
        str,
        typer.Option(
            help="GNN: precision of the Interaction Network's CPU matrix products: "
            "'float32' (as trained), 'bfloat16' (float32 sums; ~3x faster products on CPUs "
            "with Intel AMX) or 'auto' (bfloat16 where the CPU has AMX)."
        ),
    ] = "auto",
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            help="Events reconstructed in parallel, one process and one torch thread each.",
        ),
    ] = 1,
) -> None:
    """Reconstruct tracks and write one ``hit_id,track_id`` CSV per event (-1: no track)."""
    from rich.console import Console

    from lhcml.reco.run import reconstruct_events

    if threads:
        import torch

        torch.set_num_threads(threads)
    start = time.perf_counter()
    result = reconstruct_events(
        events,
        out,
        event_ids=event_id,
        method=method,
        pt_min=pt_min,
        model_dir=model,
        device=device,
        detectors=detectors,
        backend=backend,
        precision=precision,
        jobs=jobs,
    )
    wall = time.perf_counter() - start
    console = Console()
    for r in result:
        if r.unknown_hits:
            # Those hits get no edge: their particles cannot be found (wrong volume ids,
            # another detector, a module map fit on too few events).
            console.print(
                f"[yellow]warning:[/] event {r.event_id}: {r.unknown_hits} of {r.n_hits} hits "
                f"({r.unknown_share:.1%}) are in modules the module map never saw; they are "
                "on no track",
                highlight=False,
            )
    n = max(len(result), 1)
    # Per event: the finder's own time, and the wall clock of the whole command (reading,
    # writing, process start-up included) over the events.
    console.print(
        f"wrote {len(result)} submission(s) to [bold]{out}[/] "
        f"({sum(r.seconds for r in result) / n:.2f} s per event in the finder, "
        f"{wall / n:.2f} s per event wall clock with {jobs} job(s))"
    )
