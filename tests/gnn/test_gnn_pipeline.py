"""The shipped model set: size, metrics file, and the whole chain through ``lhcml
reconstruct`` / ``lhcml evaluate`` on the real TrackML event (models never tuned on it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from lhcml.errors import ConfigError
from lhcml.gnn.pipeline import DEFAULT_MODEL_DIR, GNNChain

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "chain.yaml").is_file(), reason="no shipped GNN model set"
)


def test_shipped_model_set_is_small_and_documented() -> None:
    files = [f for f in DEFAULT_MODEL_DIR.iterdir() if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 20 * 2**20
    names = {f.name for f in files}
    assert {"chain.yaml", "module_map.parquet", "edge_classifier.pt", "metrics.json"} <= names
    chain = yaml.safe_load((DEFAULT_MODEL_DIR / "chain.yaml").read_text())
    assert chain["graph_construction"] == "module_map"
    metrics = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    for key in ("module_map", "edge_classifier", "chain_test", "chain_real_0"):
        assert key in metrics, key
    assert metrics["module_map"]["efficiency"] > 0.98


@pytest.fixture(scope="module")
def real_tracks(trackml_prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lhcml.cli.main import app

    out = tmp_path_factory.mktemp("gnn-real")
    result = CliRunner().invoke(app, ["reconstruct", str(trackml_prefix), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_reconstruct_and_evaluate_the_real_trackml_event(
    trackml_prefix: Path, real_tracks: Path, tmp_path: Path
) -> None:
    from lhcml.cli.main import app

    sub = pd.read_csv(real_tracks / "event000000001-submission.csv")
    assert len(sub) == 5527 and sub["hit_id"].is_unique
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(trackml_prefix),
            str(real_tracks),
            "--out",
            str(tmp_path),
            "--exclude-electrons",
            "--track-min-hits",
            "5",
            "--matching",
            "atlas",
            "--no-plots",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    # The shipped set (v10) reached 52/54 = 0.963 and a score of 0.385 (metrics.json,
    # "chain_real_0"; the score counts all pT, the chain finds pT > 1 GeV); floors well
    # below catch a broken chain (endcap module ids not translated: 0.63, score 0.11).
    assert summary["efficiency"]["value"] > 0.8
    assert summary["fake_rate"]["value"] < 0.05
    assert summary["trackml_score"]["mean"] > 0.25


def test_the_chain_runs_without_cells_and_truth(trackml_prefix: Path) -> None:
    from lhcml.io import read_detectors, read_event

    event = read_event(trackml_prefix, parts=["hits"])
    assert event.cells is None and event.truth is None
    det = read_detectors(trackml_prefix.parent / "detectors.csv.gz")
    res = GNNChain(threads=1).reconstruct(event, detectors=det)
    tid = res.tracks["track_id"].to_numpy()
    # 54 fiducial (pT > 1 GeV) particles with ~10 hits each; low-pT hits stay unassigned.
    n_tracks = len(np.unique(tid[tid >= 0]))
    assert 50 <= n_tracks <= 200 and 500 < (tid >= 0).sum() < 2000
    assert set(res.timings) >= {"graph_construction", "edge_classifier", "track_building"}
    # Without the renumbering, the TrackML endcap modules do not match the map's pairs.
    raw = GNNChain(threads=1).reconstruct(event)
    assert raw.n_edges["graph_construction"] < res.n_edges["graph_construction"]


@pytest.mark.gpu
def test_cuda_gives_the_cpu_tracks(trackml_prefix: Path) -> None:
    from lhcml.io import read_detectors, read_event

    event = read_event(trackml_prefix, parts=["hits"])
    det = read_detectors(trackml_prefix.parent / "detectors.csv.gz")
    cpu = GNNChain().reconstruct(event, detectors=det).tracks["track_id"].to_numpy()
    gpu = GNNChain(device="cuda").reconstruct(event, detectors=det).tracks["track_id"].to_numpy()
    assert np.mean(cpu == gpu) > 0.99


def test_unknown_track_building_key_is_a_config_error(tmp_path: Path) -> None:
    # A misspelt setting in chain.yaml names the file and the key when the chain loads.
    for f in DEFAULT_MODEL_DIR.iterdir():
        (tmp_path / f.name).symlink_to(f)
    cfg = yaml.safe_load((DEFAULT_MODEL_DIR / "chain.yaml").read_text())
    cfg["track_building"] = {**cfg.get("track_building", {}), "stich_threshold": 0.2}
    (tmp_path / "chain.yaml").unlink()
    (tmp_path / "chain.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"chain\.yaml.*stich_threshold"):
        GNNChain(tmp_path, threads=1)


def test_parallel_jobs_write_the_in_process_submissions(
    trackml_prefix: Path, real_tracks: Path, tmp_path: Path
) -> None:
    # Two events (the real one under two ids) in two spawned worker processes: the same
    # files as one process, byte for byte (same precision: auto in both).
    import shutil

    from lhcml.cli.main import app

    events = tmp_path / "events"
    events.mkdir()
    for f in trackml_prefix.parent.glob(trackml_prefix.name + "-*"):
        for eid in ("000000001", "000000002"):
            shutil.copy(f, events / f.name.replace("000000001", eid))
    shutil.copy(trackml_prefix.parent / "detectors.csv.gz", events)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["reconstruct", str(events), "--out", str(out), "-j", "2"])
    assert result.exit_code == 0, result.output
    assert "2 job(s)" in result.output
    want = (real_tracks / "event000000001-submission.csv").read_bytes()
    for eid in ("000000001", "000000002"):
        assert (out / f"event{eid}-submission.csv").read_bytes() == want
    bad = CliRunner().invoke(app, ["reconstruct", str(events), "--out", str(out), "-j", "0"])
    assert bad.exit_code == 2 and "--jobs must be at least 1" in bad.output
