"""Bad input gives an InputError naming the file and the column, never a raw exception."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lhcml.cli.main import app
from lhcml.errors import InputError, LhcmlError
from lhcml.io import read_event

ALL = ("hits", "truth", "particles")


def _edit(prefix: Path, table: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Replace ``table``'s .csv.gz by a plain .csv holding ``change(df)``."""
    gz = Path(f"{prefix}-{table}.csv.gz")
    df = change(pd.read_csv(gz))
    gz.unlink()
    df.to_csv(f"{prefix}-{table}.csv", index=False)


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        values = df[column].astype(object).to_numpy(copy=True)
        values[row] = value
        return df.assign(**{column: values})

    return change


def _header_only(prefix: Path) -> None:
    gz = Path(f"{prefix}-hits.csv.gz")
    with gzip.open(gz, "rt") as f:
        header = f.readline()
    gz.unlink()
    Path(f"{prefix}-hits.csv").write_text(header)


def _truncate_gz(prefix: Path) -> None:
    gz = Path(f"{prefix}-hits.csv.gz")
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])


def _garble_gz(prefix: Path) -> None:
    gz = Path(f"{prefix}-hits.csv.gz")
    data = bytearray(gz.read_bytes())
    data[200:400] = b"x" * 200
    gz.write_bytes(bytes(data))


def _bad_parquet(prefix: Path) -> None:
    gz = Path(f"{prefix}-hits.csv.gz")
    df = pd.read_csv(gz)
    gz.unlink()
    target = Path(f"{prefix}-hits.parquet")
    df.to_parquet(target)
    target.write_bytes(target.read_bytes()[:-100])  # cut the footer


def _add_row(table: str, row: dict[str, object]) -> Callable[[Path], None]:
    return lambda prefix: _edit(
        prefix, table, lambda df: pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    )


@dataclass
class Case:
    setup: Callable[[Path], None]
    match: str
    file: str  # expected in the message (file name or prefix)
    column: str | None
    tables: tuple[str, ...] = ALL
    parts: tuple[str, ...] | None = None


def _swap_hit_id(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(hit_id=np.where(df.index == 5, 10**9, df["hit_id"]))


CASES = {
    "no hits file": Case(lambda p: None, "no hits file", "event000000001", None, ("truth",)),
    "requested part missing": Case(
        lambda p: None,
        r"requested table\(s\) \['cells'\] not found",
        "event000000001",
        None,
        parts=("hits", "cells"),
    ),
    "missing column": Case(
        lambda p: _edit(p, "hits", lambda df: df.drop(columns="z")),
        r"lacks required column\(s\) \['z'\]",
        "event000000001-hits.csv",
        "z",
    ),
    "strings in x": Case(
        lambda p: _edit(p, "hits", _set("x", 3, "abc")),
        r"expected float32 values, found .*'abc'",
        "event000000001-hits.csv",
        "x",
    ),
    "NaN in tx": Case(
        lambda p: _edit(p, "truth", _set("tx", 7, np.nan)),
        r"1 NaN / missing value\(s\), first at data row\(s\) 7",
        "event000000001-truth.csv",
        "tx",
    ),
    "empty int column": Case(
        lambda p: _edit(p, "hits", lambda df: df.assign(volume_id=np.nan)),
        r"5527 NaN / missing value\(s\)",
        "event000000001-hits.csv",
        "volume_id",
    ),
    "non-integer hit id": Case(
        lambda p: _edit(p, "hits", _set("hit_id", 2, 3.5)),
        r"expected integers, found 3\.5",
        "event000000001-hits.csv",
        "hit_id",
    ),
    "non-integer particle id": Case(
        lambda p: _edit(p, "particles", _set("particle_id", 0, "4.5e15x")),
        r"expected int64 values",
        "event000000001-particles.csv",
        "particle_id",
    ),
    "module id beyond int32": Case(
        lambda p: _edit(p, "hits", _set("module_id", 0, 3_000_000_000)),
        r"out of range for int32 \(e\.g\. 3000000000",
        "event000000001-hits.csv",
        "module_id",
    ),
    "x beyond float32": Case(
        lambda p: _edit(p, "hits", _set("x", 0, 1e40)),
        r"out of range for float32",
        "event000000001-hits.csv",
        "x",
    ),
    "infinite y": Case(
        lambda p: _edit(p, "hits", _set("y", 4, np.inf)),
        r"1 infinite value\(s\), first at data row\(s\) 4",
        "event000000001-hits.csv",
        "y",
    ),
    "truth hit id not in hits": Case(
        lambda p: _edit(p, "truth", _swap_hit_id),
        r"1 truth row\(s\) refer to hit ids not in the hits file \(e\.g\. 1000000000\)",
        "event000000001-truth.csv",
        "hit_id",
    ),
    "truth row missing": Case(
        lambda p: _edit(p, "truth", lambda df: df.drop(index=10)),
        r"exactly one row per hit: 5526 rows for 5527 hits",
        "event000000001-truth.csv",
        "hit_id",
    ),
    "truth particle not in particles": Case(
        lambda p: _edit(p, "particles", lambda df: df.drop(index=1)),
        r"1 particle id\(s\) in truth are not in the particles file \(e\.g\. 4507310479114240",
        "event000000001-truth.csv.gz",
        "particle_id",
    ),
    "duplicate hit ids": Case(
        lambda p: _edit(p, "hits", lambda df: pd.concat([df, df.iloc[[3]]])),
        r"duplicate hit ids 53",
        "event000000001-hits.csv",
        "hit_id",
    ),
    "duplicate particle ids": Case(
        lambda p: _edit(p, "particles", lambda df: pd.concat([df, df.iloc[[0]]])),
        r"duplicate particle ids 4505867370102784",
        "event000000001-particles.csv",
        "particle_id",
    ),
    "particle id 0": Case(
        _add_row(
            "particles",
            {
                "particle_id": 0,
                "particle_type": 211,
                "vx": 0,
                "vy": 0,
                "vz": 0,
                "px": 1,
                "py": 0,
                "pz": 0,
                "q": 1,
                "nhits": 0,
            },
        ),
        r"particle id 0 is reserved for noise",
        "event000000001-particles.csv",
        "particle_id",
    ),
    "empty event (header only)": Case(
        _header_only,
        r"event 1 has no hits \(the table has no data rows\)",
        "event000000001-hits.csv",
        None,
        ("hits",),
    ),
    "truncated gzip": Case(
        _truncate_gz,
        r"corrupt or truncated gzip file \(EOFError\)",
        "event000000001-hits.csv.gz",
        None,
        ("hits",),
    ),
    "corrupt gzip": Case(
        _garble_gz,
        r"corrupt or truncated gzip file \(zlib.error\): Error -3 while decompressing",
        "event000000001-hits.csv.gz",
        None,
        ("hits",),
    ),
    "truncated parquet": Case(
        _bad_parquet,
        r"cannot read \(ArrowInvalid\).*Parquet magic bytes not found",
        "event000000001-hits.parquet",
        None,
        ("hits",),
    ),
    "empty file": Case(
        lambda p: (Path(f"{p}-hits.csv.gz").unlink(), Path(f"{p}-hits.csv").write_text("")),
        r"cannot read \(EmptyDataError\)",
        "event000000001-hits.csv",
        None,
        ("hits",),
    ),
    "ragged row": Case(
        lambda p: (
            Path(f"{p}-hits.csv.gz").unlink(),
            Path(f"{p}-hits.csv").write_text(
                "hit_id,x,y,z,volume_id,layer_id,module_id\n1,2,3,4,8,2,1\n2,3,4,5,8,2,1,9\n"
            ),
        ),
        r"cannot read \(ParserError\): CSV parse error: Expected 7 columns, got 8",
        "event000000001-hits.csv",
        None,
        ("hits",),
    ),
    "meta not JSON": Case(
        lambda p: Path(f"{p}-meta.json").write_text("{oops"),
        r"not valid JSON",
        "event000000001-meta.json",
        None,
        ("hits",),
    ),
    "unknown table": Case(
        lambda p: None,
        r"unknown table\(s\) \['tracks'\]",
        "",
        None,
        ("hits",),
        parts=("tracks",),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_names_file_and_column(trackml_copy: Callable[..., Path], case: Case) -> None:
    prefix = trackml_copy("bad", tables=case.tables)
    case.setup(prefix)
    with pytest.raises(InputError, match=case.match) as info:
        read_event(prefix, parts=case.parts)
    message = str(info.value)
    assert case.file in message
    if case.column is not None:
        assert f"column '{case.column}'" in message
        assert info.value.column == case.column
    assert "\n" not in message


def test_unparsable_prefix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected an event prefix like DIR/event000000001") as e:
        read_event(tmp_path / "hits.csv")
    assert "hits.csv" in str(e.value)


def test_event_id_not_matching_prefix(trackml_prefix: Path) -> None:
    with pytest.raises(InputError, match="event id 2 does not match the prefix"):
        read_event(trackml_prefix, 2)


def test_directory_with_several_events_needs_an_id(
    trackml_copy: Callable[..., Path], tmp_path: Path
) -> None:
    prefix = trackml_copy("many", tables=("hits",))
    shutil.copy(f"{prefix}-hits.csv.gz", prefix.parent / "event000000002-hits.csv.gz")
    with pytest.raises(InputError, match=r"holds 2 events \(\[1, 2\]\); pass an event id") as e:
        read_event(prefix.parent)
    assert str(prefix.parent) in str(e.value)
    assert read_event(prefix.parent, 2).event_id == 2
    with pytest.raises(InputError, match="no hits file"):
        read_event(prefix.parent, 3)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no hits file") as e:
        read_event(tmp_path / "nowhere" / "event000000001")
    assert "nowhere" in str(e.value)


runner = CliRunner()


@pytest.mark.parametrize(
    "case", ["strings in x", "truncated gzip", "truth particle not in particles"]
)
def test_cli_bad_file_one_line_exit_2(trackml_copy: Callable[..., Path], case: str) -> None:
    c = CASES[case]
    prefix = trackml_copy("cli", tables=c.tables)
    c.setup(prefix)
    r = runner.invoke(app, ["inspect", str(prefix)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1, r.output
    assert lines[0].startswith("error: ")
    assert c.file in lines[0]
    assert isinstance(r.exception, SystemExit)


def test_cli_missing_event(tmp_path: Path) -> None:
    r = runner.invoke(app, ["inspect", str(tmp_path / "event000000007")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "no hits file" in r.output


def test_input_error_is_an_lhcml_error() -> None:
    e = InputError("bad", path="a/b.csv", column="x")
    assert isinstance(e, LhcmlError)
    assert str(e) == "a/b.csv: column 'x': bad"
