"""Reduced events (:mod:`lhcml.data.subset`, ``lhcml subset``): hand counts on a built
event, the reduction of the real TrackML event, bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lhcml.cli.main import app
from lhcml.data import Event
from lhcml.data.subset import BARREL_VOLUMES, SubsetConfig, make_subset, parse_volumes
from lhcml.errors import ConfigError, InputError
from lhcml.io import read_event


def _event() -> Event:
    """10 particles x 4 barrel hits (volume 8, layers 2, 4, 4, 6: one double hit each),
    plus one endcap hit each (volume 7), plus 20 noise hits (10 barrel, 10 endcap)."""
    rows = []
    hid = 1
    for p in range(1, 11):
        for vol, lay in [(8, 2), (8, 4), (8, 4), (8, 6), (7, 2)]:
            rows.append((hid, p, vol, lay))
            hid += 1
    for i in range(20):
        rows.append((hid, 0, 8 if i < 10 else 7, 2))
        hid += 1
    a = np.array(rows)
    n = len(a)
    hits = pd.DataFrame(
        {
            "hit_id": a[:, 0],
            "x": np.arange(n, dtype=float),
            "y": np.zeros(n),
            "z": np.zeros(n),
            "volume_id": a[:, 2],
            "layer_id": a[:, 3],
            "module_id": np.ones(n, int),
        }
    )
    truth = pd.DataFrame(
        {
            "hit_id": a[:, 0],
            "particle_id": a[:, 1],
            "tx": hits.x,
            "ty": 0.0,
            "tz": 0.0,
            # particle p has pT p / 4 GeV
            "tpx": np.where(a[:, 1] > 0, a[:, 1] / 4.0, 0.0),
            "tpy": 0.0,
            "tpz": 0.0,
            "weight": np.where(a[:, 1] > 0, 1.0 / 50, 0.0),
        }
    )
    particles = pd.DataFrame(
        {
            "particle_id": np.arange(1, 11),
            "vx": 0.0,
            "vy": 0.0,
            "vz": 0.0,
            "px": np.arange(1, 11) / 4.0,
            "py": 0.0,
            "pz": 0.0,
            "q": 1,
            "nhits": 5,
        }
    )
    return Event(event_id=3, hits=hits, truth=truth, particles=particles)


def test_identity_keeps_everything() -> None:
    ev = _event()
    out = make_subset(ev, SubsetConfig())
    assert len(out.hits) == len(ev.hits) == 70
    assert out.meta["subset"]["noise_hits"] == 20
    np.testing.assert_allclose(out.truth["weight"].sum(), 1.0, rtol=1e-6)


def test_each_knob_by_hand() -> None:
    ev = _event()
    barrel = make_subset(ev, SubsetConfig(volumes=BARREL_VOLUMES))
    assert len(barrel.hits) == 10 * 4 + 10  # the endcap hit of each particle and noise go
    assert set(barrel.hits["volume_id"]) == {8}
    assert (barrel.particles["nhits"] == 4).all()  # recounted

    single = make_subset(ev, SubsetConfig(double_hits=False))
    assert single.meta["subset"]["double_hits_removed"] == 10
    # The first of the two layer-4 hits stays (hit order), the second goes.
    kept = set(single.hits["hit_id"])
    assert {2, 3} & kept == {2}
    assert (single.particles["nhits"] == 4).all()

    half = make_subset(ev, SubsetConfig(density=0.5, seed=7))
    assert len(half.particles) == 5
    assert len(half.hits) == 5 * 5 + 10  # noise sampled at the same density
    pids = set(half.truth["particle_id"]) - {0}
    assert pids == set(half.particles["particle_id"])
    # Reproducible with the seed, different with another.
    again = make_subset(ev, SubsetConfig(density=0.5, seed=7))
    assert again.hits["hit_id"].tolist() == half.hits["hit_id"].tolist()

    noisy = make_subset(ev, SubsetConfig(noise_fraction=0.2))
    # 50 signal hits; noise share 0.2 needs 0.2 / 0.8 * 50 = 12.5 -> 12 noise hits.
    assert noisy.meta["subset"]["noise_hits"] == 12
    quiet = make_subset(ev, SubsetConfig(noise_fraction=0.0))
    assert (quiet.truth["particle_id"] != 0).all()


def test_weights_cut_and_renormalised() -> None:
    out = make_subset(_event(), SubsetConfig(high_pt_cut=1.0, volumes=(8,)))
    w = out.truth.set_index("particle_id")["weight"]
    # particles 1-3 have pT 0.25-0.75 GeV: weight 0; the other 7 x 4 hits share 1.
    assert (w.loc[[1, 2, 3]] == 0).all()
    np.testing.assert_allclose(w.loc[list(range(4, 11))], 1.0 / 28, rtol=1e-6)
    short = make_subset(_event(), SubsetConfig(min_hits=5, volumes=(8,)))
    assert (short.truth["weight"] == 0).all()  # every particle is left with 4 hits


def test_bad_settings_and_events() -> None:
    ev = _event()
    with pytest.raises(ConfigError, match="--density"):
        SubsetConfig(density=0.0)
    with pytest.raises(ConfigError, match="--noise-fraction"):
        SubsetConfig(noise_fraction=1.0)
    with pytest.raises(ConfigError, match="--volumes"):
        parse_volumes("8,x")
    assert parse_volumes("barrel") == BARREL_VOLUMES and parse_volumes("all") is None
    with pytest.raises(InputError, match=r"no hit in volumes \[13\]"):
        make_subset(ev, SubsetConfig(volumes=(13,)))
    with pytest.raises(InputError, match="leaves no particle"):
        make_subset(ev, SubsetConfig(density=0.05))
    with pytest.raises(InputError, match="needs 50 noise hits"):
        make_subset(ev, SubsetConfig(noise_fraction=0.5))
    with pytest.raises(InputError, match="needs truth"):
        make_subset(Event(event_id=1, hits=ev.hits), SubsetConfig())


def test_cli_reduces_the_real_event(trackml_prefix: Path, tmp_path: Path) -> None:
    out = tmp_path / "reduced"
    res = CliRunner().invoke(
        app,
        [
            "subset",
            str(trackml_prefix),
            "--out",
            str(out),
            "--volumes",
            "barrel",
            "--density",
            "0.5",
            "--no-double-hits",
            "--noise-fraction",
            "0.23",
            "--format",
            "csv",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (out / "detectors.csv.gz").is_file()  # copied so reconstruct finds it
    red = read_event(out)
    full = read_event(trackml_prefix)
    assert set(red.hits["volume_id"]) <= set(BARREL_VOLUMES)
    assert set(red.hits["hit_id"]) <= set(full.hits["hit_id"])
    t = red.hits.merge(red.truth, on="hit_id")
    noise = (t["particle_id"] == 0).mean()
    assert abs(noise - 0.23) < 0.005
    sig = t[t["particle_id"] != 0]
    assert not sig.duplicated(["particle_id", "volume_id", "layer_id"]).any()
    meta = json.loads((out / "event000000001-meta.json").read_text())
    assert meta["subset"]["density"] == 0.5 and meta["subset"]["double_hits"] is False
    # Bad option: one line naming it, exit code 2.
    bad = CliRunner().invoke(
        app, ["subset", str(trackml_prefix), "--out", str(out), "--density", "2"]
    )
    assert bad.exit_code == 2 and "--density" in bad.output
