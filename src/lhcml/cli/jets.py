"""``lhcml jets``: jet samples (Pythia 8 + FastJet) and jet taggers (ParT, PFN, BDT).

Examples::

    lhcml jets generate --process top --jets 20000 --out data/jets/top -j 2
    lhcml jets generate --process qcd --jets 20000 --out data/jets/qcd -j 2
    lhcml jets generate --process dark --events 2000 --r-inv 0.3 --out data/jets/dark
    lhcml jets train experiments/jets/part_small.yaml --out runs/jets/part_small
    lhcml jets evaluate runs/jets/part_small --data data/jets/qcd --data data/jets/top
    lhcml jets evaluate shipped --data data/jets/qcd --data data/jets/top --split all

``generate`` resumes: rerunning the same command skips the chunks already on disk.
Heavy libraries (Pythia, FastJet, torch) are imported only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="jets",
    help="Jet samples (Pythia 8 + FastJet) and jet tagging (Particle Transformer, PFN, "
    "substructure BDT): generate, train, evaluate.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.command("generate")
def generate(
    process: Annotated[str, typer.Option(help="qcd, top, w or dark.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (one sample).")],
    events: Annotated[
        int | None, typer.Option("--events", "-n", help="Events (rounded up to whole chunks).")
    ] = None,
    jets: Annotated[
        int | None, typer.Option("--jets", help="Generate until the sample has this many jets.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 1,
    pt_min: Annotated[float, typer.Option(help="Jet pT min [GeV].")] = 500.0,
    pt_max: Annotated[float, typer.Option(help="Jet pT max [GeV].")] = 600.0,
    eta_max: Annotated[float, typer.Option(help="Jet |eta| max.")] = 2.0,
    pthat_min: Annotated[
        float | None, typer.Option(help="Pythia pTHatMin [GeV].", show_default="0.8 pt-min")
    ] = None,
    pthat_max: Annotated[
        float | None, typer.Option(help="Pythia pTHatMax [GeV].", show_default="1.2 pt-max")
    ] = None,
    jet_r: Annotated[float, typer.Option(help="Anti-kT radius.")] = 0.8,
    max_particles: Annotated[int, typer.Option(help="Constituents kept per jet.")] = 128,
    max_jets_per_event: Annotated[int, typer.Option(help="Leading jets considered.")] = 2,
    seed: Annotated[int, typer.Option(help="Global seed.")] = 42,
    events_per_chunk: Annotated[int, typer.Option(help="Events per output file.")] = 500,
    ecm: Annotated[float, typer.Option(help="Centre-of-mass energy [GeV].")] = 13000.0,
    mpi: Annotated[
        bool, typer.Option("--mpi/--no-mpi", help="Multiparton interactions (underlying event).")
    ] = True,
    detector: Annotated[
        bool,
        typer.Option(
            "--detector/--truth",
            help="Apply the simple detector response (smearing, track inefficiency), or "
            "keep generator-level particles.",
        ),
    ] = True,
    track_efficiency: Annotated[float, typer.Option(help="Track efficiency.")] = 0.95,
    zprime_mass: Annotated[float, typer.Option(help="dark: Z' mass [GeV].")] = 1500.0,
    dark_meson_mass: Annotated[float, typer.Option(help="dark: dark hadron mass [GeV].")] = 20.0,
    dark_lambda: Annotated[float, typer.Option(help="dark: Lambda_dark [GeV].")] = 20.0,
    r_inv: Annotated[float, typer.Option(help="dark: invisible fraction r_inv.")] = 0.3,
    dark_colours: Annotated[int, typer.Option(help="dark: N_c of the dark sector.")] = 2,
    dark_flavours: Annotated[int, typer.Option(help="dark: N_f of the dark sector.")] = 2,
    dark_prob_vector: Annotated[float, typer.Option(help="dark: vector meson fraction.")] = 0.75,
    setting: Annotated[
        list[str] | None,
        typer.Option("--setting", help="Extra Pythia 'Key = value' line (repeatable)."),
    ] = None,
) -> None:
    """Generate a labelled jet sample: Parquet chunks in the weaver / ParT layout."""
    from rich.console import Console
    from rich.progress import TextColumn

    from lhcml.cli._progress import progress_bar
    from lhcml.jets.config import DarkSectorConfig, DetectorResponse, GenerationConfig
    from lhcml.jets.writer import generate_jets

    console = Console(stderr=True)
    cfg = GenerationConfig(
        process=process,
        pt_min=pt_min,
        pt_max=pt_max,
        eta_max=eta_max,
        pthat_min=pthat_min,
        pthat_max=pthat_max,
        jet_r=jet_r,
        max_particles=max_particles,
        max_jets_per_event=max_jets_per_event,
        ecm=ecm,
        mpi=mpi,
        seed=seed,
        events_per_chunk=events_per_chunk,
        dark=DarkSectorConfig(
            zprime_mass=zprime_mass,
            meson_mass=dark_meson_mass,
            lambda_dark=dark_lambda,
            r_inv=r_inv,
            n_colours=dark_colours,
            n_flavours=dark_flavours,
            prob_vector=dark_prob_vector,
        ),
        detector=DetectorResponse(enabled=detector, track_efficiency=track_efficiency),
        extra_settings=tuple(setting or ()),
    ).validate()
    unit = "jets" if jets is not None else "events"
    total = jets if jets is not None else None
    if events is not None:
        total = -(-events // events_per_chunk) * events_per_chunk
    progress = progress_bar(
        TextColumn(f"[bold]{process}[/] {unit}"),
        extra=(TextColumn("{task.fields[info]}"),),
        console=console,
    )
    task = progress.add_task(unit, total=total, info="")
    state = {"jets": 0, "events": 0}

    def on_event(_event_id: int) -> None:
        if unit == "events":
            progress.advance(task)

    def on_chunk(_chunk: int, n_jets: int, n_events: int) -> None:
        state["jets"] += n_jets
        state["events"] += n_events
        if unit == "jets":
            progress.update(task, completed=min(state["jets"], total or 0))
        else:
            progress.update(task, completed=state["events"])
        progress.update(task, info=f"{state['jets']} jets / {state['events']} events")

    console.print(
        f"{process}: jets {pt_min:g}-{pt_max:g} GeV, |eta| < {eta_max:g}, anti-kT R={jet_r:g}, "
        f"detector {'on' if detector else 'off'}, seed {seed} -> {out} ({jobs} process(es))"
    )
    try:
        with progress:
            summary = generate_jets(
                cfg, out, events=events, jets=jets, jobs=jobs, on_event=on_event, on_chunk=on_chunk
            )
    except KeyboardInterrupt:
        console.print(
            "[yellow]interrupted[/]: finished chunks are kept; rerun the same command to resume"
        )
        raise typer.Exit(130) from None
    eff = summary.jets / summary.events if summary.events else 0.0
    console.print(
        f"{summary.jets} jets from {summary.events} events ({eff:.3f} per event): "
        f"wrote {len(summary.written)} chunk(s), skipped {len(summary.skipped)}, "
        f"in {summary.seconds:.1f} s"
    )


@app.command("train")
def train(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (experiments/jets/*.yaml).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", help="Jet samples (repeatable); replaces data.paths."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Replaces trainer.max_epochs.")] = None,
    max_jets_per_class: Annotated[
        int | None, typer.Option(help="Cap of training jets per class.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Replaces the config's seed.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    device: Annotated[
        str | None,
        typer.Option(help="cpu or cuda (cuda:N); default: the config's trainer (auto)."),
    ] = None,
) -> None:
    """Train a tagger from an experiment config; write weights, config, metrics, ROC."""
    import torch

    from lhcml.jets.training import apply_overrides, load_config
    from lhcml.jets.training import train as run_train

    if threads is not None:
        torch.set_num_threads(threads)
    placement: dict[str, Any] = {}
    if device is not None:
        from lhcml._device import trainer_device

        placement = {f"trainer.{k}": v for k, v in trainer_device(device).items()}
    cfg = apply_overrides(
        load_config(config),
        {
            "data.paths": data or None,
            "trainer.max_epochs": epochs,
            "data.max_jets_per_class": max_jets_per_class,
            "seed": seed,
            **placement,
        },
    )
    metrics = run_train(cfg, out, progress=not quiet)
    _print_metrics(metrics, out)


@app.command("evaluate")
def evaluate(
    model: Annotated[
        str, typer.Argument(help="Model directory, or 'shipped' for the packaged ParT.")
    ],
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", help="Jet samples (repeatable); default: data.paths."),
    ] = None,
    split: Annotated[
        str, typer.Option(help="train, val, test, or all (every jet of --data).")
    ] = "test",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write metrics.json and roc.png here.")
    ] = None,
    max_jets_per_class: Annotated[int | None, typer.Option(help="Cap per class.")] = None,
    backend: Annotated[
        str,
        typer.Option(help="ParT: run it with 'torch' or 'onnx' (ONNX Runtime, exported now)."),
    ] = "torch",
    device: Annotated[str, typer.Option(help="torch backend: cpu or cuda (cuda:N).")] = "cpu",
) -> None:
    """Evaluate a trained tagger: accuracy, AUC, rejection at 30% / 50% signal efficiency."""
    from lhcml.errors import ConfigError
    from lhcml.jets.models import SHIPPED_MODEL_DIR
    from lhcml.jets.training import evaluate_model

    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"--split: unknown split '{split}'; choose train, val, test or all")
    model_dir = SHIPPED_MODEL_DIR if model == "shipped" else Path(model)
    metrics = evaluate_model(
        model_dir,
        data,
        split=None if split == "all" else split,
        out_dir=out,
        max_jets_per_class=max_jets_per_class,
        backend=backend,
        device=device,
    )
    _print_metrics(metrics, out)


def _print_metrics(metrics: dict[str, Any], out: Path | None) -> None:
    from rich.console import Console

    shown = {k: v for k, v in metrics.items() if not k.startswith("_")}
    console = Console()
    console.print_json(json.dumps(shown, default=str))
    if out is not None:
        console.print(f"wrote {out / 'metrics.json'} and {out / 'roc.png'}")
