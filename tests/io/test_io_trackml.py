"""TrackML CSV(.gz) reading on the real event, its variants, and lhcml round trips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lhcml.data.schema import SCHEMAS
from lhcml.io import list_events, read_event, write_event
from lhcml.io.events import trackml_secondary

# The TrackML challenge library (trackml-library, trackml/dataset.py) reads each table
# with pandas.read_csv and these columns / dtypes.
TRACKML_DTYPES = {
    "hits": {
        "hit_id": "i4",
        "x": "f4",
        "y": "f4",
        "z": "f4",
        "volume_id": "i4",
        "layer_id": "i4",
        "module_id": "i4",
    },
    "cells": {"hit_id": "i4", "ch0": "i4", "ch1": "i4", "value": "f4"},
    "particles": {
        "particle_id": "i8",
        "vx": "f4",
        "vy": "f4",
        "vz": "f4",
        "px": "f4",
        "py": "f4",
        "pz": "f4",
        "q": "i4",
        "nhits": "i4",
    },
    "truth": {
        "hit_id": "i4",
        "particle_id": "i8",
        "tx": "f4",
        "ty": "f4",
        "tz": "f4",
        "tpx": "f4",
        "tpy": "f4",
        "tpz": "f4",
        "weight": "f4",
    },
}


@pytest.fixture(scope="module")
def event(trackml_prefix: Path):
    return read_event(trackml_prefix)


def test_real_event_counts(event) -> None:
    assert len(event.hits) == 5527
    assert len(event.particles) == 548
    assert len(event.truth) == 5527
    assert len(event.cells) == 18564
    assert int((event.truth["particle_id"] == 0).sum()) == 829
    assert event.spacepoints is None
    assert event.meta["source"].endswith("event000000001")


def test_real_event_truth_matches_hits(event) -> None:
    np.testing.assert_array_equal(
        np.sort(event.truth["hit_id"].to_numpy()), np.sort(event.hits["hit_id"].to_numpy())
    )
    # nhits is the particle's number of truth rows (0 for particles outside the subset).
    counts = event.truth.loc[event.truth["particle_id"] != 0, "particle_id"].value_counts()
    expected = counts.reindex(event.particles["particle_id"], fill_value=0).to_numpy()
    np.testing.assert_array_equal(event.particles["nhits"].to_numpy(), expected)
    assert int((expected > 0).sum()) == 468
    assert int(expected.sum()) == 5527 - 829


def test_real_event_dtypes_are_canonical(event) -> None:
    for name, df in event.tables().items():
        for col, spec in SCHEMAS[name].items():
            if col in df.columns:
                assert df[col].dtype == np.dtype(spec.dtype), (name, col)
        assert isinstance(df.index, pd.RangeIndex)


def test_real_event_primary_from_id_bits(event) -> None:
    p = event.particles
    assert int(p["primary"].sum()) == 430
    assert int((~p["primary"]).sum()) == 118
    np.testing.assert_array_equal(
        p["primary"].to_numpy(), ~trackml_secondary(p["particle_id"].to_numpy())
    )
    # Physics check of the bit rule: every secondary (material interaction) is made
    # away from the beam line; generator particles mostly at it (38 come from decays).
    assert p.loc[~p["primary"], "prod_r"].min() > 18.0
    assert int((p.loc[p["primary"], "prod_r"] < 1.0).sum()) == 392
    # particle_type is in the file (PDG ids): charged pions dominate.
    kinds = np.abs(p["particle_type"]).value_counts().to_dict()
    assert kinds == {211: 432, 2212: 77, 321: 38, 11: 1}
    np.testing.assert_allclose(
        p["prod_r"], np.hypot(p["vx"].astype(float), p["vy"].astype(float)), rtol=1e-6
    )


def test_real_event_values(event) -> None:
    h = event.hits
    assert set(h["volume_id"].unique()) == {7, 8, 9, 12, 13, 14, 16, 17, 18}
    r = np.hypot(h["x"], h["y"])
    assert 30 < r.min() < 35 and 1000 < r.max() < 1030  # pixel layer 1 .. long strips
    assert np.abs(h["z"]).max() < 3000
    # Truth positions are close to the measured ones (< 1 mm off in the pixels).
    t = h.merge(event.truth, on="hit_id")
    signal = t[(t["particle_id"] != 0) & t["volume_id"].isin([7, 8, 9])]
    assert np.median(np.abs(signal["x"] - signal["tx"])) < 0.05
    # Challenge weights of the full event: the subset holds 5.1 % of them; noise weighs 0.
    w = event.truth["weight"]
    assert (w >= 0).all() and (w[event.truth["particle_id"] == 0] == 0).all()
    np.testing.assert_allclose(w.sum(), 0.05126, rtol=1e-3)


def test_hits_only_read(trackml_prefix: Path) -> None:
    ev = read_event(trackml_prefix, parts=["hits"])
    assert len(ev.hits) == 5527
    assert ev.truth is None and ev.particles is None and ev.cells is None
    assert not ev.has_truth


def test_directory_with_event_id(trackml_prefix: Path) -> None:
    ev = read_event(trackml_prefix.parent, 1, parts=["hits", "truth"])
    assert len(ev.truth) == 5527 and ev.particles is None


def test_without_truth(trackml_copy: Callable[..., Path]) -> None:
    prefix = trackml_copy("notruth", tables=("hits", "cells"))
    ev = read_event(prefix)
    assert not ev.has_truth and ev.truth is None and ev.particles is None
    assert len(ev.hits) == 5527 and len(ev.cells) == 18564
    # The directory alone is enough: it holds one event.
    assert read_event(prefix.parent).event_id == 1


def test_plain_csv_gives_same_event(
    trackml_copy: Callable[..., Path], event, trackml_prefix: Path
) -> None:
    prefix = trackml_copy("plain", gunzip=True)
    ev = read_event(prefix)
    for name, df in event.tables().items():
        pd.testing.assert_frame_equal(ev.tables()[name], df)


def test_without_particle_type(trackml_copy: Callable[..., Path], event) -> None:
    prefix = trackml_copy("notype", tables=("hits", "truth", "particles"))
    f = Path(f"{prefix}-particles.csv.gz")
    pd.read_csv(f).drop(columns="particle_type").to_csv(f, index=False)
    ev = read_event(prefix)
    assert (ev.particles["particle_type"] == 0).all()
    assert ev.particles["particle_type"].dtype == np.int32
    assert int(ev.particles["primary"].sum()) == 430
    pd.testing.assert_frame_equal(
        ev.particles.drop(columns="particle_type"), event.particles.drop(columns="particle_type")
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip(event, tmp_path: Path, fmt: str) -> None:
    written = write_event(event, tmp_path, fmt=fmt)
    assert written[-1].name == "event000000001-meta.json"
    assert {p.name for p in written[:-1]} == {
        f"event000000001-{t}.{fmt}" for t in ("hits", "cells", "truth", "particles")
    }
    assert list_events(tmp_path) == [1]
    back = read_event(tmp_path, 1)
    assert back.tables().keys() == event.tables().keys()
    for name, df in event.tables().items():
        pd.testing.assert_frame_equal(back.tables()[name], df, check_exact=True)
    assert back.meta["format"] == fmt


def test_lhcml_csv_readable_like_trackml_library(event, tmp_path: Path) -> None:
    write_event(event, tmp_path, fmt="csv")
    for name, dtypes in TRACKML_DTYPES.items():
        path = tmp_path / f"event000000001-{name}.csv"
        df = pd.read_csv(path, header=0, index_col=False, usecols=list(dtypes), dtype=dtypes)
        ours = getattr(event, name)
        assert list(df.columns) == list(dtypes)
        for col in dtypes:
            np.testing.assert_array_equal(df[col].to_numpy(), ours[col].to_numpy(), err_msg=col)
    # The extra particle columns come after the TrackML ones, readable as well.
    extra = pd.read_csv(tmp_path / "event000000001-particles.csv")
    assert list(extra.columns[:9]) == list(TRACKML_DTYPES["particles"])
    assert extra["primary"].dtype == bool
    assert int(extra["primary"].sum()) == 430


def test_submission_file_has_the_trackml_layout(tmp_path: Path) -> None:
    """The Arrow-written submission is byte for byte what pandas writes, and reads back."""
    from lhcml.io.submission import submission_path, write_submission
    from lhcml.metrics.evaluate import read_submission

    rng = np.random.default_rng(4)
    tracks = pd.DataFrame(
        {"hit_id": np.arange(1, 5001, dtype=np.int32), "track_id": rng.integers(-1, 900, 5000)}
    )
    path = write_submission(tracks, submission_path(tmp_path, 42))
    assert path.name == "event000000042-submission.csv"
    assert path.read_bytes() == tracks.astype("int64").to_csv(index=False).encode()
    back = read_submission(path)
    np.testing.assert_array_equal(back["track_id"].to_numpy(), tracks["track_id"].to_numpy())
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
