"""``lhcml explain`` end to end on the real TrackML event, on a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lhcml.cli.main import app

TINY = ["--repeats", "1", "--top", "1", "--generations", "2", "--population", "50",
        "--max-rows", "300", "--mi-steps", "50", "--quiet"]  # fmt: skip


def run(*args: str) -> object:
    return CliRunner().invoke(app, ["explain", *args])


def test_report_of_the_edge_classifier(trackml_prefix: Path, tmp_path: Path) -> None:
    r = run("report", "edge_classifier", str(trackml_prefix), "--out", str(tmp_path),
            "--modules", "node_encoder.4,head.4", *TINY)  # fmt: skip
    assert r.exit_code == 0, r.output
    for name in ("importance", "neurons", "mi"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    report = json.loads((tmp_path / "report.json").read_text())
    groups = report["importance"]["groups"]
    assert {it["name"] for it in groups["inputs"]["items"]} == {"r", "phi", "z", "eta"}
    assert "dphi" in {it["name"] for it in groups["edge_norm:in"]["items"]}
    # The shipped classifier on the real event: AUC well above chance, and shuffling
    # every hit's r costs a sizeable part of it (it cannot find doublets without r).
    assert groups["inputs"]["baseline"] > 0.9
    drops = {it["name"]: it["drop"] for it in groups["inputs"]["items"]}
    assert drops["r"] > 0.05
    assert len(report["neurons"]["top"]) == 50
    assert report["formulas"]["formulas"][0]["rows"] == "hit"
    mi = json.loads((tmp_path / "mi.json").read_text())
    assert mi["layers"]["node_encoder.4"]["rows"] == "hit"
    assert mi["layers"]["head.4"]["rows"] == "edge"
    eta = mi["layers"]["node_encoder.4"]["params"]["eta"]
    assert eta["proficiency"] > 0.2  # a hit's eta is close to its particle's


def test_trackformer_importance_and_mi(trackml_prefix: Path, tmp_path: Path) -> None:
    r = run("importance", "trackformer", str(trackml_prefix), "--out", str(tmp_path), *TINY)
    assert r.exit_code == 0, r.output
    imp = json.loads((tmp_path / "importance.json").read_text())["groups"]
    assert set(imp) == {"hit_in:in", "global_in:in"}
    r = run("mi", "trackformer", str(trackml_prefix), "--out", str(tmp_path),
            "--modules", "param_head.0", *TINY)  # fmt: skip
    assert r.exit_code == 0, r.output
    mi = json.loads((tmp_path / "mi.json").read_text())
    assert set(mi["layers"]) == {"param_head:in", "param_head.0"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["importance", "no_such_model"], "not a model"),
        (["neurons", "edge_classifier", "--modules", "conv9"], "module 'conv9' not in"),
        (["importance", "edge_classifier", "--metric", "speed"], "--metric 'speed' unknown"),
        (["mi", "edge_classifier", "--method", "mine"], "--method 'mine' unknown"),
    ],
)
def test_bad_options_are_one_line_errors(
    trackml_prefix: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    step, model, *rest = args
    r = run(step, model, str(trackml_prefix), "--out", str(tmp_path), *rest, *TINY)
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output


def test_events_without_truth_are_refused(trackml_prefix: Path, tmp_path: Path) -> None:
    for table in ("hits", "cells"):
        (tmp_path / f"event000000001-{table}.csv.gz").symlink_to(
            Path(f"{trackml_prefix}-{table}.csv.gz")
        )
    r = run("importance", "edge_classifier", str(tmp_path / "event000000001"), "--out",
            str(tmp_path / "out"), *TINY)  # fmt: skip
    assert r.exit_code == 2 and "truth" in r.output
