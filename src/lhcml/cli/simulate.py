"""``lhcml simulate``: generate events (Pythia 8 or a particle gun) through ACTS Fatras.

Examples::

    lhcml simulate --out events/ttbar200 --events 100 --mu 200 -j 2
    lhcml simulate --out events/muons --process gun --gun-pdg 13 --gun-multiplicity 10 \\
        --gun-pt-min 1 --gun-pt-max 10 --events 1000
    lhcml simulate --out /shared/ev --events 10000 --mu 200 --dask-scheduler tcp://host:8786

Rerunning the same command resumes: events already complete on disk are skipped.
Heavy libraries (ACTS, Pythia) are imported only when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")],
    events: Annotated[int, typer.Option("--events", "-n", help="Number of events.")] = 1,
    first_event: Annotated[int, typer.Option(help="First event id.")] = 0,
    process: Annotated[
        str | None,
        typer.Option(help="Hard process: ttbar, minbias or gun.", show_default="ttbar"),
    ] = None,
    mu: Annotated[
        float | None,
        typer.Option(help="Mean pile-up (Poisson), min-bias interactions.", show_default="0"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Global seed.", show_default="42")] = None,
    vertex_sigma_z: Annotated[
        float | None,
        typer.Option(help="Beam spot: Gaussian sigma of vertex z (mm).", show_default="50"),
    ] = None,
    vertex_sigma_xy: Annotated[
        float | None,
        typer.Option(help="Beam spot: Gaussian sigma of vertex x, y (mm).", show_default="0.0125"),
    ] = None,
    pmin: Annotated[
        float | None, typer.Option(help="Fatras minimum momentum (GeV).", show_default="0.1")
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option(help="Noise hits as a fraction of the signal hits.", show_default="0"),
    ] = None,
    noise_count: Annotated[
        int | None, typer.Option(help="A fixed number of noise hits per event.", show_default="0")
    ] = None,
    noise_volume: Annotated[
        list[int] | None,
        typer.Option(help="Volume that gets noise hits (repeatable).", show_default="all, 7 to 18"),
    ] = None,
    gun_pdg: Annotated[
        int | None, typer.Option(help="Gun: PDG id (13 muon, 211 pion, 11 e).", show_default="13")
    ] = None,
    gun_random_charge: Annotated[
        bool | None,
        typer.Option(
            "--gun-random-charge/--gun-fixed-charge",
            help="Gun: random charge sign, or the sign of --gun-pdg.",
            show_default="random",
        ),
    ] = None,
    gun_multiplicity: Annotated[
        int | None, typer.Option(help="Gun: particles per event.", show_default="10")
    ] = None,
    gun_pt_min: Annotated[
        float | None, typer.Option(help="Gun: pT min (GeV).", show_default="1")
    ] = None,
    gun_pt_max: Annotated[
        float | None, typer.Option(help="Gun: pT max (GeV).", show_default="10")
    ] = None,
    gun_eta_min: Annotated[
        float | None, typer.Option(help="Gun: eta min.", show_default="-2.5")
    ] = None,
    gun_eta_max: Annotated[
        float | None, typer.Option(help="Gun: eta max.", show_default="2.5")
    ] = None,
    gun_phi_min: Annotated[
        float | None, typer.Option(help="Gun: phi min (rad).", show_default="-pi")
    ] = None,
    gun_phi_max: Annotated[
        float | None, typer.Option(help="Gun: phi max (rad).", show_default="pi")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="JSON simulation config, or an event's -meta.json (rerun its "
            "configuration); the options above override it."
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Output format: parquet or csv (TrackML CSV).")
    ] = "parquet",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 1,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            help="dask.distributed scheduler address (tcp://host:8786): run chunks of "
            "events on its workers (shared OUT needed)."
        ),
    ] = None,
) -> None:
    """Simulate events (Pythia 8 ttbar + pile-up, or a particle gun) with ACTS Fatras."""
    from rich.console import Console

    from lhcml.errors import ConfigError
    from lhcml.simulation import SimulationConfig

    console = Console(stderr=True)
    base = SimulationConfig()
    if config is not None:
        try:
            data = json.loads(config.read_text())
            # An event's meta file carries its configuration under "config".
            base = SimulationConfig.from_dict(data.get("config", data))
        except (OSError, json.JSONDecodeError, TypeError, AttributeError) as e:
            raise ConfigError(f"--config: cannot read {config}: {e}") from e
    cfg = _override(
        base,
        {
            "process": process,
            "mu": mu,
            "seed": seed,
            "vertex_sigma_z": vertex_sigma_z,
            "vertex_sigma_xy": vertex_sigma_xy,
        },
        detector={
            "pmin_gev": pmin,
            "noise_fraction": noise,
            "noise_count": noise_count,
            "noise_volumes": tuple(noise_volume) if noise_volume else None,
        },
        gun={
            "pdg": gun_pdg,
            "random_charge": gun_random_charge,
            "multiplicity": gun_multiplicity,
            "pt_min": gun_pt_min,
            "pt_max": gun_pt_max,
            "eta_min": gun_eta_min,
            "eta_max": gun_eta_max,
            "phi_min": gun_phi_min,
            "phi_max": gun_phi_max,
        },
    ).validate()
    _run(console, cfg, out, events, first_event, fmt, jobs, dask_scheduler)


def _override(base: Any, top: dict[str, Any], **sections: dict[str, Any]) -> Any:
    """``base`` with the options that were given (not None) replaced."""
    import dataclasses

    changes = {k: v for k, v in top.items() if v is not None}
    for name, values in sections.items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            changes[name] = dataclasses.replace(getattr(base, name), **given)
    return dataclasses.replace(base, **changes)


def _run(
    console: Any,
    cfg: Any,
    out: Path,
    events: int,
    first_event: int,
    fmt: str,
    jobs: int,
    dask_scheduler: str | None,
) -> None:
    from rich.progress import TextColumn

    from lhcml.cli._progress import progress_bar
    from lhcml.simulation import simulate_events

    progress = progress_bar(TextColumn("[bold]simulate[/]"), console=console)
    task = progress.add_task("events", total=events)
    written: list[int] = []

    def on_skipped(ids: list[int]) -> None:
        if ids:
            console.print(f"skipped {len(ids)} event(s) already complete in {out}")
        progress.update(task, total=events - len(ids))

    def on_event(event_id: int) -> None:
        written.append(event_id)
        progress.advance(task)

    mode = f"dask {dask_scheduler}" if dask_scheduler else f"{jobs} process(es)"
    console.print(
        f"{cfg.process}, mu={cfg.mu:g}, seed={cfg.seed}, events {first_event}.."
        f"{first_event + events - 1} -> {out} ({fmt}, {mode})"
    )
    try:
        with progress:
            summary = simulate_events(
                cfg,
                out,
                events=events,
                first_event=first_event,
                fmt=fmt,  # type: ignore[arg-type]
                jobs=jobs,
                dask_scheduler=dask_scheduler,
                on_event=on_event,
                on_skipped=on_skipped,
            )
    except KeyboardInterrupt:
        console.print(
            f"[yellow]interrupted[/]: {len(written)} event(s) written this run are kept; "
            "rerun the same command to resume"
        )
        raise typer.Exit(130) from None
    n = len(summary.written)
    per = summary.seconds / n if n else 0.0
    console.print(
        f"wrote {n} event(s), skipped {len(summary.skipped)}, in {summary.seconds:.1f} s "
        f"({per:.2f} s per event wall clock)"
    )
