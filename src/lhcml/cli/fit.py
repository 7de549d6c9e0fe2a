"""``lhcml fit``: track fitting - prepare candidates, train TrackFormer, infer, evaluate.

Subcommands (a typer group, registered in ``lhcml.cli.main`` with
``app.add_typer(fit_app, name="fit")``):

- ``prepare EVENTS... -o cands.npz``: truth candidates (+ corrupted copies) of events;
- ``train CONFIG -o RUN_DIR``: train TrackFormer from an experiment YAML;
- ``infer EVENTS -o OUT``: per event, fitted parameters of every candidate (truth tracks,
  or a finder's submissions) and, with the quality heads, the cleaned submission;
- ``quality --val-events ... --test-events ... -o OUT``: the quality heads on a track
  finder's output (the GNN chain's submissions): cleaning cuts chosen on validation
  events, efficiency / fake / duplicate rates before and after on test events
  (``--store`` writes the cuts beside the model, where ``infer --clean`` reads them);
- ``evaluate EVENTS -o OUT``: resolutions, pulls, throughput of the helix fit, the lhcml
  and ACTS Kalman filters and TrackFormer on the same candidates, and quality rates
  before / after cleaning; ``summary.json`` and plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lhcml.cli._options import EventIdsOpt

fit_app = typer.Typer(
    help="Track fitting: helix fit, Kalman filters (lhcml, ACTS), TrackFormer.",
    no_args_is_help=True,
    add_completion=False,
)

FITTERS = ("helix", "kalman", "acts", "trackformer")


def default_model_dir() -> Path:
    """The shipped model (``lhcml/fitting/models/default``)."""
    return Path(__file__).resolve().parents[1] / "fitting" / "models" / "default"


def _selection(pt_min: float, pt_max: float, eta_max: float, min_hits: int) -> Any:
    from lhcml.errors import ConfigError
    from lhcml.fitting.candidates import TruthSelection

    if not 0 <= pt_min <= pt_max:
        raise ConfigError(f"--pt-min / --pt-max: need 0 <= {pt_min} <= {pt_max}")
    if eta_max <= 0:
        raise ConfigError(f"--eta-max: must be > 0, got {eta_max}")
    if min_hits < 3:
        raise ConfigError(f"--min-hits: must be >= 3, got {min_hits}")
    return TruthSelection(pt_min=pt_min, pt_max=pt_max, eta_max=eta_max, min_hits=min_hits)


def _progress() -> Any:
    from lhcml.cli._progress import progress_bar

    return progress_bar("[progress.description]{task.description}", transient=True)


@fit_app.command("prepare")
def prepare(
    events: Annotated[list[Path], typer.Argument(help="Event directories.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Candidate file (.npz).")],
    corrupt: Annotated[
        bool,
        typer.Option(
            "--corrupt/--truth-only",
            help="Add corrupted copies (wrong hits, merged, dropped hits, fakes).",
        ),
    ] = True,
    pt_min: Annotated[float, typer.Option(help="Minimum true pT [GeV].")] = 0.4,
    pt_max: Annotated[float, typer.Option(help="Maximum true pT [GeV].")] = 100.0,
    eta_max: Annotated[float, typer.Option(help="Maximum true |eta|.")] = 2.6,
    min_hits: Annotated[int, typer.Option(help="Minimum hits per particle.")] = 7,
    max_events: Annotated[
        int | None, typer.Option(help="At most this many events per directory.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the corruption.")] = 1,
    submissions: Annotated[
        list[Path] | None,
        typer.Option(
            help="A track finder's event*-submission.csv directory, one per EVENTS "
            "directory (repeatable): candidates are its tracks, truth-labelled, instead "
            "of truth tracks (for the quality heads)."
        ),
    ] = None,
    min_track_hits: Annotated[
        int, typer.Option(help="With --submissions: drop tracks with fewer hits.")
    ] = 5,
) -> None:
    """Make training / evaluation candidates from simulated events."""
    from rich.console import Console

    from lhcml.fitting.candidates import Corruption
    from lhcml.fitting.train import prepare_candidates

    sel = _selection(pt_min, pt_max, eta_max, min_hits)
    with _progress() as bar:
        task = bar.add_task("prepare", total=None)
        cands = prepare_candidates(
            events,
            selection=sel,
            corruption=Corruption() if corrupt else None,
            seed=seed,
            max_events=max_events,
            submissions=submissions,
            min_hits=min_track_hits,
            progress=lambda k, n: bar.update(task, completed=k, total=n),
        )
    cands.save(out)
    Console().print(
        f"wrote {len(cands)} candidates ({int(cands.is_pure.sum())} pure, "
        f"{int((~cands.is_real).sum())} fake) to [bold]{out}[/]"
    )


@fit_app.command("train")
def train_cmd(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (experiments/trackformer/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")],
    minutes: Annotated[
        float | None, typer.Option(help="Wall-clock limit, overrides training.max_minutes.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda (cuda:N).")] = "cpu",
) -> None:
    """Train TrackFormer; writes model.pt, config.yaml and metrics.json."""
    from rich.console import Console

    from lhcml.fitting.train import train

    result = train(config, out, max_minutes=minutes, progress=True, device=device)
    console = Console()
    console.print(
        f"trained {result.epochs} epoch(s), {result.steps} steps in {result.seconds:.0f} s "
        f"-> [bold]{out}[/]"
    )
    val = result.metrics.get("validation")
    if val:
        res = val["resolution"]
        w = res["qopt"]["overall"]["clipped_rms"]["width"]
        p = res["qopt"]["pull"]["clipped_rms"]["width"]
        console.print(
            f"validation: q/pT resolution {100 * w:.2f} %, pull width {p:.2f}, "
            f"charge accuracy {res['charge_accuracy']:.4f}, "
            f"candidate accuracy {val['candidate_accuracy']:.3f}, hit accuracy {val['hit_accuracy']:.3f}"
        )


def _candidates_for(event: Any, submissions: Path | None, selection: Any) -> Any:
    from lhcml.fitting.candidates import from_assignment, truth_candidates

    if submissions is None:
        return truth_candidates(event, selection)
    from lhcml.metrics.evaluate import read_submission

    path = submissions / f"event{event.event_id:09d}-submission.csv"
    return from_assignment(event, read_submission(path))


@fit_app.command("infer")
def infer(
    events: Annotated[Path, typer.Argument(help="Event directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    model: Annotated[
        Path | None, typer.Option(help="Trained model directory (default: the shipped one).")
    ] = None,
    submissions: Annotated[
        Path | None,
        typer.Option(help="A finder's event*-submission.csv directory (default: truth tracks)."),
    ] = None,
    clean: Annotated[
        bool,
        typer.Option(
            "--clean/--no-clean",
            help="Drop fakes and bad hits first (cuts: the model's cleaning.json, see "
            "'lhcml fit quality').",
        ),
    ] = True,
    event_id: EventIdsOpt = None,
    backend: Annotated[
        str,
        typer.Option(help="Run TrackFormer with 'torch' or 'onnx' (ONNX Runtime, exported now)."),
    ] = "torch",
    device: Annotated[str, typer.Option(help="torch backend: cpu or cuda (cuda:N).")] = "cpu",
) -> None:
    """Fit every candidate with TrackFormer (per event: tracks.csv and submission.csv).

    Writes ``event*-tracks.csv`` (parameters, uncertainties, candidate score) and the
    candidates as ``event*-submission.csv``, after cleaning unless ``--no-clean``; with
    ``--submissions`` the cleaned submission keeps the finder's track ids (removed hits
    unassigned). Files are written atomically.
    """
    import numpy as np
    import pandas as pd
    from rich.console import Console

    from lhcml.errors import ConfigError
    from lhcml.fitting.checkpoint import load_model
    from lhcml.fitting.evaluate import predict
    from lhcml.fitting.quality import assignment_table, clean_candidates, cleaning_from_model
    from lhcml.fitting.targets import PARAMS
    from lhcml.io import list_events, read_event, write_atomic

    if backend not in ("torch", "onnx"):
        raise ConfigError(f"--backend: unknown '{backend}'; choose torch or onnx")
    model_dir = model or default_model_dir()
    net, feat, loss = load_model(model_dir)
    if backend == "onnx":
        from lhcml.fitting.onnx import OnnxTrackFormer

        if device != "cpu":
            raise ConfigError("--backend onnx runs on the CPU; use --device cpu")
        net = OnnxTrackFormer(net)
    else:
        from lhcml._device import check_device

        net = net.to(check_device(device))
    cuts = cleaning_from_model(model_dir)
    ids = event_id or list_events(events)
    out.mkdir(parents=True, exist_ok=True)
    sel = _selection(0.0, 1e9, 10.0, 3)
    n_tracks = 0
    with _progress() as bar:
        task = bar.add_task("infer", total=len(ids))
        for eid in ids:
            ev = read_event(events, eid)
            cands = _candidates_for(ev, submissions, sel)
            if clean and len(cands):
                pred = predict(net, feat, loss, cands)
                cands, _ = clean_candidates(cands, pred.cand_score, pred.hit_score, cuts)
            pred = predict(net, feat, loss, cands)
            # A finder's own track ids where there is one; else the candidate index.
            tid = cands.track_id if submissions is not None else np.arange(len(cands))
            table = pd.DataFrame({"track_id": tid, "nhits": cands.lengths})
            for j, name in enumerate(PARAMS):
                table[name] = pred.params[:, j]
                table[f"sigma_{name}"] = pred.sigma[:, j]
            table["score"] = pred.cand_score
            prefix = out / f"event{eid:09d}"
            write_atomic(Path(f"{prefix}-tracks.csv"), lambda p, t=table: t.to_csv(p, index=False))
            sub = assignment_table(cands)
            sub["track_id"] = tid[sub["track_id"].to_numpy()]
            write_atomic(
                Path(f"{prefix}-submission.csv"), lambda p, s=sub: s.to_csv(p, index=False)
            )
            n_tracks += len(cands)
            bar.advance(task)
    Console().print(f"fitted {n_tracks} tracks in {len(ids)} event(s) -> [bold]{out}[/]")


@fit_app.command("quality")
def quality_cmd(
    val_events: Annotated[Path, typer.Option(help="Validation events (cuts are tuned here).")],
    val_submissions: Annotated[Path, typer.Option(help="The finder's validation submissions.")],
    test_events: Annotated[Path, typer.Option(help="Held-out events (rates reported here).")],
    test_submissions: Annotated[Path, typer.Option(help="The finder's test submissions.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (quality.json).")],
    model: Annotated[
        Path | None, typer.Option(help="Trained model directory (default: the shipped one).")
    ] = None,
    max_events: Annotated[int | None, typer.Option(help="At most this many per split.")] = None,
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 1,
    store: Annotated[
        bool,
        typer.Option(
            "--store/--no-store",
            help="Write the cuts to MODEL/cleaning.json and the rates to MODEL/metrics.json.",
        ),
    ] = False,
) -> None:
    """Quality heads on a track finder's output: cuts on val, rates before / after on test."""
    from rich.console import Console
    from rich.table import Table

    from lhcml.fitting.gnn_quality import run
    from lhcml.io import write_json_atomic

    console = Console()
    res = run(
        model or default_model_dir(),
        val_events,
        val_submissions,
        test_events,
        test_submissions,
        max_events=max_events,
        threads=threads,
        store=store,
        progress=lambda message: console.print(f"  {message}", highlight=False),
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "quality.json", res)
    t = res["test"]
    table = Table(title=f"test: {len(t['events'])} events, ATLAS matching, tracks >= 5 hits")
    for col in ("", "tracks", "efficiency", "fake rate", "duplicate rate"):
        table.add_column(col, justify="right")
    for name in ("before", "after"):
        r = t[name]
        table.add_row(
            name,
            str(r["tracks"]),
            *[
                f"{100 * r[k]['value']:.2f} %"
                for k in ("efficiency", "fake_rate", "duplicate_rate")
            ],
        )
    console.print(table)
    console.print(f"cuts (chosen on validation): {res['cleaning']} -> [bold]{out}[/]")


@fit_app.command("evaluate")
def evaluate(
    events: Annotated[Path, typer.Argument(help="Event directory (simulated, with truth).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    model: Annotated[
        Path | None, typer.Option(help="Trained model directory (default: the shipped one).")
    ] = None,
    fitters: Annotated[
        str, typer.Option(help=f"Comma-separated fitters: {', '.join(FITTERS)}.")
    ] = ",".join(FITTERS),
    max_events: Annotated[int | None, typer.Option(help="At most this many events.")] = None,
    pt_min: Annotated[float, typer.Option(help="Minimum true pT [GeV].")] = 0.5,
    pt_max: Annotated[float, typer.Option(help="Maximum true pT [GeV].")] = 10.0,
    eta_max: Annotated[float, typer.Option(help="Maximum true |eta|.")] = 2.5,
    particle: Annotated[str, typer.Option(help="ACTS particle hypothesis.")] = "pion",
    quality: Annotated[
        bool, typer.Option("--quality/--no-quality", help="Rates before / after cleaning.")
    ] = True,
    threads: Annotated[int, typer.Option(help="CPU threads for TrackFormer.")] = 1,
    module_frames: Annotated[
        bool,
        typer.Option(
            "--module-frames/--radial-frames",
            help="Endcap strip axes from the Generic detector (off for other detectors).",
        ),
    ] = True,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
    submissions: Annotated[
        Path | None,
        typer.Option(
            help="A finder's event*-submission.csv directory for the quality rates "
            "(default: truth tracks with injected corruption)."
        ),
    ] = None,
) -> None:
    """Compare fitters on the same truth tracks; summary.json and plots in OUT."""
    from rich.console import Console
    from rich.table import Table

    from lhcml.errors import ConfigError
    from lhcml.fitting.evaluate import run_comparison

    chosen = [f.strip() for f in fitters.split(",") if f.strip()]
    bad = sorted(set(chosen) - set(FITTERS))
    if bad or not chosen:
        raise ConfigError(f"--fitters: unknown {bad or '(none)'}; choose from {list(FITTERS)}")
    sel = _selection(pt_min, pt_max, eta_max, 7)
    console = Console()
    summary = run_comparison(
        events,
        out,
        fitters=chosen,
        model_dir=model or default_model_dir(),
        selection=sel,
        max_events=max_events,
        particle=particle,
        quality=quality,
        threads=threads,
        module_frames=module_frames,
        plots=plots,
        submissions=submissions,
        progress=lambda message: console.print(f"  {message}", highlight=False),
    )
    table = Table(title=f"q/pT relative resolution (clipped RMS) - {summary['tracks']} tracks")
    table.add_column("fitter")
    for lo, hi in zip(summary["pt_bins"][:-1], summary["pt_bins"][1:], strict=True):
        table.add_column(f"{lo:g}-{hi:g} GeV", justify="right")
    table.add_column("pull q/pT", justify="right")
    table.add_column("tracks/s", justify="right")
    for name, res in summary["fitters"].items():
        widths = res["resolution"]["qopt"]["vs_pt"]["clipped_rms"]["width"]
        pull = res["resolution"]["qopt"].get("pull", {}).get("clipped_rms", {}).get("width")
        table.add_row(
            name,
            *[f"{100 * w:.2f} %" if w is not None else "-" for w in widths],
            f"{pull:.2f}" if pull is not None else "-",
            f"{res['tracks_per_second']:.0f}",
        )
    console.print(table)
    if "quality" in summary:
        q = summary["quality"]
        console.print(f"candidate quality on {q['source']}:")
        for when in ("before", "after"):
            r = q[when]
            console.print(
                f"{when} cleaning: {r['tracks']} candidates, efficiency "
                f"{r['efficiency']['value']:.3f}, fake rate {r['fake_rate']['value']:.3f}, "
                f"duplicate rate {r['duplicate_rate']['value']:.3f}"
            )
    console.print(f"summary and plots in [bold]{out}[/]")
