"""Writing, reading back, resuming, TrackML CSV, the CLI and option validation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lhcml.cli.main import app
from lhcml.data.event import Event
from lhcml.errors import ConfigError
from lhcml.io import event_complete, event_prefix, read_event, write_event
from lhcml.simulation import ParticleGunConfig, SimulationConfig, simulate_events

runner = CliRunner()
#: Column dtypes with which the TrackML library's ``load_event`` reads each file
#: (``trackml/dataset.py``: ``pandas.read_csv(f, header=0, index_col=False, dtype=...)``).
TRACKML_DTYPES = {
    "hits": {"hit_id": "i4", "x": "f4", "y": "f4", "z": "f4"}
    | {"volume_id": "i4", "layer_id": "i4", "module_id": "i4"},
    "particles": {"particle_id": "i8", "particle_type": "i4", "vx": "f4", "vy": "f4"}
    | {"vz": "f4", "px": "f4", "py": "f4", "pz": "f4", "q": "i4", "nhits": "i4"},
    "truth": {"hit_id": "i4", "particle_id": "i8", "tx": "f4", "ty": "f4", "tz": "f4"}
    | {"tpx": "f4", "tpy": "f4", "tpz": "f4", "weight": "f4"},
}
TRACKML_COLUMNS = {
    "hits": ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"],
    "truth": ["hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz", "weight"],
    "particles": ["particle_id", "vx", "vy", "vz", "px", "py", "pz", "q", "nhits"],
}
SMALL_GUN = SimulationConfig(
    process="gun", seed=5, gun=ParticleGunConfig(multiplicity=3, eta_min=-2.0, eta_max=2.0)
)


def _assert_same(a: Event, b: Event) -> None:
    for name in ("hits", "truth", "particles", "spacepoints"):
        pd.testing.assert_frame_equal(
            getattr(a, name).reset_index(drop=True),
            getattr(b, name).reset_index(drop=True),
            check_dtype=False,
        )


def test_write_and_read_back(gun_events: list[Event], tmp_path: Path) -> None:
    event = gun_events[0]
    write_event(event, tmp_path)
    back = read_event(tmp_path, event.event_id)
    _assert_same(event, back)
    assert back.meta["process"] == "gun"
    assert SimulationConfig.from_dict(back.meta["config"]).validate() is not None


def test_csv_is_trackml(gun_events: list[Event], tmp_path: Path) -> None:
    """CSV output reads as the TrackML library's load_event reads it."""
    event = gun_events[1]
    write_event(event, tmp_path, "csv")
    prefix = event_prefix(tmp_path, event.event_id)
    for table, columns in TRACKML_COLUMNS.items():
        (path,) = tmp_path.glob(f"{prefix.name}-{table}.csv*")  # load_event's pattern
        df = pd.read_csv(path, header=0, index_col=False, dtype=TRACKML_DTYPES[table])
        assert list(df.columns[: len(columns)]) == columns
        assert len(df) == len(getattr(event, table))
        original = getattr(event, table)
        for col in columns:
            assert np.allclose(df[col], original[col], rtol=1e-6), (table, col)
    particles = pd.read_csv(f"{prefix}-particles.csv")
    assert {"particle_type", "primary", "prod_r", "subevent"} <= set(particles.columns)
    assert particles["primary"].dtype == bool
    _assert_same(event, read_event(prefix))


def test_simulate_events_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    first = simulate_events(SMALL_GUN, out, events=3, first_event=10)
    assert first.written == [10, 11, 12] and first.skipped == []
    assert all(event_complete(out, e) for e in (10, 11, 12))
    assert set(first.stage_seconds) >= {"generation", "fatras", "digitization", "writing"}
    ref = read_event(out, 11)
    # An interrupted run leaves finished events; remove one as if it never finished.
    Path(f"{event_prefix(out, 11)}-meta.json").unlink()
    seen: list[int] = []
    again = simulate_events(SMALL_GUN, out, events=4, first_event=10, on_event=seen.append)
    assert again.skipped == [10, 12]
    assert again.written == [11, 13] and sorted(seen) == [11, 13]
    _assert_same(ref, read_event(out, 11))  # the same event, bit for bit


def test_cli_gun_csv_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["simulate", "--out", str(out), "--events", "2", "--process", "gun"]
    args += ["--gun-multiplicity", "2", "--gun-pdg", "211", "--seed", "3", "--format", "csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 2 event(s)" in result.output
    hits = pd.read_csv(out / "event000000001-hits.csv")
    assert len(hits) > 0
    meta = json.loads((out / "event000000001-meta.json").read_text())
    assert meta["config"]["gun"]["pdg"] == 211 and meta["format"] == "csv"
    result = runner.invoke(app, [*args[:4], "3", *args[5:]])
    assert result.exit_code == 0, result.output
    assert "skipped 2 event(s)" in result.output
    assert "wrote 1 event(s)" in result.output
    # Rerun an event from its meta file: the same event, bit for bit.
    again = tmp_path / "again"
    meta_file = out / "event000000001-meta.json"
    result = runner.invoke(
        app, ["simulate", "--out", str(again), "--config", str(meta_file), "--first-event", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (again / "event000000001-hits.parquet").is_file()
    a, b = read_event(out, 1), read_event(again, 1)
    pd.testing.assert_frame_equal(a.truth, b.truth)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--mu", "-1"], "--mu"),
        (["--process", "higgs"], "--process"),
        (["--gun-pt-min", "5", "--gun-pt-max", "1"], "--gun-pt-min"),
        (["--pmin", "-0.1"], "--pmin"),
        (["--noise", "-1"], "--noise"),
        (["--events", "-2"], "--events"),
        (["--format", "root"], "--format"),
        (["--jobs", "0"], "--jobs"),
        (["--vertex-sigma-z", "-1"], "--vertex-sigma-z"),
        (["--noise", "0.1", "--noise-volume", "5"], "--noise-volume"),
        (["--gun-pdg", "999999999", "--process", "gun"], "--gun-pdg"),
    ],
)
def test_cli_rejects_bad_options(tmp_path: Path, options: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), *options])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_config_validation_and_round_trip() -> None:
    cfg = SimulationConfig(process="minbias", mu=50.0, seed=9)
    assert SimulationConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="--gun-multiplicity"):
        dataclasses.replace(SMALL_GUN, gun=ParticleGunConfig(multiplicity=0)).validate()
    with pytest.raises(ConfigError, match="--gun-eta-min"):
        dataclasses.replace(SMALL_GUN, gun=ParticleGunConfig(eta_min=3, eta_max=2)).validate()
    with pytest.raises(ConfigError, match="unknown key"):
        SimulationConfig.from_dict({"mu": 1, "colour": "red"})
    with pytest.raises(ConfigError, match="--noise-volume"):
        dataclasses.replace(
            SMALL_GUN, detector=dataclasses.replace(SMALL_GUN.detector, noise_volumes=(3,))
        ).validate()


def test_parallel_equals_serial(tmp_path: Path) -> None:
    """-j 2 writes the same events as one process."""
    serial = simulate_events(SMALL_GUN, tmp_path / "serial", events=4)
    parallel = simulate_events(SMALL_GUN, tmp_path / "parallel", events=4, jobs=2, chunk_size=1)
    assert serial.written == parallel.written == [0, 1, 2, 3]
    for e in range(4):
        _assert_same(read_event(tmp_path / "serial", e), read_event(tmp_path / "parallel", e))


def test_dask_cluster_equals_serial(tmp_path: Path) -> None:
    """Chunks mapped onto dask.distributed workers give the same events."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        seen: list[int] = []
        summary = simulate_events(
            SMALL_GUN,
            tmp_path / "dask",
            events=3,
            dask_scheduler=cluster.scheduler_address,
            on_event=seen.append,
        )
    assert summary.written == [0, 1, 2] and sorted(seen) == [0, 1, 2]
    simulate_events(SMALL_GUN, tmp_path / "serial", events=3)
    for e in range(3):
        _assert_same(read_event(tmp_path / "dask", e), read_event(tmp_path / "serial", e))
