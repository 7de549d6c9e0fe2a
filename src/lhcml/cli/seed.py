"""``lhcml seed``: triplet seeds from the pixel space points of events, one seed file each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lhcml.cli._options import EventIdsOpt, EventsArg


def seed(
    events: EventsArg,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for event*-seeds files.")
    ] = Path("seeds"),
    event_id: EventIdsOpt = None,
    method: Annotated[
        str,
        typer.Option(
            help="Seeder: 'standard' (grid triplet seeding), 'hashing' (nearest-neighbour buckets: "
            "KD-tree by default, Annoy with --hash-set builder=annoy) or "
            "'acts' (ACTS's GridTripletSeedingAlgorithm through pyacts, the reference)."
        ),
    ] = "standard",
    preset: Annotated[
        str,
        typer.Option(help="Base configuration: 'physmon' (ACTS physmon) or 'acts-default'."),
    ] = "physmon",
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a seeding parameter by its ACTS name, e.g. --set maxSeedsPerSpM=3 "
            "(repeatable).",
        ),
    ] = None,
    hash_set: Annotated[
        list[str] | None,
        typer.Option(
            "--hash-set",
            help="Override a hashing parameter, e.g. --hash-set bucketSize=400 (repeatable).",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Seed file format: 'parquet' or 'csv'.")
    ] = "parquet",
) -> None:
    """Find triplet seeds in each event's space points and write OUT/event<N>-seeds.<fmt>.

    Each row is one seed: the hit ids of its bottom, middle and top space points, its
    quality, and the estimated track parameters (q/pT, phi, theta, d0, z0).
    """
    import ast
    import dataclasses

    from rich.console import Console
    from rich.progress import Progress

    from lhcml.errors import ConfigError
    from lhcml.io.atomic import write_json_atomic
    from lhcml.seeding.config import SeedingConfig
    from lhcml.seeding.hashing import HashingConfig
    from lhcml.seeding.run import seed_events

    config = SeedingConfig.preset(preset).with_overrides(set_ or [])
    hashing = None
    if method == "hashing" or hash_set:
        if method != "hashing":
            raise ConfigError("--hash-set: only with --method hashing")
        names = {f.name for f in dataclasses.fields(HashingConfig)}
        changes = {}
        for text in hash_set or []:
            name, sep, value = text.partition("=")
            if not sep or name.strip() not in names:
                raise ConfigError(
                    f"--hash-set: expected one of {sorted(names)}=value, got '{text}'"
                )
            try:
                changes[name.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                changes[name.strip()] = value.strip()
        hashing = HashingConfig(**changes)
    console = Console()
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("seed", total=None)
        results = seed_events(
            events,
            out,
            event_ids=event_id,
            config=config,
            method=method,
            hashing=hashing,
            fmt=fmt,
            progress=lambda done: bar.update(task, completed=done),
        )
    write_json_atomic(
        out / "seeding-config.json",
        {
            "method": method,
            "preset": preset,
            "config": config.to_dict(),
            "hashing": None if hashing is None else hashing.to_dict(),
        },
    )
    built = [r for r in results if r.from_hits]
    if built:
        console.print(
            f"{len(built)} event(s) without a spacepoints table (TrackML files): space points "
            f"built from their pixel hits ({sum(r.n_spacepoints for r in built) / len(built):.0f}"
            " per event; lhcml.seeding.spacepoints.from_pixel_hits)",
            highlight=False,
        )
    n = max(len(results), 1)
    console.print(
        f"wrote {len(results)} seed file(s) to [bold]{out}[/]: "
        f"{sum(r.n_seeds for r in results) / n:.0f} seeds per event, "
        f"{sum(r.seconds for r in results) / n:.3f} s per event",
        highlight=False,
    )
