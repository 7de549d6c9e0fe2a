"""Seed events on disk and write seed files (what ``lhcml seed`` does)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lhcml.errors import InputError
from lhcml.seeding.config import SeedingConfig
from lhcml.seeding.finder import Seeds, find_seeds
from lhcml.seeding.hashing import HashingConfig, find_seeds_hashing
from lhcml.seeding.io import seeds_path, seeds_table, write_seeds

#: Seeders by name.
METHODS: tuple[str, ...] = ("standard", "hashing", "acts")


@dataclass(frozen=True)
class SeedRunResult:
    """One seeded event: counts, seeding seconds (wall, CPU) and the file written.

    ``from_hits`` says the event had no ``spacepoints`` table (TrackML files) and its space
    points were built from its pixel hits (:func:`~lhcml.seeding.spacepoints.from_pixel_hits`).
    """

    event_id: int
    n_spacepoints: int
    n_seeds: int
    seconds: float
    cpu_seconds: float
    path: Path
    from_hits: bool = False


def _event_ids(events: Path, event_ids: Sequence[int] | None) -> tuple[Path, list[int]]:
    from lhcml.io import list_events, resolve_prefix

    if events.is_dir():
        ids = list(event_ids) if event_ids else list_events(events)
        if not ids:
            raise InputError("no events (no *-hits.* files) in this directory", path=events)
        return events, ids
    prefix, eid = resolve_prefix(events)
    if event_ids and list(event_ids) != [eid]:
        raise InputError(f"event id(s) {list(event_ids)} do not match the prefix", path=events)
    return prefix.parent, [eid]


def seed_events(
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    config: SeedingConfig | None = None,
    method: str = "standard",
    hashing: HashingConfig | None = None,
    fmt: str = "parquet",
    progress: Callable[[int], None] | None = None,
) -> list[SeedRunResult]:
    """Seed events and write ``out_dir/event<N>-seeds.<fmt>``.

    Args:
        events: event directory or one event prefix; events without a ``spacepoints``
            table (TrackML files) are seeded on space points built from their pixel hits.
        out_dir: output directory.
        event_ids: only these events.
        config: seeding configuration (default physmon).
        method: ``standard``, ``hashing`` or ``acts`` (ACTS's own seeder through pyacts).
        hashing: bucketing parameters (``hashing`` only).
        fmt: ``parquet`` or ``csv``.
        progress: called with the number of events done after each one.

    Raises:
        InputError: no events, or an event with neither space points nor pixel hits.
        ConfigError: unknown method.
    """
    from lhcml.errors import ConfigError
    from lhcml.io import read_event

    if method not in METHODS:
        raise ConfigError(f"--method: unknown '{method}'; choose from {list(METHODS)}")
    config = config or SeedingConfig.physmon()
    directory, ids = _event_ids(Path(events), event_ids)
    out = Path(out_dir)
    results: list[SeedRunResult] = []

    def spacepoints_of(eid: int) -> tuple[pd.DataFrame, bool]:
        from lhcml.io import resolve_prefix
        from lhcml.io.events import find_table
        from lhcml.seeding.spacepoints import default_layers, from_pixel_hits

        prefix, _ = resolve_prefix(directory, eid)
        if find_table(prefix, "spacepoints") is not None:
            sp = read_event(prefix, eid, parts=["hits", "spacepoints"]).spacepoints
            assert sp is not None
            return sp, False
        # TrackML files have no space-point table: pixel hits are space points.
        hits = read_event(prefix, eid, parts=["hits"]).hits
        sp = from_pixel_hits(hits)
        if sp.empty:
            layers = sorted(default_layers())
            raise InputError(
                f"event {eid} has no spacepoints table and no hit in the pixel layers "
                f"(volume, layer) {layers} to build space points from",
                path=prefix,
            )
        return sp, True

    def write(eid: int, sp: pd.DataFrame, from_hits: bool, seeds: Seeds) -> None:
        path = write_seeds(
            seeds_table(seeds, sp, bfield=config.bFieldInZ), seeds_path(out, eid, fmt)
        )
        results.append(
            SeedRunResult(
                eid,
                len(sp),
                len(seeds),
                seeds.timings.get("total", float("nan")),
                seeds.timings.get("cpu", float("nan")),
                path,
                from_hits,
            )
        )
        if progress is not None:
            progress(len(results))

    if method == "acts":
        from lhcml.seeding.acts_reference import run_acts_seeding

        read = [spacepoints_of(eid) for eid in ids]
        tables = [sp for sp, _ in read]
        for eid, (sp, from_hits), seeds in zip(
            ids, read, run_acts_seeding(tables, config), strict=True
        ):
            write(eid, sp, from_hits, seeds)
        return results
    for eid in ids:
        sp, from_hits = spacepoints_of(eid)
        seeds = (
            find_seeds_hashing(sp, config, hashing)
            if method == "hashing"
            else find_seeds(sp, config)
        )
        write(eid, sp, from_hits, seeds)
    return results
