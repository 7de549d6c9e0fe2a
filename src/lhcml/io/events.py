"""Reading and writing events in the TrackML file layout.

One file per table per event, named as in the TrackML challenge:
``event000000042-hits.parquet`` (lhcml default), ``event000000042-hits.csv`` or
``.csv.gz`` (TrackML CSV; lhcml's CSV is TrackML's plus extra particle columns). Any other
prefix is read too (``mini1-hits.csv``, ``20-density-hits.csv``, as hepqpr-qallse and
users name files): its event id is the last number in the prefix, else 0.
``event000000042-meta.json`` holds provenance and is written last, so an event whose meta
file exists is complete (used by resumable simulation).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lhcml.data.event import TABLES, Event
from lhcml.data.validate import conform_table, validate_event
from lhcml.errors import InputError
from lhcml.io.atomic import write_atomic, write_json_atomic
from lhcml.io.common import only_event, read_failure

Format = Literal["parquet", "csv"]

#: File endings tried when reading, fastest first.
EXTENSIONS: tuple[str, ...] = (".parquet", ".csv", ".csv.gz")
# Unquoted, as the TrackML challenge files are.
_CSV_OPTIONS = pacsv.WriteOptions(quoting_style="none")
_PREFIX_RE = re.compile(r"^event(\d+)$")
_FILE_RE = re.compile(rf"^(.+)-({'|'.join(TABLES)}|meta)\.(parquet|csv|csv\.gz|json)$")


def event_prefix(directory: str | Path, event_id: int) -> Path:
    """``directory/event000000042`` for event 42."""
    return Path(directory) / f"event{event_id:09d}"


def trackml_secondary(particle_id: np.ndarray) -> np.ndarray:
    """Secondary flag encoded in TrackML particle ids (generation bits ``(id >> 24) & 0xFFF``)."""
    return ((np.asarray(particle_id, dtype=np.int64) >> 24) & 0xFFF) != 0


def write_event(event: Event, directory: str | Path, fmt: Format = "parquet") -> list[Path]:
    """Write every table of ``event`` to ``directory``, each file atomically.

    Args:
        event: the event; its tables are checked against the schema first.
        directory: output directory (created if needed).
        fmt: ``parquet`` (fast, typed) or ``csv`` (TrackML CSV, readable by the
            TrackML challenge library).

    Returns:
        The files written, meta file last.
    """
    if fmt not in ("parquet", "csv"):
        raise InputError(f"unknown format '{fmt}': use 'parquet' or 'csv'")
    prefix = event_prefix(directory, event.event_id)
    written = []
    for name, df in event.tables().items():
        table = pa.Table.from_pandas(conform_table(df, name), preserve_index=False)
        if fmt == "parquet":
            # Dictionary encoding buys nothing on float / id columns: 4x slower, 35% larger.
            target = Path(f"{prefix}-{name}.parquet")
            write_atomic(target, lambda p, t=table: pq.write_table(t, p, use_dictionary=False))
        else:
            target = Path(f"{prefix}-{name}.csv")
            write_atomic(target, lambda p, t=table: pacsv.write_csv(t, p, _CSV_OPTIONS))
        written.append(target)
    meta = {"event_id": event.event_id, "format": fmt, **event.meta}
    written.append(write_json_atomic(f"{prefix}-meta.json", meta))
    return written


def event_complete(directory: str | Path, event_id: int) -> bool:
    """Whether an event was completely written by :func:`write_event`."""
    return Path(f"{event_prefix(directory, event_id)}-meta.json").is_file()


def prefix_event_id(name: str) -> int:
    """Event id of a file prefix: ``event000000042`` -> 42, ``mini1`` -> 1, ``mini`` -> 0."""
    m = _PREFIX_RE.match(name)
    if m:
        return int(m.group(1))
    numbers = re.findall(r"\d+", name)
    return int(numbers[-1]) if numbers else 0


def event_prefixes(directory: str | Path) -> dict[int, Path]:
    """Prefix of each event with a hits file in ``directory``, by event id, sorted.

    Raises:
        InputError: not a directory, or two prefixes give one event id
            (``a1-hits.csv`` and ``b1-hits.csv``): read them by prefix instead.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("not a directory", path=directory)
    found: dict[int, Path] = {}
    for f in sorted(directory.iterdir()):
        m = _FILE_RE.match(f.name)
        if not (m and m.group(2) == "hits"):
            continue
        prefix = directory / m.group(1)
        eid = prefix_event_id(m.group(1))
        if found.get(eid, prefix) != prefix:
            raise InputError(
                f"two events with id {eid} ({found[eid].name}-hits and {prefix.name}-hits): "
                "pass one prefix, e.g. DIR/" + prefix.name,
                path=directory,
            )
        found[eid] = prefix
    return dict(sorted(found.items()))


def list_events(directory: str | Path) -> list[int]:
    """Event ids with a hits file in ``directory``, sorted."""
    return list(event_prefixes(directory))


def find_event_files(
    sources: Iterable[str | Path],
    event_ids: Sequence[int],
    *,
    named_event: Callable[[Path], int | None],
    file_events: Callable[[Path], list[int] | None],
    what: str,
    unnamed: str,
) -> dict[int, Path]:
    """Map event ids to per-event files (seeds, submissions): a directory gives its files
    whose name ``named_event`` reads an event id from; a file holds the events
    ``file_events`` finds in it (its name or content), else it is the only evaluated event's.

    Args:
        sources: files and directories.
        event_ids: the evaluated events.
        named_event: event id from a file name, or ``None``.
        file_events: event ids of a given file, or ``None`` if it does not say.
        what: the files' name in errors (``"seed file"``, ``"submission"``).
        unnamed: error for an unnamed file while several events are evaluated (``{n}``:
            their number).

    Raises:
        InputError: a source does not exist, two files for one event, or an unnamed file
            while several events are evaluated.
    """
    found: dict[int, Path] = {}

    def add(eid: int, path: Path) -> None:
        if eid in found and found[eid] != path:
            raise InputError(f"two {what}s for event {eid}: {found[eid]} and {path}")
        found[eid] = path

    for source in map(Path, sources):
        if source.is_dir():
            for f in sorted(source.iterdir()):
                eid = named_event(f)
                if eid is not None and f.is_file():
                    add(eid, f)
        elif source.is_file():
            ids = file_events(source)
            if ids is None:
                if len(event_ids) != 1:
                    raise InputError(unnamed.format(n=len(event_ids)), path=source)
                ids = list(event_ids)
            for eid in ids:
                add(eid, source)
        else:
            raise InputError(f"{what}: file or directory not found", path=source)
    return found


def resolve_prefix(path: str | Path, event_id: int | None = None) -> tuple[Path, int]:
    """Turn a directory + event id, a prefix or a table file into ``(prefix, event_id)``.

    Accepts ``dir`` with ``event_id`` (or a directory holding exactly one event),
    ``dir/event000000001``, ``dir/event000000001-hits.csv.gz``, and the same with any
    other prefix (``dir/mini1``, ``dir/mini1-hits.csv``).
    """
    path = Path(path)
    if path.is_dir():
        prefixes = event_prefixes(path)
        if event_id is None:
            event_id = only_event(path, list(prefixes))
        return prefixes.get(event_id, event_prefix(path, event_id)), event_id
    m = _FILE_RE.match(path.name)
    if m:
        prefix = path.with_name(m.group(1))
    elif _PREFIX_RE.match(path.name) or find_table(path, "hits") is not None:
        prefix = path
    else:
        raise InputError(
            "expected an event prefix like DIR/event000000001 (or DIR/NAME with a "
            "NAME-hits.csv beside it), an event file, or a directory",
            path=path,
        )
    parsed = prefix_event_id(prefix.name)
    if event_id is not None and event_id != parsed:
        raise InputError(f"event id {event_id} does not match the prefix", path=path)
    return prefix, parsed


def find_table(prefix: Path, table: str) -> Path | None:
    """The file holding ``table`` for the event at ``prefix``, if any."""
    for ext in EXTENSIONS:
        candidate = Path(f"{prefix}-{table}{ext}")
        if candidate.is_file():
            return candidate
    return None


def read_table(path: Path) -> pd.DataFrame:
    """Read one Parquet or CSV(.gz) table, wrapping parser failures in :class:`InputError`."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path, engine="pyarrow")
        return pd.read_csv(path, engine="pyarrow")
    except (
        pa.ArrowException,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        OSError,
        # A truncated or corrupt .gz surfaces from Python's gzip module as these.
        EOFError,
        zlib.error,
        UnicodeDecodeError,
    ) as e:
        raise InputError(read_failure(e), path=path) from e


def read_event(
    path: str | Path,
    event_id: int | None = None,
    *,
    parts: Iterable[str] | None = None,
) -> Event:
    """Read one event in the TrackML layout (lhcml Parquet / CSV or TrackML CSV(.gz)).

    Args:
        path: event prefix (``dir/event000000001``), a file of the event, or a
            directory (with ``event_id`` unless it holds one event). A directory of ACTS
            CSV output is also accepted (see :mod:`lhcml.io.acts`).
        event_id: event number when ``path`` is a directory.
        parts: tables to read (default: all present); ``hits`` is always read.

    Returns:
        The validated event. Particles gain ``particle_type`` (0 if absent),
        ``primary`` (from the TrackML id bits if absent) and ``prod_r``.

    Raises:
        InputError: missing files or columns, bad values, inconsistent ids.
    """
    from lhcml.io import acts  # local: ACTS layout is the fallback

    if acts.is_acts_dir(path, event_id):
        return acts.read_acts_event(path, event_id, parts=parts)
    prefix, event_id = resolve_prefix(path, event_id)
    wanted = set(TABLES if parts is None else parts) | {"hits"}
    unknown = wanted - set(TABLES)
    if unknown:
        raise InputError(f"unknown table(s) {sorted(unknown)}; choose from {list(TABLES)}")
    files = {name: find_table(prefix, name) for name in TABLES if name in wanted}
    if files["hits"] is None:
        raise InputError(
            f"no hits file ({', '.join(f'-hits{e}' for e in EXTENSIONS)}) for this event",
            path=prefix,
        )
    if parts is not None:
        absent = [n for n in wanted if files[n] is None]
        if absent:
            raise InputError(f"requested table(s) {absent} not found", path=prefix)
    tables = {
        name: conform_table(read_table(f), name, f) for name, f in files.items() if f is not None
    }
    if "particles" in tables:
        tables["particles"] = complete_particles(tables["particles"])
    meta = read_meta(Path(f"{prefix}-meta.json"))
    meta.setdefault("source", str(prefix))
    event = Event(event_id=event_id, meta=meta, **tables)
    return validate_event(event, {k: v for k, v in files.items() if v is not None})


def read_meta(meta_file: Path) -> dict:
    """The event's provenance (``{}`` if there is no meta file).

    Raises:
        InputError: the file is not a JSON object.
    """
    if not meta_file.is_file():
        return {}
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not valid JSON: {e}", path=meta_file) from e
    if not isinstance(meta, dict):
        raise InputError(f"expected a JSON object, found {type(meta).__name__}", path=meta_file)
    return meta


def complete_particles(particles: pd.DataFrame) -> pd.DataFrame:
    """Add the derived particle columns a reader may not find (TrackML files lack them)."""
    out = particles.copy()
    if "particle_type" not in out.columns:
        out["particle_type"] = np.zeros(len(out), dtype=np.int32)
    if "primary" not in out.columns:
        out["primary"] = ~trackml_secondary(out["particle_id"].to_numpy())
    if "prod_r" not in out.columns:
        out["prod_r"] = np.hypot(out["vx"], out["vy"]).astype(np.float32)
    return out


def read_events(
    directory: str | Path, event_ids: Sequence[int] | None = None, **kwargs: object
) -> Iterable[Event]:
    """Yield the events of ``directory`` (all, or ``event_ids``) in order."""
    for eid in list_events(directory) if event_ids is None else event_ids:
        yield read_event(directory, eid, **kwargs)  # type: ignore[arg-type]
