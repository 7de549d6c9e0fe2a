"""``lhcml``: the command-line entry point.

Each command is a function in its own module (``lhcml/cli/<command>.py``) registered
here. Command modules import heavy libraries (torch, acts, pythia8mc) inside the
function body so ``lhcml --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from lhcml import __version__
from lhcml.cli.anomaly import app as anomaly_app
from lhcml.cli.demo import demo
from lhcml.cli.evaluate import evaluate
from lhcml.cli.explain import app as explain_app
from lhcml.cli.export import app as export_app
from lhcml.cli.fit import fit_app
from lhcml.cli.gnn import gnn_app
from lhcml.cli.inspect import inspect
from lhcml.cli.jets import app as jets_app
from lhcml.cli.maskformer import app as maskformer_app
from lhcml.cli.reconstruct import reconstruct
from lhcml.cli.score import score
from lhcml.cli.seed import seed
from lhcml.cli.simulate import simulate
from lhcml.cli.subset import subset
from lhcml.errors import LhcmlError

err_console = Console(stderr=True)


class _Group(TyperGroup):
    """Prints user errors (:class:`LhcmlError`) on one line and exits 2, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LhcmlError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Group,
    name="lhcml",
    help="Deep learning on LHC collision data: simulate, reconstruct and evaluate events.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lhcml {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Deep learning on LHC collision data."""


# One line per command module, in the order `--help` lists them.
app.command("demo")(demo)
app.command("simulate")(simulate)
app.command("inspect")(inspect)
app.command("seed")(seed)
app.command("reconstruct")(reconstruct)
app.command("score")(score)
app.command("evaluate")(evaluate)
app.command("subset")(subset)
app.add_typer(fit_app, name="fit")
app.add_typer(gnn_app, name="gnn")
app.add_typer(jets_app, name="jets")
app.add_typer(maskformer_app, name="maskformer")
app.add_typer(anomaly_app, name="anomaly")
app.add_typer(explain_app, name="explain")
app.add_typer(export_app, name="export")
