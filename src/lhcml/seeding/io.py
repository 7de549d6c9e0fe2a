"""Seed files: ``event000000042-seeds.parquet`` (or ``.csv``), one row per seed.

Columns:

===============  =======  ====  ==============================================
column           dtype    unit  meaning
===============  =======  ====  ==============================================
hit_id_bottom    int64          hit of the bottom space point (innermost)
hit_id_middle    int64          hit of the middle space point
hit_id_top       int64          hit of the top space point
quality          float32        the seed filter weight (higher is better)
z_vertex         float32  mm    z where the bottom doublet meets the beam line
q_over_pt        float64  e/GeV estimated charge over transverse momentum
pt               float64  GeV   estimated transverse momentum
phi, theta, eta  float64  rad   estimated direction at the perigee
d0, z0           float64  mm    estimated transverse / longitudinal impact parameters
charge           int8     e     estimated charge (0: straight line)
===============  =======  ====  ==============================================

The estimated parameters come from :mod:`lhcml.seeding.estimate`; the metrics need only
the three hit ids (plus ``pt``, ``eta`` for the binned fake and duplicate rates, else
recomputed). Files are written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from lhcml.errors import InputError
from lhcml.io.atomic import write_atomic
from lhcml.io.events import event_prefix, read_table
from lhcml.seeding.estimate import seed_parameters
from lhcml.seeding.finder import Seeds

HIT_COLUMNS: tuple[str, str, str] = ("hit_id_bottom", "hit_id_middle", "hit_id_top")
SEED_EXTENSIONS: tuple[str, ...] = (".parquet", ".csv", ".csv.gz")
_NAME_RE = re.compile(r"^event(\d+)-seeds\.(parquet|csv|csv\.gz)$")


def seeds_table(seeds: Seeds, spacepoints: pd.DataFrame, *, bfield: float = 2.0) -> pd.DataFrame:
    """The seed-file table of ``seeds`` (rows into ``spacepoints``)."""
    hits = seeds.hit_ids(spacepoints)
    table = pd.DataFrame(
        {
            HIT_COLUMNS[0]: hits[:, 0],
            HIT_COLUMNS[1]: hits[:, 1],
            HIT_COLUMNS[2]: hits[:, 2],
            "quality": seeds.quality.astype(np.float32),
            "z_vertex": seeds.z_vertex.astype(np.float32),
        }
    )
    params = seed_parameters(seeds.sp, spacepoints, bfield=bfield)
    return pd.concat([table, params], axis=1)


def seeds_path(directory: str | Path, event_id: int, fmt: str = "parquet") -> Path:
    """``directory/event000000042-seeds.parquet`` (``fmt``: ``parquet`` or ``csv``)."""
    if fmt not in ("parquet", "csv"):
        raise InputError(f"unknown seed file format '{fmt}': use 'parquet' or 'csv'")
    return Path(f"{event_prefix(directory, event_id)}-seeds.{fmt}")


def write_seeds(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a seed table (from :func:`seeds_table`) atomically; the format follows the
    extension (``.parquet`` or ``.csv``)."""
    path = Path(path)
    if path.name.endswith(".parquet"):
        return write_atomic(path, lambda p: table.to_parquet(p, index=False))
    if path.name.endswith(".csv"):
        return write_atomic(path, lambda p: table.to_csv(p, index=False))
    raise InputError("seed files end in .parquet or .csv", path=path)


def read_seeds(path: str | Path) -> pd.DataFrame:
    """Read a seed file and check the hit-id columns.

    Returns:
        The table; the three ``hit_id_*`` columns are int64.

    Raises:
        InputError: unreadable file, missing or non-integer hit-id columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("seed file not found", path=path)
    table = read_table(path)
    for col in HIT_COLUMNS:
        if col not in table.columns:
            raise InputError(
                f"not a seed file: no {col} column (found {list(table.columns)})",
                path=path,
                column=col,
            )
        values = table[col]
        if not pd.api.types.is_integer_dtype(values):
            raise InputError("hit ids must be integers", path=path, column=col)
        table[col] = values.astype(np.int64)
    return table


def seed_file_event(path: Path) -> int | None:
    """Event id of a seed file from its name, or ``None``."""
    m = _NAME_RE.match(path.name)
    return int(m.group(1)) if m else None


def find_seed_files(sources: list[Path], event_ids: list[int]) -> dict[int, Path]:
    """Map event ids to seed files: directories are searched for
    ``event<N>-seeds.<ext>``; a file named that way is event N's; another file is the only
    evaluated event's.

    Raises:
        InputError: missing source, two files for one event, or an unnamed file while
            several events are evaluated.
    """
    from lhcml.io.events import find_event_files

    def named(f: Path) -> list[int] | None:
        eid = seed_file_event(f)
        return None if eid is None else [eid]

    return find_event_files(
        sources,
        event_ids,
        named_event=seed_file_event,
        file_events=named,
        what="seed file",
        unnamed="cannot tell which of the {n} events these seeds are for: name the file "
        "event<N>-seeds.parquet or evaluate one event",
    )
