"""ACTS CSV reader on real pyacts output (particle gun -> Fatras -> smearing digitization)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lhcml.errors import InputError
from lhcml.io import read_event, read_events, write_event
from lhcml.io.acts import (
    acts_particle_id,
    decode_barcode,
    decode_geometry_id,
    encode_barcode,
    encode_geometry_id,
    is_acts_dir,
    list_acts_events,
    read_acts_event,
)
from lhcml.io.events import trackml_secondary

# As in conftest.py (checked by the acts_gun fixture below).
N_EVENTS = 3
N_MUONS = 4
BARCODE = [
    "particle_id_pv",
    "particle_id_sv",
    "particle_id_part",
    "particle_id_gen",
    "particle_id_subpart",
]
# What pyacts 48.1 writes (the reader relies on these; a new ACTS version that changes
# them fails here first).
EXPECTED_COLUMNS = {
    "measurements": "measurement_id,geometry_id,local_key,local0,local1,phi,theta,time,"
    "var_local0,var_local1,var_phi,var_theta,var_time,global_x,global_y,global_z",
    "measurement-simhit-map": "measurement_id,hit_id",
    "cells": "geometry_id,measurement_id,channel0,channel1,timestamp,value",
    "hits": ",".join(BARCODE) + ",geometry_id,tx,ty,tz,tt,tpx,tpy,tpz,te,deltapx,deltapy,"
    "deltapz,deltae,index",
    "particles": ",".join(BARCODE) + ",particle_type,process,vx,vy,vz,vt,px,py,pz,m,q",
    "particles_simulated": ",".join(BARCODE) + ",particle_type,process,vx,vy,vz,vt,px,py,pz,m,q",
    "spacepoint": "measurement_id_1,measurement_id_2,geometry_id_1,geometry_id_2,x,y,z,t,"
    "var_r,var_z",
}


def _csv(directory: Path, event_id: int, stem: str) -> pd.DataFrame:
    return pd.read_csv(directory / f"event{event_id:09d}-{stem}.csv")


def test_fixture_settings(acts_gun: dict) -> None:
    assert (acts_gun["events"], acts_gun["particles"]) == (N_EVENTS, N_MUONS)


def test_acts_writes_the_expected_files(acts_muons: Path) -> None:
    for eid in range(N_EVENTS):
        for stem, header in EXPECTED_COLUMNS.items():
            f = acts_muons / f"event{eid:09d}-{stem}.csv"
            assert f.read_text().splitlines()[0] == header, f.name
    assert list_acts_events(acts_muons) == list(range(N_EVENTS))


def test_is_acts_dir(acts_muons: Path, trackml_prefix: Path) -> None:
    assert is_acts_dir(acts_muons)
    assert is_acts_dir(acts_muons / "event000000001")
    assert is_acts_dir(acts_muons / "event000000001-measurements.csv")
    assert is_acts_dir(acts_muons / "event000000001-hits.csv")
    assert not is_acts_dir(trackml_prefix)
    assert not is_acts_dir(trackml_prefix.parent)


@pytest.fixture(scope="module")
def events(acts_muons: Path) -> list:
    return [read_event(acts_muons, eid) for eid in range(N_EVENTS)]


def test_hits_are_the_measurements(acts_muons: Path, events: list) -> None:
    acts = pytest.importorskip("acts")
    for eid, ev in enumerate(events):
        meas = _csv(acts_muons, eid, "measurements")
        assert len(ev.hits) == len(meas)
        np.testing.assert_array_equal(ev.hits["hit_id"], meas["measurement_id"] + 1)
        np.testing.assert_allclose(ev.hits["x"], meas["global_x"], rtol=1e-6)
        np.testing.assert_allclose(ev.hits["z"], meas["global_z"], rtol=1e-6)
        # The decoding agrees with ACTS' own GeometryIdentifier.
        for gid, vol, lay, mod in zip(
            meas["geometry_id"],
            ev.hits["volume_id"],
            ev.hits["layer_id"],
            ev.hits["module_id"],
            strict=True,
        ):
            g = acts.GeometryIdentifier(int(gid))
            assert (g.volume, g.layer, g.sensitive) == (vol, lay, mod)
        assert set(ev.hits["volume_id"]) <= {7, 8, 9, 12, 13, 14, 16, 17, 18}
        assert ev.meta["format"] == "acts-csv"


def test_measured_positions_within_errors_of_truth(acts_muons: Path, events: list) -> None:
    ratios = []
    for eid, ev in enumerate(events):
        meas = _csv(acts_muons, eid, "measurements")
        h = ev.hits.merge(ev.truth, on="hit_id")
        d2 = (
            (h["x"] - h["tx"]).astype(float) ** 2
            + (h["y"] - h["ty"]).astype(float) ** 2
            + (h["z"] - h["tz"]).astype(float) ** 2
        )
        # The residual lies in the module plane: E|r|^2 = var_local0 + var_local1.
        ratios.append(d2 / (meas["var_local0"] + meas["var_local1"]))
        pixel = h["volume_id"].isin([7, 8, 9])
        assert np.sqrt(d2[pixel]).max() < 5 * 0.05 / np.sqrt(12) * np.sqrt(2)
    r = np.concatenate(ratios)
    assert 0.6 < r.mean() < 1.4, r.mean()
    assert r.max() < 30  # no hit 5 sigma off (chi2 with 2 dof)


def test_every_measurement_has_its_muon(events: list) -> None:
    for ev in events:
        assert (ev.truth["particle_id"] != 0).all()
        assert set(ev.truth["particle_id"]) <= set(ev.particles["particle_id"])
        muons = ev.particles[ev.particles["primary"]]
        assert len(muons) == N_MUONS
        assert set(np.abs(muons["particle_type"])) == {13}
        np.testing.assert_array_equal(muons["q"], -np.sign(muons["particle_type"]))
        pt = np.hypot(muons["px"].astype(float), muons["py"].astype(float))
        assert ((pt > 0.99) & (pt < 10.01)).all()
        assert (muons["prod_r"] == 0).all() and (muons["subevent"] == 0).all()
        # nhits counts the measurements of each particle.
        counts = ev.truth["particle_id"].value_counts()
        np.testing.assert_array_equal(
            ev.particles["nhits"], counts.reindex(ev.particles["particle_id"], fill_value=0)
        )
    nhits = np.concatenate([ev.particles.loc[ev.particles["primary"], "nhits"] for ev in events])
    # The Generic detector gives a 1-10 GeV muon at |eta| < 2 about 10-14 measurements.
    assert 10 <= np.median(nhits) <= 14, nhits
    assert nhits.min() >= 6 and nhits.max() <= 20, nhits


def test_truth_is_the_linked_sim_hit(acts_muons: Path, events: list) -> None:
    ev = events[0]
    link = _csv(acts_muons, 0, "measurement-simhit-map")
    sim = _csv(acts_muons, 0, "hits")
    row = sim.iloc[link.sort_values("measurement_id")["hit_id"].to_numpy()]
    np.testing.assert_allclose(ev.truth["tx"], row["tx"], rtol=1e-6)
    np.testing.assert_allclose(ev.truth["tpz"], row["tpz"], rtol=1e-6)
    expected = acts_particle_id(*(row[c].to_numpy() for c in BARCODE))
    np.testing.assert_array_equal(ev.truth["particle_id"], expected)
    # TrackML weights (lhcml.metrics) sum to 1 over the event.
    np.testing.assert_allclose(ev.truth["weight"].sum(), 1.0, rtol=1e-5)


def test_particle_id_encoding(acts_muons: Path, events: list) -> None:
    ev = events[1]
    gen = _csv(acts_muons, 1, "particles_simulated")
    fields = decode_barcode(ev.particles["particle_id"])
    np.testing.assert_array_equal(fields["vertex_primary"], gen["particle_id_pv"])
    np.testing.assert_array_equal(fields["particle"], gen["particle_id_part"])
    np.testing.assert_array_equal(fields["generation"], gen["particle_id_gen"])
    assert ev.particles["particle_id"].is_unique and (ev.particles["particle_id"] > 0).all()
    # Barcode vp=1, part=3 -> 1 << 52 | 3 << 36.
    assert acts_particle_id(1, 0, 3, 0, 0)[()] == (1 << 52) | (3 << 36)


def test_encode_barcode_layout_and_limits() -> None:
    pid = encode_barcode([1, 2047], [0, 4095], [7, 65535], [0, 4095], [0, 4095])
    assert (pid > 0).all()
    back = decode_barcode(pid)
    assert back["vertex_primary"].tolist() == [1, 2047]
    assert back["vertex_secondary"].tolist() == [0, 4095]
    assert back["particle"].tolist() == [7, 65535]
    # Secondary vertex -> not primary, and the TrackML generation bits agree.
    ids = acts_particle_id(
        np.array([1, 1, 1]), np.array([0, 2, 0]), np.array([5, 5, 5]), np.array([0, 0, 1]), 0
    )
    np.testing.assert_array_equal(trackml_secondary(ids), [False, True, True])
    assert len(set(ids.tolist())) == 3
    with pytest.raises(InputError, match="'vertex_primary' value 2048 does not fit the 11 bits"):
        encode_barcode(2048, 0, 1, 0, 0)
    with pytest.raises(InputError, match="'particle' value -1"):
        encode_barcode(1, 0, -1, 0, 0)


def test_geometry_id_round_trip() -> None:
    gid = encode_geometry_id([8, 17, 255], [2, 4, 4095], [97, 2110, 1048575], extra=[0, 0, 255])
    assert gid.dtype == np.uint64
    assert gid[0] == 576460889742401792  # a pixel barrel module of the Generic detector
    back = decode_geometry_id(gid)
    assert back["volume"].tolist() == [8, 17, 255]
    assert back["layer"].tolist() == [2, 4, 4095]
    assert back["sensitive"].tolist() == [97, 2110, 1048575]
    assert back["extra"].tolist() == [0, 0, 255]
    with pytest.raises(ValueError, match="'layer' out of range"):
        encode_geometry_id(8, 4096, 1)


def test_secondaries_from_electrons(acts_electrons: Path) -> None:
    evs = list(read_events(acts_electrons))
    assert [ev.event_id for ev in evs] == list(range(N_EVENTS))
    p = pd.concat([ev.particles for ev in evs])
    sec = p[~p["primary"]]
    gen = pd.concat([_csv(acts_electrons, i, "particles_simulated") for i in range(N_EVENTS)])
    # Every Fatras secondary (bremsstrahlung photons, generation >= 1) is kept and flagged.
    assert len(sec) == int((gen["particle_id_gen"] > 0).sum()) > 0
    assert (sec["prod_r"] > 1.0).all()
    assert (decode_barcode(sec["particle_id"])["generation"] >= 1).all()
    np.testing.assert_array_equal(trackml_secondary(p["particle_id"]), ~p["primary"])
    assert len(p[p["primary"]]) == N_EVENTS * N_MUONS
    assert set(np.abs(p.loc[p["primary"], "particle_type"])) == {11}


def test_spacepoints(acts_gun: dict, events: list) -> None:
    for ev in events:
        sp = ev.spacepoints
        pixel = ev.hits[
            np.logical_or.reduce(
                [
                    (ev.hits["volume_id"] == v) & ev.hits["layer_id"].isin(layers)
                    for v, layers in acts_gun["pixel_layers"].items()
                ]
            )
        ]
        # One space point per pixel measurement of the selected layers, at its position.
        assert sorted(sp["hit_id"]) == sorted(pixel["hit_id"])
        m = sp.merge(ev.hits, on="hit_id", suffixes=("", "_hit"))
        np.testing.assert_allclose(m["x"], m["x_hit"], atol=1e-4)
        np.testing.assert_allclose(m["z"], m["z_hit"], atol=1e-4)
        assert (sp["hit_id_2"] == 0).all()
        assert (sp["var_z"] > 0).all()


def test_cells(acts_copy: Path) -> None:
    ev = read_acts_event(acts_copy)
    assert ev.cells is None  # smearing digitization: header-only cells file
    assert len(read_acts_event(acts_copy, parts=["cells"]).cells) == 0
    # Rows in the format ACTS writes (header from the real file).
    f = acts_copy / "event000000000-cells.csv"
    f.write_text(
        f.read_text() + "576460889742401792,0,12,34,0,0.5\n576460889742401792,0,13,34,0,0.25\n"
    )
    cells = read_acts_event(acts_copy).cells
    assert cells["hit_id"].tolist() == [1, 1]
    assert cells["ch0"].tolist() == [12, 13] and cells["value"].tolist() == [0.5, 0.25]


def test_parts_and_paths(acts_muons: Path, events: list) -> None:
    hits_only = read_event(acts_muons / "event000000002", parts=["hits"])
    assert hits_only.truth is None and hits_only.particles is None
    pd.testing.assert_frame_equal(hits_only.hits, events[2].hits)
    from_file = read_event(acts_muons / "event000000002-measurements.csv", parts=["particles"])
    assert from_file.truth is None
    pd.testing.assert_frame_equal(from_file.particles, events[2].particles)
    with pytest.raises(InputError, match=r"holds 3 ACTS events \(\[0, 1, 2\]\)"):
        read_event(acts_muons)


def test_round_trip_through_lhcml_files(events: list, tmp_path: Path) -> None:
    write_event(events[0], tmp_path)
    back = read_event(tmp_path, 0)
    for name, df in events[0].tables().items():
        pd.testing.assert_frame_equal(back.tables()[name], df)


def test_measurements_only(acts_copy: Path) -> None:
    for f in acts_copy.glob("*"):
        if not f.name.endswith("-measurements.csv"):
            f.unlink()
    ev = read_event(acts_copy)
    assert not ev.has_truth and len(ev.hits) > 0 and ev.spacepoints is None
    with pytest.raises(InputError, match=r"no -measurement-simhit-map\.csv file for the requested"):
        read_event(acts_copy, parts=["truth"])


def _rewrite(path: Path, change) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(df).to_csv(path, index=False)


def _set(column: str, row: int, value: str):
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, column] = value
        return df

    return change


ACTS_CASES = {
    "missing global position": (
        "measurements",
        lambda df: df.drop(columns=["global_x"]),
        "no global_x/global_y/global_z columns",
        "global_x",
    ),
    "missing geometry_id": (
        "measurements",
        lambda df: df.drop(columns=["geometry_id"]),
        r"lacks required column\(s\) \['geometry_id'\]",
        "geometry_id",
    ),
    "string geometry id": (
        "measurements",
        _set("geometry_id", 2, "abc"),
        "cannot read .*invalid value 'abc'",
        "geometry_id",
    ),
    "infinite global y": (
        "measurements",
        _set("global_y", 3, "inf"),
        "1 NaN / infinite value",
        "global_y",
    ),
    "empty tx": ("hits", _set("tx", 1, ""), "1 missing / NaN value", "tx"),
    "nan tz": ("hits", _set("tz", 1, "nan"), "1 missing / NaN value", "tz"),
    "duplicate measurement": (
        "measurements",
        _set("measurement_id", 1, "0"),
        r"duplicate measurement ids \(e\.g\. 0\)",
        "measurement_id",
    ),
    "link beyond sim hits": (
        "measurement-simhit-map",
        _set("hit_id", 0, "100000"),
        "link.* to sim hits beyond",
        "hit_id",
    ),
    "link to unknown measurement": (
        "measurement-simhit-map",
        _set("measurement_id", 0, "5000"),
        "link.* to measurement ids not in the measurements file",
        "measurement_id",
    ),
    "link to another surface": (
        "measurement-simhit-map",
        _set("hit_id", 0, "5"),
        "lie on other surfaces",
        "hit_id",
    ),
    "sim hit of unknown particle": (
        "hits",
        _set("particle_id_part", 0, "999"),
        r"particle\(s\) of sim hits are not in",
        "particle_id_part",
    ),
    "barcode too wide": (
        "particles_simulated",
        _set("particle_id_pv", 0, "5000"),
        "'vertex_primary' value 5000 does not fit",
        "particle_id_pv",
    ),
    "negative barcode": (
        "particles_simulated",
        _set("particle_id_part", 0, "-1"),
        "cannot read",
        "particle_id_part",
    ),
    "spacepoint of unknown measurement": (
        "spacepoint",
        _set("measurement_id_1", 0, "7777"),
        r"space point\(s\) of measurement ids",
        "measurement_id_1",
    ),
    "header only": (
        "measurements",
        lambda df: df.iloc[:0],
        "event 0 has no measurements",
        None,
    ),
}


@pytest.mark.parametrize("case", ACTS_CASES.values(), ids=ACTS_CASES.keys())
def test_bad_acts_input(acts_copy: Path, case: tuple) -> None:
    stem, change, match, column = case
    target = acts_copy / f"event000000000-{stem}.csv"
    _rewrite(target, change)
    with pytest.raises(InputError, match=match) as info:
        read_event(acts_copy)
    assert target.name in str(info.value)
    if column is not None:
        assert info.value.column == column and f"column '{column}'" in str(info.value)


def test_truncated_acts_file(acts_copy: Path) -> None:
    f = acts_copy / "event000000000-measurements.csv"
    f.write_text(f.read_text()[:-30] + "\n1,2\n")
    with pytest.raises(InputError, match="cannot read") as info:
        read_event(acts_copy)
    assert f.name in str(info.value)
