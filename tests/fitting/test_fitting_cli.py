"""End to end: ``lhcml fit prepare / train / evaluate / infer`` on toy events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from lhcml.cli.fit import fit_app
from lhcml.fitting.toys import toy_event
from lhcml.io import write_event

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments" / "trackformer"


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def event_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("toys")
    rng = np.random.default_rng(4)
    for name, first in (("train", 0), ("test", 100)):
        for i in range(3):
            write_event(toy_event(60, rng, event_id=first + i), root / name)
    return root / "train", root / "test"


def test_train_evaluate_infer(tmp_path: Path, event_dirs: tuple[Path, Path]) -> None:
    train_dir, test_dir = event_dirs
    runner = CliRunner()
    cands = tmp_path / "train.npz"
    r = runner.invoke(fit_app, ["prepare", str(train_dir), "-o", str(cands), "--pt-min", "0.5"])
    assert r.exit_code == 0, r.output
    assert "candidates" in r.output and cands.is_file()

    cfg = yaml.safe_load((EXPERIMENTS / "tiny.yaml").read_text())
    cfg["data"] = {"train": [str(cands)], "val": [str(cands)]}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    r = runner.invoke(fit_app, ["train", str(config), "-o", str(run)])
    assert r.exit_code == 0, r.output
    for name in ("model.pt", "config.yaml", "metrics.json"):
        assert (run / name).is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    losses = metrics["training"]["loss_per_epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert metrics["validation"]["resolution"]["charge_accuracy"] > 0.95

    out = tmp_path / "eval"
    r = runner.invoke(
        fit_app,
        [
            "evaluate",
            str(test_dir),
            "-o",
            str(out),
            "--model",
            str(run),
            "--fitters",
            "helix,kalman,trackformer",
            "--radial-frames",
            "--no-plots",
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["fitters"]) == {"helix", "kalman", "trackformer"}
    kf = summary["fitters"]["kalman"]["resolution"]
    # Toy tracks: the lhcml KF is calibrated (pulls ~1) and charges are right.
    assert 0.75 < kf["qopt"]["pull"]["clipped_rms"]["width"] < 1.3
    assert kf["charge_accuracy"] == 1.0
    q = summary["quality"]
    assert q["before"]["tracks"] > q["after"]["tracks"]
    assert "q/pT relative resolution" in r.output

    inferred = tmp_path / "infer"
    r = runner.invoke(fit_app, ["infer", str(test_dir), "-o", str(inferred), "--model", str(run)])
    assert r.exit_code == 0, r.output
    tracks = sorted(inferred.glob("*-tracks.csv"))
    assert len(tracks) == 3 and len(sorted(inferred.glob("*-submission.csv"))) == 3

    # Fine-tune only the quality heads on a "finder's" output (truth tracks + fakes).
    subs = {name: tmp_path / f"subs_{name}" for name in ("train", "test")}
    for name, d in (("train", train_dir), ("test", test_dir)):
        _fake_finder(d, subs[name])
    found = tmp_path / "found.npz"
    r = runner.invoke(
        fit_app,
        ["prepare", str(train_dir), "-o", str(found), "--submissions", str(subs["train"])],
    )
    assert r.exit_code == 0, r.output
    cfg["data"] = {"train": [str(cands), str(found)], "val": [str(found)]}
    cfg["training"].update(init_from=str(run), train_only=["cand_head", "hit_head"])
    config.write_text(yaml.safe_dump(cfg))
    tuned = tmp_path / "tuned"
    r = runner.invoke(fit_app, ["train", str(config), "-o", str(tuned)])
    assert r.exit_code == 0, r.output
    old = torch.load(run / "model.pt", weights_only=True)
    new = torch.load(tuned / "model.pt", weights_only=True)
    for name, value in old.items():
        same = torch.equal(value, new[name])
        assert same != name.startswith(("cand_head", "hit_head")), name
    assert "calibration" not in json.loads((tuned / "metrics.json").read_text())

    # Cuts on "val" (the train toys here), rates before / after on test, stored.
    r = runner.invoke(
        fit_app,
        [
            "quality",
            *("--val-events", str(train_dir), "--val-submissions", str(subs["train"])),
            *("--test-events", str(test_dir), "--test-submissions", str(subs["test"])),
            *("-o", str(tmp_path / "quality"), "--model", str(tuned), "--store"),
        ],
    )
    assert r.exit_code == 0, r.output
    q = json.loads((tmp_path / "quality" / "quality.json").read_text())
    before, after = q["test"]["before"], q["test"]["after"]
    assert before["fake_rate"]["k"] > 0 and after["fake_rate"]["k"] < before["fake_rate"]["k"]
    assert (tuned / "cleaning.json").is_file()
    assert "gnn_quality" in json.loads((tuned / "metrics.json").read_text())

    # infer --clean on the finder's output keeps its track ids and drops the fakes.
    cleaned = tmp_path / "cleaned"
    r = runner.invoke(
        fit_app,
        [
            *("infer", str(test_dir), "-o", str(cleaned), "--model", str(tuned)),
            *("--submissions", str(subs["test"])),
        ],
    )
    assert r.exit_code == 0, r.output
    fakes_in = fakes_out = 0
    for path in sorted(cleaned.glob("*-submission.csv")):
        raw = pd.read_csv(subs["test"] / path.name)
        out = pd.read_csv(path)
        assert set(out.track_id) < set(raw.track_id[raw.track_id >= 0])
        fakes_in += len(set(raw.track_id[raw.track_id >= FAKE_ID]))
        fakes_out += len(set(out.track_id[out.track_id >= FAKE_ID]))
    assert fakes_in == 12 and fakes_out < fakes_in

    # evaluate --submissions cleans the finder's output with the same stored cuts.
    r = runner.invoke(
        fit_app,
        [
            *("evaluate", str(test_dir), "-o", str(tmp_path / "eval_subs")),
            *("--model", str(tuned), "--fitters", "trackformer", "--radial-frames"),
            *("--no-plots", "--submissions", str(subs["test"])),
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "eval_subs" / "summary.json").read_text())
    stored = json.loads((tuned / "cleaning.json").read_text())
    assert summary["quality"]["cleaning"] == {k: stored[k] for k in summary["quality"]["cleaning"]}


FAKE_ID = 10_000


def _fake_finder(events: Path, out: Path) -> None:
    """Submissions: each particle's hits as one track, plus 4 fakes per event made of
    2 hits of each of 3 particles."""
    from lhcml.io import list_events, read_event

    out.mkdir()
    for eid in list_events(events):
        truth = read_event(events, eid).truth
        pid = truth.particle_id.to_numpy()
        _, track = np.unique(pid, return_inverse=True)
        track = np.where(pid == 0, -1, track)
        pids = np.unique(pid[pid != 0])
        for f in range(4):
            for p in pids[3 * f : 3 * f + 3]:
                track[np.flatnonzero(pid == p)[:2]] = FAKE_ID + f
        sub = pd.DataFrame({"hit_id": truth.hit_id, "track_id": track})
        sub.to_csv(out / f"event{eid:09d}-submission.csv", index=False)


def test_resolution_plots(tmp_path: Path) -> None:
    from lhcml.fitting.evaluate import plot_resolutions
    from lhcml.fitting.toys import toy_tracks

    t = toy_tracks(500, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    fitted = t.params * (1 + 0.01 * rng.normal(size=t.params.shape))
    pt = 1 / np.abs(t.params[:, 0])
    eta = -np.log(np.tan(t.params[:, 1] / 2))
    files = plot_resolutions(
        {"toy": (fitted, 0.01 * np.abs(t.params))}, t.params, pt, eta, tmp_path, which=("qopt",)
    )
    names = sorted(f.name for f in files)
    assert names == [
        "pull_qopt_vs_pt.png",
        "resolution_qopt_vs_eta.png",
        "resolution_qopt_vs_pt.png",
    ]
    assert all(f.stat().st_size > 1000 for f in files)


def test_bad_options_are_user_errors(tmp_path: Path, event_dirs: tuple[Path, Path]) -> None:
    from lhcml.errors import ConfigError

    runner = CliRunner()
    r = runner.invoke(
        fit_app, ["evaluate", str(event_dirs[1]), "-o", str(tmp_path), "--fitters", "magic"]
    )
    assert isinstance(r.exception, ConfigError) and "--fitters" in str(r.exception)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {}\nlosss: gnll\n")
    r = runner.invoke(fit_app, ["train", str(bad), "-o", str(tmp_path / "run")])
    assert isinstance(r.exception, ConfigError) and "losss" in str(r.exception)
