"""``lhcml evaluate``: efficiency, fake and duplicate rates and the TrackML score of
submissions on one or many events, with ``summary.json`` and plots; with ``--seeds``, the
seeding efficiency, fake and duplicate rates, seeds per event and parameter resolutions of
seed files (``lhcml seed``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from lhcml.cli._options import EventIdsOpt

_SUBMISSIONS_HELP = (
    "Submission files or directories. In a directory, event<N>-submission.csv or "
    "event<N>.csv (.csv.gz, .parquet) is event N's; a file named so is event N's; another "
    "file is the only evaluated event's, or covers several events with an event_id column."
)


def evaluate(
    events: Annotated[
        Path,
        typer.Argument(help="Event directory (all events, or --event-id), or one event prefix."),
    ],
    submissions: Annotated[list[Path], typer.Argument(help=_SUBMISSIONS_HELP)],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for summary.json and the plots.")
    ] = Path("evaluation"),
    event_id: EventIdsOpt = None,
    matching: Annotated[
        str,
        typer.Option(
            help="Truth matching: 'atlas' (purity > 0.5), 'double_majority' (> 0.5 both "
            "ways, as the TrackML score) or 'acts' (>= 0.5 both ways)."
        ),
    ] = "double_majority",
    pt_min: Annotated[
        float | None,
        typer.Option(help="Fiducial particles: minimum pT [GeV] (default 1; --seeds: 0.5)."),
    ] = None,
    pt_max: Annotated[float, typer.Option(help="Fiducial particles: maximum pT [GeV].")] = math.inf,
    eta_max: Annotated[
        float | None,
        typer.Option(help="Fiducial particles: maximum |eta| (default 4; --seeds: 2.5)."),
    ] = None,
    min_hits: Annotated[
        int | None,
        typer.Option(help="Fiducial particles: minimum number of hits (default 3; --seeds: 9)."),
    ] = None,
    primary_only: Annotated[
        bool,
        typer.Option("--primary-only/--all", help="Fiducial particles: primaries only, or all."),
    ] = True,
    max_prod_r: Annotated[
        float | None,
        typer.Option(help="Fiducial particles: maximum production radius [mm]."),
    ] = None,
    exclude_electrons: Annotated[
        bool,
        typer.Option(
            "--exclude-electrons/--include-electrons",
            help="Fiducial particles: drop electrons (|PDG id| = 11).",
        ),
    ] = False,
    track_min_hits: Annotated[
        int, typer.Option(help="Tracks with fewer hits are ignored in every rate.")
    ] = 3,
    interval: Annotated[
        str, typer.Option(help="Binomial interval (68.27 %): 'clopper-pearson' or 'wilson'.")
    ] = "clopper-pearson",
    skip_missing: Annotated[
        bool,
        typer.Option("--skip-missing", help="Evaluate only the events that have a submission."),
    ] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
    models: Annotated[
        Path | None,
        typer.Option(
            help="GNN model set whose module map's coverage of the events' true edges is "
            "reported (default: the shipped set)."
        ),
    ] = None,
    coverage: Annotated[
        bool,
        typer.Option(
            "--coverage/--no-coverage",
            help="Report the share of the fiducial particles' true edges outside the module "
            "map, and of hits in modules it never saw.",
        ),
    ] = True,
    seeds: Annotated[
        bool,
        typer.Option(
            "--seeds",
            help="The files are seed files (lhcml seed): report seeding efficiency, fake and "
            "duplicate rates, seeds per event and parameter resolutions instead.",
        ),
    ] = False,
) -> None:
    """Efficiency, fake and duplicate rates and TrackML score of submissions on EVENTS.

    Rates are binned in pT and eta with 68 % binomial intervals; writes OUT/summary.json
    and PNG plots and prints a summary table. With --seeds the files are seed files
    (event<N>-seeds.parquet from lhcml seed): a particle is found when one seed has all
    three space points on it.
    """
    from rich.console import Console

    from lhcml.errors import ConfigError
    from lhcml.metrics.evaluate import evaluate_events
    from lhcml.metrics.stats import INTERVALS
    from lhcml.metrics.tracking import MATCHINGS, FiducialSelection, TrackSelection

    if matching not in MATCHINGS:
        raise ConfigError(f"--matching: unknown '{matching}'; choose from {list(MATCHINGS)}")
    if interval not in INTERVALS:
        raise ConfigError(f"--interval: unknown '{interval}'; choose from {list(INTERVALS)}")
    if pt_min is None:
        pt_min = 0.5 if seeds else 1.0
    if eta_max is None:
        eta_max = 2.5 if seeds else 4.0
    if min_hits is None:
        min_hits = 9 if seeds else 3
    if pt_min > pt_max:
        raise ConfigError(f"--pt-min ({pt_min}) is above --pt-max ({pt_max})")
    fiducial = FiducialSelection(
        pt_min=pt_min,
        pt_max=pt_max,
        abs_eta_max=eta_max,
        min_hits=min_hits,
        primary_only=primary_only,
        max_prod_r=max_prod_r,
        exclude_electrons=exclude_electrons,
    )
    if seeds:
        _evaluate_seeds(events, submissions, out, event_id, fiducial, interval, skip_missing, plots)
        return
    result = evaluate_events(
        events,
        submissions,
        out_dir=out,
        event_ids=event_id,
        matching=matching,  # type: ignore[arg-type]
        fiducial=fiducial,
        track_selection=TrackSelection(min_hits=track_min_hits),
        interval=interval,  # type: ignore[arg-type]
        skip_missing=skip_missing,
        plots=plots,
    )
    perf = result.performance
    table = _rates_table(f"{len(result.events)} event(s), {perf.matching} matching", perf)
    std = "" if math.isnan(result.score_std) else f" +- {result.score_std:.4f} (std)"
    table.add_row("TrackML score", f"{result.score_mean:.4f}", std, "")
    console = Console()
    console.print(table)
    if coverage:
        cov = _module_map_coverage(events, [e.event_id for e in result.events], models, fiducial)
        if cov is not None:
            k, n = cov["truth_edges_outside"], cov["truth_edges"]
            console.print(
                f"true edges of fiducial particles outside the module map: {k / max(n, 1):.2%}"
                f" ({k} / {n}); hits in modules it never saw: "
                f"{cov['unknown_hits'] / max(cov['hits'], 1):.2%} ({cov['unknown_hits']})",
                highlight=False,
            )
            summary = out / "summary.json"
            if summary.is_file():
                from lhcml.io import write_json_atomic

                data = json.loads(summary.read_text())
                data["module_map_coverage"] = cov
                write_json_atomic(summary, data)
    console.print(f"wrote {len(result.files)} file(s) to [bold]{out}[/]", highlight=False)


def _module_map_coverage(
    events: Path, event_ids: list[int], models: Path | None, fiducial: Any
) -> dict[str, Any] | None:
    """Pooled :func:`~lhcml.gnn.graph_construction.evaluate.module_map_coverage` of the
    evaluated events (``None`` when the model set has no module map)."""
    from lhcml.gnn.files import find_detectors
    from lhcml.gnn.graph_construction.evaluate import module_map_coverage
    from lhcml.gnn.pipeline import GNNChain
    from lhcml.io import read_detectors, read_event

    chain = GNNChain(models, graph_construction="module_map")
    if getattr(chain, "module_map", None) is None:
        return None
    det_file = find_detectors(events)
    det = read_detectors(det_file) if det_file is not None else None
    total: dict[str, Any] = {}
    for eid in event_ids:
        event = read_event(events, eid if events.is_dir() else None)
        one = module_map_coverage(
            event, chain.module_map, centres=chain.centres, detectors=det, fiducial=fiducial
        )
        for key, value in one.items():
            total[key] = total.get(key, 0) + value
    total["model_set"] = str(chain.model_dir)
    return total


def _evaluate_seeds(
    events: Path,
    sources: list[Path],
    out: Path,
    event_ids: list[int] | None,
    fiducial: object,
    interval: str,
    skip_missing: bool,
    plots: bool,
) -> None:
    """``--seeds``: seeding performance of seed files, printed and written to OUT."""
    from rich.console import Console

    from lhcml.seeding.evaluate import evaluate_seed_files

    result = evaluate_seed_files(
        events,
        sources,
        out_dir=out,
        event_ids=event_ids,
        fiducial=fiducial,  # type: ignore[arg-type]
        interval=interval,  # type: ignore[arg-type]
        skip_missing=skip_missing,
        plots=plots,
    )
    perf = result.performance
    table = _rates_table(f"seeds: {perf.n_events} event(s)", perf)
    table.add_row("seeds per event", f"{perf.seeds_per_event:.1f}", "", "")
    if result.resolution is not None:
        for key, est in result.resolution.overall.items():
            label = "pT (relative)" if key == "pt" else key
            table.add_row(f"sigma68 {label}", f"{est.width:.4g}", "", "")
    console = Console()
    console.print(table)
    console.print(f"wrote {len(result.files)} file(s) to [bold]{out}[/]", highlight=False)


def _rates_table(title: str, perf: Any) -> Any:
    """A rich table of efficiency, fake and duplicate rates with intervals and counts."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("68% interval", justify="right")
    table.add_column("k / n", justify="right")
    for name, ratio in (
        ("efficiency", perf.efficiency),
        ("fake rate", perf.fake_rate),
        ("duplicate rate", perf.duplicate_rate),
    ):
        if ratio.n:
            table.add_row(
                name,
                f"{ratio.value:.4f}",
                f"[{ratio.low:.4f}, {ratio.high:.4f}]",
                f"{ratio.k} / {ratio.n}",
            )
        else:
            table.add_row(name, "-", "-", "0 / 0")
    return table
