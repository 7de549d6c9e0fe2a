"""End to end: ``lhcml fit prepare / train / evaluate / infer`` on toy events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
