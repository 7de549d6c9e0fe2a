"""TrackML detector file and the cluster-shape (cell) features, on the real event."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lhcml.errors import InputError
from lhcml.io import read_event
from lhcml.io.detector import DETECTORS, cell_features, module_rows, read_detectors


@pytest.fixture(scope="module")
def detectors_file(trackml_prefix: Path) -> Path:
    return trackml_prefix.parent / "detectors.csv.gz"


@pytest.fixture(scope="module")
def detectors(detectors_file: Path) -> pd.DataFrame:
    return read_detectors(detectors_file)


@pytest.fixture(scope="module")
def event(trackml_prefix: Path):
    return read_event(trackml_prefix)


@pytest.fixture(scope="module")
def features(event, detectors: pd.DataFrame) -> pd.DataFrame:
    return cell_features(event.hits, event.cells, detectors)


def test_read_detectors(detectors: pd.DataFrame) -> None:
    assert len(detectors) == 18728
    assert list(detectors.columns) == list(DETECTORS)
    for name, col in DETECTORS.items():
        assert detectors[name].dtype == np.dtype(col.dtype), name
    assert sorted(detectors["volume_id"].unique()) == [7, 8, 9, 12, 13, 14, 16, 17, 18]
    # Pixel / short strip / long strip pitches and thicknesses of the TrackML detector.
    pix = detectors[detectors["volume_id"].isin([7, 8, 9])]
    assert set(pix["pitch_u"]) == {0.05} and set(pix["pitch_v"]) == {0.05625}
    assert set(pix["module_t"]) == {0.15}
    assert set(detectors["pitch_u"]) == {0.05, 0.08, 0.12}
    first = detectors.iloc[0]
    assert (first["volume_id"], first["layer_id"], first["module_id"]) == (7, 2, 1)
    assert first["cx"] == pytest.approx(-65.7965)


def test_every_hit_has_its_module(event, detectors: pd.DataFrame) -> None:
    rows = module_rows(event.hits, detectors)
    assert (rows >= 0).all()
    det = detectors.iloc[rows]
    for key in ("volume_id", "layer_id", "module_id"):
        np.testing.assert_array_equal(det[key].to_numpy(), event.hits[key].to_numpy())
    # Hits lie on their module: the offset from the centre is within the module plane
    # (|w| < thickness) and inside its half-length along v.
    rot = det[[c for c in DETECTORS if c.startswith("rot_")]].to_numpy().reshape(-1, 3, 3)
    offset = event.hits[["x", "y", "z"]].to_numpy(float) - det[["cx", "cy", "cz"]].to_numpy()
    local = np.einsum("nji,nj->ni", rot, offset)
    assert np.abs(local[:, 2]).max() < 0.2
    assert (np.abs(local[:, 1]) <= det["module_hv"].to_numpy() + 0.1).all()


def test_cell_counts_and_charge(event, features: pd.DataFrame) -> None:
    assert len(features) == len(event.hits)
    np.testing.assert_array_equal(features["hit_id"], event.hits["hit_id"])
    grouped = event.cells.groupby("hit_id")
    counts = grouped.size().reindex(features["hit_id"]).to_numpy()
    np.testing.assert_array_equal(features["cell_count"], counts)
    np.testing.assert_allclose(
        features["cell_val"], grouped["value"].sum().reindex(features["hit_id"]), rtol=1e-6
    )
    assert features["cell_count"].sum() == 18564
    assert features["cell_count"].dtype == np.int32
    # A single-cell pixel cluster is one pixel: 50 x 56.25 um in the TrackML detector.
    one = (features["cell_count"] == 1).to_numpy() & event.hits["volume_id"].isin([7, 8, 9])
    np.testing.assert_allclose(features.loc[one, "len_u"], 0.05, rtol=1e-6)
    np.testing.assert_allclose(features.loc[one, "len_v"], 0.05625, rtol=1e-6)
    assert np.isfinite(features.drop(columns="hit_id").to_numpy()).all()


def test_cluster_direction_follows_the_particle(event, features: pd.DataFrame) -> None:
    h = (
        event.hits.merge(features, on="hit_id")
        .merge(event.truth, on="hit_id")
        .merge(event.particles[["particle_id", "primary"]], on="particle_id")
    )
    barrel = h[(h["volume_id"] == 8) & h["primary"]]
    assert len(barrel) == 1194
    tpx, tpy, tpz = (barrel[c].to_numpy(float) for c in ("tpx", "tpy", "tpz"))
    true_eta = np.arcsinh(tpz / np.hypot(tpx, tpy))
    true_phi = np.arctan2(tpy, tpx)
    d_eta = np.abs(barrel["cluster_eta"].to_numpy() - true_eta)
    d_phi = np.abs((barrel["cluster_phi"].to_numpy() - true_phi + np.pi) % (2 * np.pi) - np.pi)
    assert np.median(d_eta) < 0.08
    assert np.median(d_phi) < 0.15
    assert np.corrcoef(barrel["cluster_eta"], true_eta)[0, 1] > 0.95
    # Better than the eta of the hit position seen from the origin (vertex spread in z).
    pos_eta = np.arcsinh(barrel["z"] / np.hypot(barrel["x"], barrel["y"])).to_numpy()
    assert np.median(d_eta) < 0.5 * np.median(np.abs(pos_eta - true_eta))
    # The cluster length along v (the beam axis in the barrel) grows with |sinh(eta)|.
    long = barrel["len_v"].to_numpy()
    assert np.corrcoef(long, np.abs(np.sinh(true_eta)))[0, 1] > 0.9


def test_hits_without_cells(event, detectors: pd.DataFrame) -> None:
    some = event.hits.iloc[:10]
    f = cell_features(some, event.cells.iloc[:0], detectors)
    assert (f["cell_count"] == 0).all() and (f["len_u"] == 0).all()
    assert np.isfinite(f["cluster_eta"]).all()


def test_unknown_module(event, detectors: pd.DataFrame) -> None:
    hits = event.hits.assign(module_id=np.where(event.hits.index == 0, 99999, 1))
    with pytest.raises(InputError, match=r"1 hit\(s\) on 1 module\(s\) missing.*\(7, 2, 99999\)"):
        cell_features(hits, event.cells, detectors)


def _write(tmp_path: Path, detectors_file: Path, change) -> Path:
    with gzip.open(detectors_file, "rt") as f:
        df = pd.read_csv(f)
    out = tmp_path / "detectors.csv"
    change(df).to_csv(out, index=False)
    return out


@pytest.mark.parametrize(
    ("change", "match", "column"),
    [
        (
            lambda df: df.drop(columns="pitch_v"),
            r"lacks required column\(s\) \['pitch_v'\]",
            "pitch_v",
        ),
        (
            lambda df: df.assign(cx=df["cx"].astype(str).where(df.index != 5, "x")),
            "found str",
            "cx",
        ),
        (
            lambda df: df.assign(module_t=df["module_t"].where(df.index != 9, np.nan)),
            "NaN",
            "module_t",
        ),
        (
            lambda df: pd.concat([df, df.iloc[[3]]]),
            r"1 duplicate module id.*\[7, 2, 4\]",
            "module_id",
        ),
        (
            lambda df: df.assign(pitch_u=df["pitch_u"].where(df.index != 2, 0.0)),
            "non-positive",
            "pitch_u",
        ),
        (lambda df: df.assign(rot_xu=df["rot_xu"] * 2), "not orthonormal", "rot_xu"),
        (lambda df: df.iloc[:0], "no modules", None),
    ],
    ids=["missing column", "string", "NaN", "duplicate", "zero pitch", "rotation", "empty"],
)
def test_bad_detector_file(
    tmp_path: Path, detectors_file: Path, change, match: str, column: str | None
) -> None:
    path = _write(tmp_path, detectors_file, change)
    with pytest.raises(InputError, match=match) as info:
        read_detectors(path)
    assert "detectors.csv" in str(info.value)
    assert info.value.column == column


def test_missing_detector_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such detector file"):
        read_detectors(tmp_path / "detectors.csv")
