"""``lhcml seed`` and ``lhcml evaluate --seeds`` on a small event written to disk; seed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lhcml.cli.main import app
from lhcml.data.event import Event
from lhcml.errors import InputError
from lhcml.io import write_event
from lhcml.metrics.tracking import FiducialSelection
from lhcml.seeding import SeedingConfig, find_seeds
from lhcml.seeding.evaluate import seeding_performance
from lhcml.seeding.io import HIT_COLUMNS, read_seeds, seeds_table, write_seeds

runner = CliRunner()


@pytest.fixture(scope="module")
def event_dir(tmp_path_factory: pytest.TempPathFactory, small_event: Event) -> Path:
    directory = tmp_path_factory.mktemp("events")
    write_event(small_event, directory)
    second = Event(1, small_event.hits, small_event.particles, small_event.truth,
                   spacepoints=small_event.spacepoints)  # fmt: skip
    write_event(second, directory)
    return directory


def test_seed_files_round_trip(tmp_path: Path, small_event: Event) -> None:
    sp = small_event.spacepoints
    seeds = find_seeds(sp, SeedingConfig.physmon())
    table = seeds_table(seeds, sp)
    for name in ("event000000000-seeds.parquet", "event000000000-seeds.csv"):
        back = read_seeds(write_seeds(table, tmp_path / name))
        np.testing.assert_array_equal(back[list(HIT_COLUMNS)].to_numpy(), seeds.hit_ids(sp))
        assert back["q_over_pt"].to_numpy() == pytest.approx(table["q_over_pt"].to_numpy())
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="hit_id_bottom"):
        read_seeds(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="not found"):
        read_seeds(tmp_path / "missing.parquet")


def test_seed_then_evaluate(event_dir: Path, tmp_path: Path, small_event: Event) -> None:
    out = tmp_path / "seeds"
    res = runner.invoke(app, ["seed", str(event_dir), "-o", str(out), "--set", "maxSeedsPerSpM=2"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "event000000000-seeds.parquet",
        "event000000001-seeds.parquet",
        "seeding-config.json",
    ]
    cfg = json.loads((out / "seeding-config.json").read_text())
    assert cfg["config"]["maxSeedsPerSpM"] == 2 and cfg["method"] == "standard"
    table = read_seeds(out / "event000000000-seeds.parquet")
    direct = find_seeds(small_event.spacepoints, SeedingConfig.physmon(maxSeedsPerSpM=2))
    assert len(table) == len(direct)

    ev_out = tmp_path / "eval"
    res = runner.invoke(
        app,
        ["evaluate", str(event_dir), str(out), "--seeds", "-o", str(ev_out), "--min-hits", "3"],
    )
    assert res.exit_code == 0, res.output
    assert "seeds per event" in res.output
    summary = json.loads((ev_out / "summary.json").read_text())
    assert summary["kind"] == "seeds" and summary["n_events"] == 2
    assert summary["seeds_per_event"] == len(direct)
    fid = FiducialSelection(pt_min=0.5, abs_eta_max=2.5, min_hits=3)
    perf = seeding_performance(
        direct.hit_ids(small_event.spacepoints),
        small_event.truth,
        small_event.particles,
        fiducial=fid,
    )
    assert summary["efficiency"]["k"] == 2 * perf.efficiency.k
    assert summary["efficiency"]["n"] == 2 * perf.efficiency.n
    assert summary["fake_rate"]["k"] == 2 * perf.fake_rate.k
    assert summary["resolution"]["charge_ok"]["value"] > 0.99
    assert (ev_out / "seed_efficiency_vs_pt.png").is_file()


def test_hashing_method_and_csv(event_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "hashed"
    res = runner.invoke(
        app,
        ["seed", str(event_dir), "-o", str(out), "--event-id", "1", "--method", "hashing",
         "--hash-set", "bucketSize=150", "--hash-set", "phiBins=6", "--format", "csv"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "event000000001-seeds.csv")
    assert len(table) > 0 and len(table.drop_duplicates(list(HIT_COLUMNS))) == len(table)
    cfg = json.loads((out / "seeding-config.json").read_text())
    assert cfg["hashing"]["bucketSize"] == 150


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "maxSeeds=3"], "unknown seeding parameter"),
        (["--set", "minPt=0.01"], "minPt"),
        (["--method", "magic"], "--method"),
        (["--preset", "atlas"], "--preset"),
        (["--hash-set", "bucketSize=10"], "--hash-set"),
    ],
)
def test_user_errors_exit_2(event_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["seed", str(event_dir), "-o", str(tmp_path / "x"), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_events_without_spacepoints_seed_pixel_hits(tmp_path: Path, small_event: Event) -> None:
    from lhcml.seeding.io import HIT_COLUMNS, read_seeds
    from lhcml.seeding.spacepoints import default_layers

    bare = Event(3, small_event.hits, small_event.particles, small_event.truth)
    write_event(bare, tmp_path / "ev")
    res = runner.invoke(app, ["seed", str(tmp_path / "ev"), "-o", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "built from their pixel hits" in " ".join(res.output.split())
    # Every seed hit is a hit of a space-point layer.
    layers = {(v * 100 + ly) for v, ly in default_layers()}
    hits = small_event.hits.set_index("hit_id")
    seeds = read_seeds(tmp_path / "s" / "event000000003-seeds.parquet")
    assert len(seeds) > 0
    ids = seeds[list(HIT_COLUMNS)].to_numpy().ravel()
    key = hits.loc[ids, "volume_id"].to_numpy() * 100 + hits.loc[ids, "layer_id"].to_numpy()
    assert set(key) <= layers


def test_events_without_pixel_hits_exit_2(tmp_path: Path, small_event: Event) -> None:
    hits = small_event.hits.assign(volume_id=12)
    write_event(Event(3, hits, small_event.particles, small_event.truth), tmp_path / "ev")
    res = runner.invoke(app, ["seed", str(tmp_path / "ev"), "-o", str(tmp_path / "s")])
    assert res.exit_code == 2
    assert "no hit in the pixel layers" in " ".join(res.output.split())
    assert not (tmp_path / "s" / "event000000003-seeds.parquet").exists()
