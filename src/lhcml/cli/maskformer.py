"""``lhcml maskformer``: the transformer (hit filter + MaskFormer) track finder.

Examples::

    experiments/maskformer/make_data.sh data/maskformer       # simulated ttbar mu=200
    lhcml maskformer train experiments/maskformer/cpu.yaml --out runs/maskformer/cpu
    lhcml reconstruct EVENTS --finder maskformer --model runs/maskformer/cpu --out subs
    lhcml evaluate EVENTS subs

Heavy libraries (torch, Lightning) are imported only when a command runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="maskformer",
    help="Transformer track finding (hit filter + MaskFormer, after hepattn): train.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.command("train")
def train(
    config: Annotated[
        Path, typer.Argument(help="Experiment YAML (experiments/maskformer/*.yaml).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write.")],
    train_dir: Annotated[
        Path | None, typer.Option("--train", help="Training events; replaces data.train.")
    ] = None,
    val_dir: Annotated[
        Path | None, typer.Option("--val", help="Validation events; replaces data.val.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda (cuda:N).")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train the hit filter, then the MaskFormer on its output; write the model folder."""
    import torch
    from rich.console import Console

    from lhcml._device import check_device
    from lhcml.reco.maskformer.config import load_config
    from lhcml.reco.maskformer.train import train as run_train

    if threads is not None:
        torch.set_num_threads(threads)
    cfg = load_config(config)
    data = cfg.data
    if train_dir is not None:
        data = dataclasses.replace(data, train=str(train_dir))
    if val_dir is not None:
        data = dataclasses.replace(data, val=str(val_dir))
    metrics = run_train(
        dataclasses.replace(cfg, data=data), out, device=check_device(device), progress=not quiet
    )
    rows = metrics["val_tracking"]["events"]
    console = Console()
    console.print(json.dumps({"filter": metrics["filter"]["val"], "val": rows}, default=str))
    console.print(f"wrote [bold]{out}[/]")
