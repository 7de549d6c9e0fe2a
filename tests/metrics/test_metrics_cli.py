"""``lhcml score`` / ``lhcml evaluate`` and ``evaluate_events`` on events written in the test.

The hand event (conftest.py) gets hand-set weights: P1 hits 0.1 each (0.4), P2 0.05 each
(0.3), P3 0.05 each (0.2), P6 0.02 each (0.1), others 0. Double-majority good tracks:
T1 (3 P1 hits: 0.3), T2 (4 P2 hits: 0.2), T4 (all of P3: 0.2) -> score 0.7.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lhcml.cli.main import app
from lhcml.io import write_event
from lhcml.metrics.evaluate import evaluate_events

runner = CliRunner()
WEIGHT = {1: 0.1, 2: 0.05, 3: 0.05, 6: 0.02}


def _weighted(hand_event, event_id: int):  # type: ignore[no-untyped-def]
    event, assignment = hand_event(event_id)
    pid = event.truth["particle_id"]
    event.truth = event.truth.assign(weight=pid.map(WEIGHT).fillna(0.0))
    # A full submission: every hit once, hits on no track as -1.
    rest = np.setdiff1d(event.truth["hit_id"], assignment["hit_id"])
    full = pd.concat([assignment, pd.DataFrame({"hit_id": rest, "track_id": -1})])
    return event, full.sample(frac=1.0, random_state=event_id).reset_index(drop=True)


@pytest.fixture
def disk(hand_event, tmp_path: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    events, subs = tmp_path / "events", tmp_path / "subs"
    subs.mkdir()
    for eid, fmt in ((1, "csv"), (2, "parquet")):
        event, sub = _weighted(hand_event, eid)
        write_event(event, events, fmt=fmt)  # type: ignore[arg-type]
        name = f"event{eid:09d}-submission.csv" if eid == 1 else f"event{eid:09d}.csv"
        sub.to_csv(subs / name, index=False)
    return {"events": events, "subs": subs, "tmp": tmp_path}


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


def test_score_prints_and_writes_json(disk: dict[str, Path]) -> None:
    out = disk["tmp"] / "s.json"
    r = _run(
        "score",
        disk["events"] / "event000000001",
        disk["subs"] / "event000000001-submission.csv",
        "--json",
        out,
    )
    assert r.exit_code == 0, r.output
    assert "0.700000" in r.output
    d = json.loads(out.read_text())
    assert d == {"event_id": 1, "score": pytest.approx(0.7), "n_hits": 35, "n_tracks": 8}
    # A directory plus --event-id works the same.
    r = _run("score", disk["events"], disk["subs"] / "event000000002.csv", "--event-id", "2")
    assert r.exit_code == 0 and "event 2: TrackML score 0.700000" in r.output


@pytest.mark.parametrize(
    ("content", "column", "message"),
    [
        ("hit_id,track\n1,1\n", "track_id", "lacks column"),
        ("hit_id,track_id\n1,\n2,3\n", "track_id", "NaN"),
        ("hit_id,track_id\n1,1.5\n2,3\n", "track_id", "expected integers"),
        ("hit_id,track_id\n1,a\n2,3\n", "track_id", "expected integers"),
        ("hit_id,track_id\n1,1\n1,2\n", "hit_id", "more than once"),
        ("hit_id,track_id\n1,1\n2,3\n", "hit_id", "33 hit.s. of the event missing"),
    ],
)
def test_score_bad_submission_names_file_and_column(disk, content, column, message) -> None:  # type: ignore[no-untyped-def]
    bad = disk["tmp"] / "bad-submission.csv"
    bad.write_text(content)
    r = _run("score", disk["events"] / "event000000001", bad)
    assert r.exit_code == 2
    text = " ".join(r.output.split())  # undo console line wrapping
    assert "bad-submission.csv" in text and f"column '{column}'" in text
    assert re.search(message, text), text
    assert "Traceback" not in r.output


def test_evaluate_directory_of_submissions(disk: dict[str, Path]) -> None:
    out = disk["tmp"] / "eval"
    r = _run("evaluate", disk["events"], disk["subs"], "--out", out)
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["n_events"] == 2 and s["matching"] == "double_majority"
    # Two copies of the hand event: double-majority counts doubled.
    assert (s["efficiency"]["k"], s["efficiency"]["n"]) == (4, 8)
    assert (s["fake_rate"]["k"], s["fake_rate"]["n"]) == (8, 14)
    assert (s["duplicate_rate"]["k"], s["duplicate_rate"]["n"]) == (0, 6)
    assert s["trackml_score"]["mean"] == pytest.approx(0.7)
    assert s["trackml_score"]["std"] == pytest.approx(0.0)
    assert s["efficiency"]["low"] < 0.5 < s["efficiency"]["high"]
    assert sorted(s["plots"]) == sorted(p.name for p in out.glob("*.png"))
    assert len(s["plots"]) == 5  # efficiency vs pt / eta / vertex z, fake+duplicate vs pt / eta
    assert "efficiency" in r.output and "0.5000" in r.output


def test_evaluate_options(disk: dict[str, Path]) -> None:
    out = disk["tmp"] / "eval"
    r = _run(
        "evaluate",
        disk["events"],
        disk["subs"],
        "--out",
        out,
        "--matching",
        "atlas",
        "--all",
        "--pt-min",
        "0.4",
        "--event-id",
        "1",
        "--no-plots",
        "--interval",
        "wilson",
    )
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    # atlas, all particles >= 0.4 GeV: P1, P2, P3, P4 (secondary), P6, P7; found: all but P4
    # (T5 is half pure) and P7.
    assert (s["efficiency"]["k"], s["efficiency"]["n"]) == (4, 6)
    assert s["n_events"] == 1 and s["plots"] == [] and not list(out.glob("*.png"))
    assert s["interval"]["method"] == "wilson"
    assert s["fiducial"]["primary_only"] is False and s["fiducial"]["pt_min"] == 0.4


def test_evaluate_kaggle_file_and_single_files(disk: dict[str, Path]) -> None:
    subs = [pd.read_csv(disk["subs"] / "event000000001-submission.csv").assign(event_id=1)]
    subs.append(pd.read_csv(disk["subs"] / "event000000002.csv").assign(event_id=2))
    kaggle = disk["tmp"] / "all.csv"
    pd.concat(subs).to_csv(kaggle, index=False)
    out = disk["tmp"] / "k"
    r = _run("evaluate", disk["events"], kaggle, "--out", out, "--no-plots")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "summary.json").read_text())["efficiency"]["k"] == 4
    # One unnamed file for one event prefix.
    plain = disk["tmp"] / "tracks.csv"
    subs[0].drop(columns="event_id").to_csv(plain, index=False)
    r = _run("evaluate", disk["events"] / "event000000001", plain, "--out", out)
    assert r.exit_code == 0, r.output
    # ... but not for two events.
    r = _run("evaluate", disk["events"], plain, "--out", out)
    assert r.exit_code == 2 and "cannot tell which" in " ".join(r.output.split())


def test_evaluate_missing_submissions(disk: dict[str, Path]) -> None:
    (disk["subs"] / "event000000002.csv").unlink()
    out = disk["tmp"] / "m"
    r = _run("evaluate", disk["events"], disk["subs"], "--out", out)
    assert r.exit_code == 2 and "no submission for 1 event(s)" in " ".join(r.output.split())
    r = _run("evaluate", disk["events"], disk["subs"], "--out", out, "--skip-missing")
    assert r.exit_code == 0
    assert json.loads((out / "summary.json").read_text())["n_events"] == 1
    r = _run("evaluate", disk["events"], disk["subs"], "--out", out, "--matching", "loose")
    assert r.exit_code == 2 and "--matching" in r.output


def test_evaluate_events_in_memory(hand_event) -> None:  # type: ignore[no-untyped-def]
    pairs = [_weighted(hand_event, eid) for eid in (3, 4, 5)]
    result = evaluate_events(
        [e for e, _ in pairs], {e.event_id: s for e, s in pairs}, matching="acts"
    )
    assert [e.event_id for e in result.events] == [3, 4, 5]
    assert (result.performance.efficiency.k, result.performance.efficiency.n) == (6, 12)
    assert result.performance.n_events == 3
    assert result.score_mean == pytest.approx(0.7)
    assert result.files == []


def test_real_event_truth_as_submission(trackml_prefix: Path, tmp_path: Path) -> None:
    truth = pd.read_csv(f"{trackml_prefix}-truth.csv.gz")
    sub = tmp_path / "event000000001-submission.csv"
    truth[["hit_id", "particle_id"]].rename(columns={"particle_id": "track_id"}).to_csv(
        sub, index=False
    )
    r = _run("score", trackml_prefix, sub, "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "s.json").read_text())["score"] == pytest.approx(1.0, abs=1e-12)
    r = _run("evaluate", trackml_prefix, sub, "--out", tmp_path / "e")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["trackml_score"]["mean"] == pytest.approx(1.0, abs=1e-12)
    assert s["efficiency"]["k"] == s["efficiency"]["n"] > 0
    assert s["duplicate_rate"]["k"] == 0
