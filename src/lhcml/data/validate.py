"""Checks that turn bad input into clear errors instead of silent garbage.

Every reader passes each table through :func:`conform_table` (columns present, numeric,
no NaN, canonical dtypes) and the assembled event through :func:`validate_event`
(ids consistent across tables). Errors name the file and the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml.data.event import Event
from lhcml.data.schema import SCHEMAS, Column
from lhcml.errors import InputError


def _plain(value: Any) -> Any:
    # numpy 2 scalars repr as "np.int64(3)": show the plain Python value instead.
    return value.item() if isinstance(value, np.generic) else value


def _examples(values: np.ndarray | pd.Index | pd.Series, n: int = 3) -> str:
    shown = ", ".join(repr(_plain(v)) for v in list(values[:n]))
    return shown + (", ..." if len(values) > n else "")


def _check_range(values: np.ndarray, dtype: str, path: str | Path | None, name: str) -> None:
    """Refuse values the canonical dtype cannot hold (a plain cast would wrap or give inf)."""
    if values.dtype.kind not in "iuf" or len(values) == 0:
        return
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        lo, hi = info.min, info.max
    elif dtype == "float32":
        lo, hi = -np.finfo(np.float32).max, np.finfo(np.float32).max
    else:
        return
    # Compare in the source dtype's own domain: float64 / uint64 / int64 all hold lo..hi
    # closely enough to detect overflow without a lossy cast.
    bad = (values < lo) | (values > hi)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} value(s) out of range for {dtype} "
            f"(e.g. {_examples(values[bad])}; allowed {_plain(lo)}..{_plain(hi)})",
            path=path,
            column=name,
        )


def conform_table(
    df: pd.DataFrame,
    table: str,
    path: str | Path | None = None,
    *,
    schema: Mapping[str, Column] | None = None,
) -> pd.DataFrame:
    """Check one table against its schema and cast it to the canonical dtypes.

    Args:
        df: the table as read.
        table: schema name (``hits``, ``truth``, ``particles``, ``cells``, ``spacepoints``),
            or the name used in messages when ``schema`` is given.
        path: the file it came from, for error messages.
        schema: columns to check against instead of ``SCHEMAS[table]`` (e.g. the
            TrackML detector table of :mod:`lhcml.io.detector`).

    Returns:
        A new DataFrame: schema columns first (canonical dtypes), extra columns after.

    Raises:
        InputError: a required column is missing, a column is not numeric, holds NaN or
            non-integral values where integers are expected, or values out of range
            of the canonical dtype.
    """
    schema = SCHEMAS[table] if schema is None else schema
    missing = [c.name for c in schema.values() if c.required and c.name not in df.columns]
    if missing:
        raise InputError(
            f"{table} table lacks required column(s) {missing}; found {list(df.columns)}",
            path=path,
            column=missing[0],
        )
    out = {}
    for name, col in schema.items():
        if name not in df.columns:
            continue
        s = df[name]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            coerced = pd.to_numeric(s, errors="coerce")
            bad = s[coerced.isna() & s.notna()]
            if len(bad):
                raise InputError(
                    f"expected {col.dtype} values, found {s.dtype} "
                    f"(e.g. {_examples(bad.unique())})",
                    path=path,
                    column=name,
                )
            # Only numbers and missing values (an all-empty CSV column reads as nulls):
            # go on with the numbers so the NaN check below names the rows.
            s = coerced
        values = s.to_numpy()
        nan = pd.isna(values)
        if nan.any():
            rows = np.flatnonzero(nan)
            raise InputError(
                f"{len(rows)} NaN / missing value(s), "
                f"first at data row(s) {_examples(rows)} (0-based)",
                path=path,
                column=name,
            )
        if col.dtype.startswith("int") or col.dtype == "bool":
            if values.dtype.kind == "f" and not np.all(
                np.isfinite(values) & (values == np.round(values))
            ):
                bad = values[~(np.isfinite(values) & (values == np.round(values)))]
                raise InputError(
                    f"expected integers, found {_examples(bad)}", path=path, column=name
                )
            if col.dtype == "bool" and not np.isin(values, [0, 1]).all():
                raise InputError("expected a flag (0/1 or true/false)", path=path, column=name)
        elif col.dtype.startswith("float") and not np.all(np.isfinite(values)):
            rows = np.flatnonzero(~np.isfinite(values))
            raise InputError(
                f"{len(rows)} infinite value(s), first at data row(s) {_examples(rows)} (0-based)",
                path=path,
                column=name,
            )
        if col.dtype != "bool":
            _check_range(values, col.dtype, path, name)
        out[name] = values.astype(col.dtype, copy=False)
    extras = {c: df[c].to_numpy() for c in df.columns if c not in schema}
    return pd.DataFrame({**out, **extras}, index=pd.RangeIndex(len(df)))


def validate_event(event: Event, paths: Mapping[str, str | Path] | None = None) -> Event:
    """Cross-table checks of a conformed event; returns the event unchanged.

    Raises:
        InputError: no hits, duplicate hit ids, truth / space points / cells referring to
            hits that do not exist, truth not covering every hit, or truth particle ids
            missing from the particles table.
    """
    paths = dict(paths or {})
    hits = event.hits
    if len(hits) == 0:
        raise InputError(
            f"event {event.event_id} has no hits (the table has no data rows)",
            path=paths.get("hits"),
        )
    hit_ids = hits["hit_id"].to_numpy()
    if len(np.unique(hit_ids)) != len(hit_ids):
        dup = pd.Index(hit_ids)[pd.Index(hit_ids).duplicated()].unique()
        raise InputError(
            f"duplicate hit ids {_examples(dup.to_numpy())}",
            path=paths.get("hits"),
            column="hit_id",
        )
    for name in ("truth", "cells", "spacepoints"):
        df = getattr(event, name)
        if df is None:
            continue
        unknown = ~np.isin(df["hit_id"].to_numpy(), hit_ids)
        if unknown.any():
            raise InputError(
                f"{unknown.sum()} {name} row(s) refer to hit ids not in the hits file "
                f"(e.g. {_examples(df['hit_id'].to_numpy()[unknown])})",
                path=paths.get(name),
                column="hit_id",
            )
    if event.truth is not None:
        truth_ids = event.truth["hit_id"].to_numpy()
        if len(truth_ids) != len(hit_ids) or len(np.unique(truth_ids)) != len(truth_ids):
            missing = np.setdiff1d(hit_ids, truth_ids)
            raise InputError(
                f"truth must have exactly one row per hit: {len(truth_ids)} rows for "
                f"{len(hit_ids)} hits ({len(missing)} hits without truth, "
                f"e.g. {_examples(missing)})",
                path=paths.get("truth"),
                column="hit_id",
            )
        if event.particles is not None:
            pids = event.truth["particle_id"].to_numpy()
            pids = np.unique(pids[pids != 0])
            unknown_p = np.setdiff1d(pids, event.particles["particle_id"].to_numpy())
            if len(unknown_p):
                raise InputError(
                    f"{len(unknown_p)} particle id(s) in truth are not in the particles file "
                    f"(e.g. {_examples(unknown_p)})",
                    path=paths.get("truth"),
                    column="particle_id",
                )
    if event.particles is not None:
        p = event.particles["particle_id"]
        if (p == 0).any():
            # 0 means "noise" in truth: a particle with that id would swallow the noise hits.
            raise InputError(
                f"particle id 0 is reserved for noise; found at row(s) "
                f"{_examples(np.flatnonzero(p.to_numpy() == 0))}",
                path=paths.get("particles"),
                column="particle_id",
            )
        if p.duplicated().any():
            raise InputError(
                f"duplicate particle ids {_examples(p[p.duplicated()].to_numpy())}",
                path=paths.get("particles"),
                column="particle_id",
            )
    return event
