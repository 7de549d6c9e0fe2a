"""``lhcml gnn``: the GNN track-finding chain, stage by stage (train / infer / evaluate).

Stages exchange files (each stage's ``train`` / ``infer`` / ``evaluate`` modules in
``lhcml.gnn``): events -> graphs (module map or metric
learning) -> filtered graphs (edge filter) -> scored graphs (edge classifier) ->
submissions (track building). ``lhcml gnn chain train CONFIG`` runs them all from one
YAML config (``experiments/gnn/``) and exports a model set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lhcml.cli._options import EventIdsOpt

gnn_app = typer.Typer(
    name="gnn",
    help="GNN track finding (GNN4ITk chain): graph construction, edge filter, edge "
    "classification, track building; each stage has train / infer / evaluate.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
module_map_app = typer.Typer(help="Graph construction with a module map.", no_args_is_help=True)
metric_app = typer.Typer(
    help="Graph construction by metric learning (embedding + faiss radius graph).",
    no_args_is_help=True,
)
filter_app = typer.Typer(help="Edge filter MLP that shrinks the graphs.", no_args_is_help=True)
classifier_app = typer.Typer(
    help="Edge classification with the Interaction Network.", no_args_is_help=True
)
tracks_app = typer.Typer(help="Track building from scored edges.", no_args_is_help=True)
chain_app = typer.Typer(help="The whole chain from one config.", no_args_is_help=True)
gnn_app.add_typer(module_map_app, name="module-map")
gnn_app.add_typer(metric_app, name="metric-learning")
gnn_app.add_typer(filter_app, name="edge-filter")
gnn_app.add_typer(classifier_app, name="edge-classifier")
gnn_app.add_typer(tracks_app, name="track-building")
gnn_app.add_typer(chain_app, name="chain")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML chain config (experiments/gnn/*.yaml)."),
]
ThreadsOpt = Annotated[
    int, typer.Option(help="torch CPU threads (1 is fastest on a busy shared machine).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu or cuda (cuda:N).")]
TrainDeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="Where the network trains: cpu or cuda (cuda:N); default: the config's "
        "trainer section (CPU unless it says otherwise).",
    ),
]


def _on_device(section: dict[str, Any], device: str | None) -> dict[str, Any]:
    """A stage section whose Lightning trainer runs on ``device`` (``--device``; ``None``
    keeps the config's, e.g. a DDP ``devices: 2``)."""
    from lhcml._device import trainer_device

    if device is None:
        return section
    return {**section, "trainer": {**(section.get("trainer") or {}), **trainer_device(device)}}


def _print(result: dict[str, Any]) -> None:
    from rich.console import Console

    shown = {k: v for k, v in result.items() if k != "files"}
    Console().print_json(json.dumps(shown, default=str))


def _section(config: Path | None, name: str) -> tuple[dict[str, Any], Any]:
    from lhcml.gnn.config import load_config, section, target_selection

    cfg = load_config(config)
    return section(cfg, name), target_selection(cfg)


# -- module map ---------------------------------------------------------------------------


@module_map_app.command("train")
def module_map_train(
    events: Annotated[
        list[Path], typer.Option("--events", "-e", help="Event directories (repeatable).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for module_map.parquet.")],
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Learn the module pairs and cut windows from events with truth."""
    from lhcml.gnn.graph_construction.train import module_map_train

    sec, _ = _section(config, "module_map")
    _print(module_map_train(events, out, sec.get("params"), progress=not quiet))


@module_map_app.command("infer")
def module_map_infer(
    model: Annotated[Path, typer.Option("--model", "-m", help="Folder with module_map.parquet.")],
    events: Annotated[Path, typer.Option("--events", "-e", help="Event directory or prefix.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the graph files.")],
    event_id: EventIdsOpt = None,
    detectors: Annotated[
        Path | None,
        typer.Option(help="detectors.csv of the events' module numbering (default: beside them)."),
    ] = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build the module-map graph of each event."""
    from lhcml.gnn.graph_construction.infer import module_map_infer

    sec, target = _section(config, "module_map")
    _print(
        module_map_infer(
            model,
            events,
            out,
            event_ids=event_id,
            detectors=detectors,
            target=target,
            overrides=sec.get("apply"),
            progress=not quiet,
        )
    )


def _evaluate_graphs(graphs: Path, out: Path | None, threshold: float | None = None) -> None:
    from lhcml.gnn.graph_construction.evaluate import evaluate_graphs

    _print(evaluate_graphs(graphs, threshold=threshold, out=out))


@module_map_app.command("evaluate")
def module_map_evaluate(
    graphs: Annotated[Path, typer.Argument(help="Graph folder.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON file.")] = None,
) -> None:
    """Graph edge efficiency, purity and edges per event."""
    _evaluate_graphs(graphs, out)


# -- metric learning ---------------------------------------------------------------------------


@metric_app.command("train")
def metric_train(
    train: Annotated[Path, typer.Option(help="Training events (directory).")],
    val: Annotated[Path, typer.Option(help="Validation events (directory).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file (.pt).")],
    config: ConfigOpt = None,
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
    device: TrainDeviceOpt = None,
) -> None:
    """Train the hit embedding (hinge loss; random and hard negatives)."""
    from lhcml.gnn.graph_construction.train import metric_learning_train, write_node_graphs
    from lhcml.gnn.runtime import set_threads

    set_threads(threads)
    sec, target = _section(config, "metric_learning")
    sec = _on_device(sec, device)
    work = out.parent / f"{out.stem}-nodes"
    for split, src in (("train", train), ("val", val)):
        write_node_graphs(src, work / split, target=target, progress=not quiet)
    _print(metric_learning_train(work / "train", work / "val", out, sec, progress=not quiet))


@metric_app.command("infer")
def metric_infer(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model file.")],
    events: Annotated[Path, typer.Option("--events", "-e", help="Event directory or prefix.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the graph files.")],
    event_id: EventIdsOpt = None,
    radius: Annotated[float | None, typer.Option(help="Graph radius (default: model's).")] = None,
    k_max: Annotated[int | None, typer.Option(help="Neighbours per hit at most.")] = None,
    config: ConfigOpt = None,
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
    device: DeviceOpt = "cpu",
) -> None:
    """Embed each event's hits and build the radius graph with faiss."""
    from lhcml._device import check_device
    from lhcml.gnn.graph_construction.infer import metric_learning_infer
    from lhcml.gnn.runtime import set_threads

    set_threads(threads)
    _, target = _section(config, "metric_learning")
    graph = {k: v for k, v in (("r", radius), ("k_max", k_max)) if v is not None}
    _print(
        metric_learning_infer(
            model,
            events,
            out,
            event_ids=event_id,
            graph=graph,
            target=target,
            progress=not quiet,
            device=check_device(device),
        )
    )


@metric_app.command("evaluate")
def metric_evaluate(
    graphs: Annotated[Path, typer.Argument(help="Graph folder.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON file.")] = None,
) -> None:
    """Graph edge efficiency, purity and edges per event."""
    _evaluate_graphs(graphs, out)


# -- edge filter / classifier ------------------------------------------------------------------


@filter_app.command("train")
def filter_train(
    train: Annotated[Path, typer.Option(help="Training graphs.")],
    val: Annotated[Path, typer.Option(help="Validation graphs (set the cut).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file (.pt).")],
    config: ConfigOpt = None,
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
    device: TrainDeviceOpt = None,
) -> None:
    """Train the edge filter MLP (weighted BCE)."""
    from lhcml.gnn.edge_classification.train import edge_filter_train
    from lhcml.gnn.runtime import set_threads

    set_threads(threads)
    sec, _ = _section(config, "edge_filter")
    _print(edge_filter_train(train, val, out, _on_device(sec, device), progress=not quiet))


def _edge_infer(
    kind: str,
    model: Path,
    graphs: Path,
    out: Path,
    device: str,
    threshold: float | None,
    threads: int,
    quiet: bool,
) -> None:
    from lhcml._device import check_device
    from lhcml.gnn.edge_classification.infer import edge_infer
    from lhcml.gnn.runtime import set_threads

    set_threads(threads)
    _print(
        edge_infer(
            kind,
            model,
            graphs,
            out,
            device=check_device(device),
            threshold=threshold,
            progress=not quiet,
        )
    )


@filter_app.command("infer")
def filter_infer(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model file.")],
    graphs: Annotated[Path, typer.Option("--graphs", "-g", help="Input graph folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output graph folder.")],
    threshold: Annotated[float | None, typer.Option(help="Score cut (default: model's).")] = None,
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
) -> None:
    """Score edges and drop those below the cut."""
    _edge_infer("edge_filter", model, graphs, out, device, threshold, threads, quiet)


@filter_app.command("evaluate")
def filter_evaluate(
    graphs: Annotated[Path, typer.Argument(help="Filtered graph folder.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON file.")] = None,
) -> None:
    """Edge efficiency (all target edges), purity and edges per event after the filter."""
    _evaluate_graphs(graphs, out)


@classifier_app.command("train")
def classifier_train(
    train: Annotated[Path, typer.Option(help="Training graphs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file (.pt).")],
    val: Annotated[Path | None, typer.Option(help="Validation graphs.")] = None,
    config: ConfigOpt = None,
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
    device: TrainDeviceOpt = None,
) -> None:
    """Train the Interaction Network (weighted BCE; Lightning, CPU or GPUs)."""
    from lhcml.gnn.edge_classification.train import edge_classifier_train
    from lhcml.gnn.runtime import set_threads

    set_threads(threads)
    sec, _ = _section(config, "edge_classifier")
    _print(edge_classifier_train(train, val, out, _on_device(sec, device), progress=not quiet))


@classifier_app.command("infer")
def classifier_infer(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model file.")],
    graphs: Annotated[Path, typer.Option("--graphs", "-g", help="Input graph folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output graph folder.")],
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
) -> None:
    """Score every edge with the GNN."""
    _edge_infer("edge_classifier", model, graphs, out, device, None, threads, quiet)


@classifier_app.command("evaluate")
def classifier_evaluate(
    graphs: Annotated[Path, typer.Argument(help="Scored graph folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for JSON and plots.")] = Path(
        "edge-classifier-evaluation"
    ),
) -> None:
    """Edge efficiency and purity versus the cut, ROC curve and AUC."""
    from lhcml.gnn.edge_classification.evaluate import edge_classifier_evaluate

    _print(edge_classifier_evaluate(graphs, out))


# -- track building ---------------------------------------------------------------------------


@tracks_app.command("infer")
def tracks_infer(
    graphs: Annotated[Path, typer.Option("--graphs", "-g", help="Scored graph folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for submissions.")],
    method: Annotated[
        str | None, typer.Option(help="cc, junction, walk or cc_walk (default: config).")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="Edge score cut.")] = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build tracks from scored graphs; write event*-submission.csv."""
    from lhcml.gnn.config import load_config, section
    from lhcml.gnn.track_building.infer import track_building_infer

    cfg = load_config(config)
    params = dict(section(cfg, "track_building"))
    if method is not None:
        params["method"] = method
    if threshold is not None:
        params["cc_threshold"] = params["walk_threshold"] = threshold
    _print(track_building_infer(graphs, out, params, progress=not quiet))


@tracks_app.command("evaluate")
def tracks_evaluate(
    events: Annotated[Path, typer.Option("--events", "-e", help="Event directory or prefix.")],
    submissions: Annotated[Path, typer.Option("--submissions", "-s", help="Submission folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for JSON and plots.")] = Path(
        "track-evaluation"
    ),
    track_min_hits: Annotated[int, typer.Option(help="Tracks with fewer hits are ignored.")] = 5,
    config: ConfigOpt = None,
) -> None:
    """Track efficiency, fake and duplicate rates and TrackML score."""
    from lhcml.gnn.track_building.evaluate import track_evaluate

    _, target = _section(config, "track_building")
    _print(track_evaluate(events, submissions, out, target=target, track_min_hits=track_min_hits))


# -- the whole chain --------------------------------------------------------------------------


@chain_app.command("train")
def chain_train(
    config: Annotated[Path, typer.Argument(help="YAML chain config (experiments/gnn/*.yaml).")],
    work: Annotated[Path, typer.Option("--work", "-w", help="Working folder.")] = Path("runs/gnn"),
    data: Annotated[
        Path | None, typer.Option(help="Folder of the simulated samples (default: WORK/events).")
    ] = None,
    export: Annotated[
        Path | None, typer.Option(help="Copy the trained model set here (e.g. the package's).")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Simulation processes.")] = 1,
    resume: Annotated[
        bool, typer.Option("--resume/--restart", help="Skip steps whose summary exists.")
    ] = True,
    until: Annotated[
        str | None,
        typer.Option(help="Stop after: module_map, metric_learning, edge_filter, edge_classifier."),
    ] = None,
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
    device: TrainDeviceOpt = None,
) -> None:
    """Simulate the samples, train / infer / evaluate every stage, export the model set.

    ``--device`` sets where the networks train (the inference steps run on the CPU)."""
    from rich.console import Console

    from lhcml.gnn.chain import train_chain
    from lhcml.gnn.config import load_config
    from lhcml.gnn.runtime import set_threads

    set_threads(threads)
    console = Console()
    cfg = load_config(config)
    for stage in ("metric_learning", "edge_filter", "edge_classifier"):
        if isinstance(cfg.get(stage), dict) and "model" in cfg[stage]:
            cfg[stage] = _on_device(cfg[stage], device)
    metrics = train_chain(
        cfg,
        work,
        data_dir=data,
        export=export,
        jobs=jobs,
        resume=resume,
        progress=not quiet,
        until=until,
        log=lambda m: console.print(f"[bold]gnn chain[/] {m}"),
    )
    metrics.pop("config", None)
    _print(metrics)


@chain_app.command("evaluate")
def chain_evaluate(
    events: Annotated[Path, typer.Option("--events", "-e", help="Event directory or prefix.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "gnn-evaluation"
    ),
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Model set (default: shipped).")
    ] = None,
    event_id: EventIdsOpt = None,
    device: DeviceOpt = "cpu",
    threads: ThreadsOpt = 1,
    quiet: QuietOpt = False,
) -> None:
    """Run the whole chain in memory on events with truth and evaluate the tracks."""
    from lhcml.gnn.chain import evaluate_chain
    from lhcml.gnn.pipeline import default_model_dir
    from lhcml.gnn.runtime import set_threads

    set_threads(threads)
    _print(
        evaluate_chain(
            model or default_model_dir(),
            events,
            out,
            event_ids=event_id,
            device=device,
            progress=not quiet,
        )
    )
