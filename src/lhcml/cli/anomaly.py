"""``lhcml anomaly``: DarkCLR contrastive anomaly detection on jet samples.

Examples::

    experiments/anomaly/generate.sh data/anomaly          # QCD + semi-visible samples
    lhcml anomaly train experiments/anomaly/darkclr_cpu.yaml --out runs/anomaly/ref
    lhcml anomaly evaluate runs/anomaly/ref --background data/anomaly/qcd \\
        --signal data/anomaly/dark_m20_r0.3 --signal data/anomaly/dark_m20_r0.75 \\
        --out runs/anomaly/ref/eval
    lhcml anomaly evaluate shipped --background data/anomaly/qcd \\
        --signal data/anomaly/dark_m20_r0.3 --out runs/anomaly/shipped
    lhcml anomaly score shipped --jets data/anomaly/dark_m20_r0.3 --out scores.parquet

Heavy libraries (torch, Lightning) are imported only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="anomaly",
    help="Contrastive (DarkCLR) anomaly detection of jets: train, evaluate, score.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _model_dir(model: str) -> Path:
    if model == "shipped":
        from lhcml.anomaly.models import SHIPPED_MODEL_DIR

        return SHIPPED_MODEL_DIR
    return Path(model)


@app.command("train")
def train(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (experiments/anomaly/*.yaml).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    background: Annotated[
        list[str] | None,
        typer.Option("--background", "-b", help="Background samples; replaces data.background."),
    ] = None,
    contamination: Annotated[
        list[str] | None,
        typer.Option(help="Signal samples mixed into training; replaces data.contamination."),
    ] = None,
    contamination_fraction: Annotated[
        float | None, typer.Option(help="Signal jets added, as a fraction of the background.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Replaces trainer.max_epochs.")] = None,
    max_train_jets: Annotated[
        int | None, typer.Option(help="Replaces data.max_train_jets.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Replaces the config's seed.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda (cuda:N).")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train an encoder (contrastive), its background banks and NAE; write the model."""
    import torch

    from lhcml.anomaly.train import apply_overrides, load_config
    from lhcml.anomaly.train import train as run_train

    if threads is not None:
        torch.set_num_threads(threads)
    cfg = apply_overrides(
        load_config(config),
        {
            "data.background": background or None,
            "data.contamination": contamination or None,
            "data.contamination_fraction": contamination_fraction,
            "data.max_train_jets": max_train_jets,
            "trainer.max_epochs": epochs,
            "seed": seed,
        },
    )
    summary = run_train(cfg, out, device=device, progress=not quiet)
    _print({k: v for k, v in summary.items() if k != "nae"}, f"wrote {out}")


@app.command("evaluate")
def evaluate(
    model: Annotated[str, typer.Argument(help="Model directory, or 'shipped'.")],
    background: Annotated[
        list[str], typer.Option("--background", "-b", help="Background sample(s).")
    ],
    signal: Annotated[
        list[str], typer.Option("--signal", "-s", help="Signal sample (repeatable: one per point).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write metrics.json and roc.png here.")],
    split: Annotated[str, typer.Option(help="train, val, test or all.")] = "test",
    score: Annotated[
        str | None,
        typer.Option(
            help="Score of the top-level auc: clr, nae, knn or norm (default: the "
            "config's primary_score, else clr)."
        ),
    ] = None,
    max_background: Annotated[int | None, typer.Option(help="Cap of background jets.")] = 10000,
    max_signal: Annotated[int | None, typer.Option(help="Cap of jets per signal.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
) -> None:
    """AUC and background rejection at 20 % / 50 % signal efficiency, for every score."""
    import torch

    from lhcml.anomaly.evaluate import evaluate as run_evaluate
    from lhcml.anomaly.train import load_detector
    from lhcml.errors import ConfigError

    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"--split: unknown split '{split}'; choose train, val, test or all")
    if threads is not None:
        torch.set_num_threads(threads)
    detector, cfg = load_detector(_model_dir(model))
    metrics = run_evaluate(
        detector,
        cfg,
        background,
        signal,
        out,
        split=None if split == "all" else split,
        max_background=max_background,
        max_signal=max_signal,
        primary=score,
    )
    _table(metrics)
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'roc.png'}")


@app.command("score")
def score(
    model: Annotated[str, typer.Argument(help="Model directory, or 'shipped'.")],
    jets: Annotated[list[str], typer.Option("--jets", "-j", help="Jet sample(s) to score.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file of per-jet scores.")],
    split: Annotated[str, typer.Option(help="train, val, test or all.")] = "all",
) -> None:
    """Write every anomaly score of every jet (columns jet, process, jet_pt, score_*)."""
    import pyarrow.parquet as pq

    from lhcml.anomaly.evaluate import score_table
    from lhcml.anomaly.train import DataConfig, load_detector
    from lhcml.errors import ConfigError
    from lhcml.io.atomic import write_atomic

    if split not in ("train", "val", "test", "all"):
        raise ConfigError(f"--split: unknown split '{split}'; choose train, val, test or all")
    detector, cfg = load_detector(_model_dir(model))
    data = DataConfig(**{**cfg.get("data", {}), "background": list(jets)})
    sample = data.read(list(jets), None if split == "all" else split, None, "jets")
    table = score_table(detector, sample, data.eval_batch_size)
    write_atomic(out, lambda p: pq.write_table(table, p))
    typer.echo(f"wrote {len(sample)} jets' scores to {out}")


def _table(metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from lhcml.anomaly.scores import SCORES

    primary = metrics["primary_score"]
    t = Table(title=f"{metrics['name']}: AUC per score; R20 / R50 = 1/eps_B of '{primary}'")
    t.add_column("signal", no_wrap=True)
    for s in SCORES:
        t.add_column(s, no_wrap=True)
    t.add_column("R20", no_wrap=True)
    t.add_column("R50", no_wrap=True)
    for label, m in metrics["signals"].items():
        row = [label] + [f"{m[s]['auc']:.3f}±{m[s]['auc_unc']:.3f}" for s in SCORES]
        row += [f"{m[primary]['rejection_20']:.1f}", f"{m[primary]['rejection_50']:.1f}"]
        t.add_row(*row)
    t.add_row("mean", *[f"{metrics['mean_auc'][s]:.3f}" for s in SCORES], "", "")
    Console(width=max(120, Console().width)).print(t)


def _print(obj: dict[str, Any], line: str) -> None:
    from rich.console import Console

    console = Console()
    console.print_json(json.dumps(obj, default=str))
    console.print(line)
