"""``lhcml explain``: what the tracking and jet models compute, measured.

Examples::

    lhcml explain importance edge_classifier data/ttbar-mu200 --out runs/explain/ec
    lhcml explain neurons metric_learning data/ttbar-mu200 --out runs/explain/ml --repeats 5
    lhcml explain formulas edge_classifier data/ttbar-mu200 --out runs/explain/ec --top 5
    lhcml explain mi trackformer data/ttbar-mu200 --out runs/explain/tf
    lhcml explain report part data/jets/qcd data/jets/top --out runs/explain/part

MODEL is a shipped model (``metric_learning``, ``edge_classifier``, ``trackformer``,
``part``) or a path to one; EVENTS are event directories / prefixes with truth (for
``part``: jet sample directories). Importance is measured on the events given: pass the
training events to see which variables the model *uses*, test events to see what it
needs on new data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lhcml.cli._options import EventIdsOpt

app = typer.Typer(
    name="explain",
    help="Interpretability: permutation importance of inputs and neurons, neurons as "
    "formulas, mutual information of latent spaces and track parameters.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

ModelArg = Annotated[
    str, typer.Argument(help="metric_learning, edge_classifier, trackformer, part, or a path.")
]
EventsArgs = Annotated[
    list[Path], typer.Argument(help="Event directories / prefixes (part: jet sample folders).")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output directory (JSON + PNG).")]
RepeatsOpt = Annotated[int, typer.Option(help="Shuffles per variable / neuron (mean, std).")]
ModulesOpt = Annotated[
    str | None,
    typer.Option(help="Comma-separated layers (module names; ':in' for a layer's input)."),
]
MetricOpt = Annotated[
    str | None,
    typer.Option(
        help="auc | efficiency | purity | f1 (edge classifier); resolution | "
        "qopt | theta | phi | d0 | z0 (trackformer)."
    ),
]
MaxEventsOpt = Annotated[int, typer.Option(help="Events read at most.")]
MaxRowsOpt = Annotated[int, typer.Option(help="Activation rows used by MI and formulas.")]
TopOpt = Annotated[int, typer.Option(help="Top neurons fitted with a formula.")]
GenerationsOpt = Annotated[int, typer.Option(help="Symbolic-regression generations.")]
PopulationOpt = Annotated[int, typer.Option(help="Symbolic-regression population.")]
MethodOpt = Annotated[str, typer.Option(help="MI estimator: learned (default) or ksg.")]
StepsOpt = Annotated[int, typer.Option(help="Optimiser steps of the MI regression network.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of every shuffle and fit.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")]


def _setup(
    model: str,
    events: list[Path],
    event_id: list[int] | None,
    metric: str | None,
    max_events: int,
    repeats: int,
    modules: str | None,
    max_rows: int,
    top: int,
    generations: int,
    population: int,
    method: str,
    mi_steps: int,
    seed: int,
) -> tuple[Any, Any]:
    from lhcml.errors import InputError
    from lhcml.explain.mi import METHODS
    from lhcml.explain.probes import load_probe
    from lhcml.explain.study import Budget

    if method not in METHODS:
        raise InputError(f"--method '{method}' unknown; use one of {list(METHODS)}")
    probe = load_probe(model, events, event_ids=event_id, metric=metric, max_events=max_events)
    names = tuple(m.strip() for m in modules.split(",") if m.strip()) if modules else None
    budget = Budget(
        repeats=repeats,
        modules=names,
        max_rows=max_rows,
        top=top,
        generations=generations,
        population=population,
        mi_method=method,
        mi_steps=mi_steps,
        seed=seed,
    )
    return probe, budget


def _run(step: str, quiet: bool, out: Path, **kw: Any) -> None:
    from rich.console import Console

    from lhcml.explain import study

    console = Console(stderr=True)
    probe, budget = _setup(**kw)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda _m: None) if quiet else (lambda m: console.print(f"[dim]{m}[/]"))
    fn = {
        "importance": study.input_importance,
        "neurons": study.neuron_importance,
        "formulas": study.neuron_formulas,
        "mi": study.latent_information,
        "report": study.full_report,
    }[step]
    result = fn(probe, out, budget, say=say)
    typer.echo(json.dumps(_headline(step, result), indent=1))
    typer.echo(f"written to {out}")


def _headline(step: str, r: dict) -> dict:
    """A short summary for the terminal (everything is in the JSON files)."""
    if step == "importance":
        return {
            g: {it["name"]: round(it["drop"], 5) for it in v["items"]}
            for g, v in r["groups"].items()
        }
    if step == "neurons":
        return {"baseline": r["baseline"], "top": r["top"][:10]}
    if step == "formulas":
        return {f["neuron"]: f"{f['formula']} (R2 {f['r2']:.2f})" for f in r["formulas"]}
    if step == "mi":
        return {
            layer: {p: round(v["mi"], 3) for p, v in info["params"].items()}
            for layer, info in r["layers"].items()
        }
    return {"model": r["model"], "metric": r["metric"]}


def _command(step: str, doc: str) -> None:
    def command(
        model: ModelArg,
        events: EventsArgs,
        out: OutOpt,
        event_id: EventIdsOpt = None,
        metric: MetricOpt = None,
        max_events: MaxEventsOpt = 1,
        repeats: RepeatsOpt = 5,
        modules: ModulesOpt = None,
        max_rows: MaxRowsOpt = 20_000,
        top: TopOpt = 5,
        generations: GenerationsOpt = 15,
        population: PopulationOpt = 1000,
        method: MethodOpt = "learned",
        mi_steps: StepsOpt = 2000,
        seed: SeedOpt = 0,
        quiet: QuietOpt = False,
    ) -> None:
        _run(
            step,
            quiet,
            out,
            model=model,
            events=events,
            event_id=event_id,
            metric=metric,
            max_events=max_events,
            repeats=repeats,
            modules=modules,
            max_rows=max_rows,
            top=top,
            generations=generations,
            population=population,
            method=method,
            mi_steps=mi_steps,
            seed=seed,
        )

    command.__doc__ = doc
    app.command(step)(command)


_command("importance", "Permutation importance of the input variables (mean +- std).")
_command("neurons", "Permutation importance of every neuron of every layer, ranked.")
_command("formulas", "The top neurons as formulas of physics variables (gplearn).")
_command("mi", "Mutual information of each layer (jointly) with the true track parameters.")
_command("report", "All of the above, with report.json.")
