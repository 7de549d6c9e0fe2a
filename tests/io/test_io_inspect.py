"""``lhcml inspect`` on the real TrackML event and on ACTS output."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from lhcml.cli.main import app

runner = CliRunner()


def _row(output: str, label: str) -> list[str]:
    """Cells of the table row starting with ``label``."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r} in:\n{output}")


def test_inspect_real_event(trackml_prefix: Path) -> None:
    r = runner.invoke(app, ["inspect", str(trackml_prefix)], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.output
    out = r.output
    assert _row(out, "hits") == ["5,527"]
    assert _row(out, "cells") == ["18,564"]
    assert _row(out, "truth") == ["5,527"]
    assert _row(out, "particles") == ["548"]
    # Hits per volume: count and share.
    assert _row(out, "8") == ["1,337", "24.2%"]
    assert _row(out, "18") == ["151", "2.7%"]
    assert _row(out, "with hits") == ["468"]
    assert _row(out, "primaries") == ["430"]
    assert _row(out, "pT > 1 GeV") == ["56"]
    # (5527 - 829) / 468 hits per particle that left hits.
    assert _row(out, "hits per particle (with hits)") == ["10.04"]
    assert _row(out, "noise hits") == ["829 (15.0%)"]


def test_inspect_directory_and_event_id(trackml_prefix: Path) -> None:
    r = runner.invoke(app, ["inspect", str(trackml_prefix.parent), "--event-id", "1"])
    assert r.exit_code == 0, r.output
    assert "event 1" in r.output


def test_inspect_without_truth(trackml_copy) -> None:
    prefix = trackml_copy("hitsonly", tables=("hits",))
    r = runner.invoke(app, ["inspect", str(prefix)])
    assert r.exit_code == 0, r.output
    assert _row(r.output, "hits") == ["5,527"]
    assert "noise hits" not in r.output


def test_inspect_acts_output(acts_muons: Path) -> None:
    r = runner.invoke(app, ["inspect", str(acts_muons), "--event-id", "2"])
    assert r.exit_code == 0, r.output
    assert _row(r.output, "primaries") == ["4"]
    assert _row(r.output, "noise hits") == ["0 (0.0%)"]
    r = runner.invoke(app, ["inspect", str(acts_muons)])
    assert r.exit_code == 2
    assert "holds 3 ACTS events" in " ".join(r.output.split())
