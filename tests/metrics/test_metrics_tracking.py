"""Efficiency, fake and duplicate rates on the hand event of conftest.py.

Hand counts (default fiducial: pT >= 1, |eta| <= 4, >= 3 hits, primaries; tracks >= 3 hits):
fiducial particles P1, P2, P6, P7 (4); selected tracks T1 T2 T3 T4 T5 T7 T8 (7; T6 has 2 hits).

| track | hits | majority | purity | particle fraction | atlas | double_majority | acts |
| T1 | 1,2,3 | P1 | 3/3 | 3/4 | yes | yes | yes |
| T2 | 4,5,6,7,8 | P2 | 4/5 | 4/6 | yes | yes | yes |
| T3 | 9,10,n | P2 | 2/3 | 2/6 | yes (dup of T2) | no | no |
| T4 | 11-14 | P3 | 4/4 | 4/4 | yes | yes | yes |
| T5 | 15,16,n,n | P4 | 2/4 | 2/4 | no | no | yes |
| T7 | 19,n,n | P5 | 1/3 | 1/2 | no | no | no |
| T8 | 26,27,n | P6 | 2/3 | 2/5 | yes | no | no |
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lhcml.errors import ConfigError, InputError
from lhcml.metrics.stats import Ratio
from lhcml.metrics.tracking import (
    FiducialSelection,
    TrackingPerformance,
    TrackSelection,
    estimate_track_kinematics,
    match_tracks,
    tracking_performance,
)

TRACK_PARAMS = pd.DataFrame(
    {
        "track_id": [1, 2, 3, 4, 5, 6, 7, 8],
        "pt": [2.2, 4.5, 4.8, 0.5, 3.0, 3.0, 1.5, 1.1],
        "eta": [0.5, -1.0, -1.0, 0.0, 2.0, 2.0, 0.2, -2.5],
    }
)
PT_BINS = [1.0, 2.0, 5.0, 20.0]
ETA_BINS = [-4.0, -2.0, 0.0, 2.0, 4.0]


def _perf(hand_event, matching: str, **kw) -> TrackingPerformance:  # type: ignore[no-untyped-def]
    event, assignment = hand_event(1)
    return tracking_performance(
        assignment,
        event.truth,
        event.particles,
        matching=matching,
        track_params=TRACK_PARAMS,
        pt_bins=PT_BINS,
        eta_bins=ETA_BINS,
        **kw,
    )


def _counts(r: Ratio) -> tuple[int, int]:
    return r.k, r.n


def test_match_tracks_table(hand_event) -> None:  # type: ignore[no-untyped-def]
    event, assignment = hand_event(1)
    t = match_tracks(assignment, event.truth, "double_majority").set_index("track_id")
    assert t.index.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert t["nhits"].tolist() == [3, 5, 3, 4, 4, 2, 3, 3]
    assert t["particle_id"].tolist() == [1, 2, 2, 3, 4, 4, 5, 6]
    assert t["n_major"].tolist() == [3, 4, 2, 4, 2, 2, 1, 2]
    assert t["particle_nhits"].tolist() == [4, 6, 6, 4, 4, 4, 2, 5]
    assert t.loc[5, "purity"] == 0.5 and t.loc[3, "particle_fraction"] == pytest.approx(1 / 3)
    expected = {
        "atlas": [1, 1, 1, 1, 0, 1, 0, 1],
        "double_majority": [1, 1, 0, 1, 0, 0, 0, 0],
        "acts": [1, 1, 0, 1, 1, 1, 0, 0],
    }
    for matching, flags in expected.items():
        m = match_tracks(assignment, event.truth, matching)  # type: ignore[arg-type]
        assert m["matched"].astype(int).tolist() == flags, matching


@pytest.mark.parametrize(
    ("matching", "eff", "fake", "dup"),
    [
        ("atlas", (3, 4), (2, 7), (1, 5)),
        ("double_majority", (2, 4), (4, 7), (0, 3)),
        ("acts", (2, 4), (3, 7), (0, 4)),
    ],
)
def test_totals_by_hand(hand_event, matching, eff, fake, dup) -> None:  # type: ignore[no-untyped-def]
    r = _perf(hand_event, matching)
    assert _counts(r.efficiency) == eff
    assert _counts(r.fake_rate) == fake
    assert _counts(r.duplicate_rate) == dup
    assert r.efficiency.value == eff[0] / eff[1]


def test_binned_by_hand_atlas(hand_event) -> None:  # type: ignore[no-untyped-def]
    r = _perf(hand_event, "atlas")
    b = r.binned
    # Fiducial particles: P6 (1.2 GeV, eta -2.5) found, P1 (2, 0.5) found, P2 (5, -1) found,
    # P7 (10, 3.0) not found.
    assert b["efficiency_vs_pt"].k.tolist() == [1, 1, 1]
    assert b["efficiency_vs_pt"].n.tolist() == [1, 1, 2]
    assert b["efficiency_vs_eta"].k.tolist() == [1, 1, 1, 0]
    assert b["efficiency_vs_eta"].n.tolist() == [1, 1, 1, 1]
    # Track pT: [1,2): T7 (fake), T8; [2,5): T1, T2, T3, T5 (fake); T4 (0.5) outside.
    assert b["fake_rate_vs_pt"].k.tolist() == [1, 1, 0]
    assert b["fake_rate_vs_pt"].n.tolist() == [2, 4, 0]
    assert math.isnan(b["fake_rate_vs_pt"].value[2])
    # Matched tracks: [1,2): T8; [2,5): T1, T2, T3 (T3 duplicates T2).
    assert b["duplicate_rate_vs_pt"].k.tolist() == [1 - 1, 1, 0]
    assert b["duplicate_rate_vs_pt"].n.tolist() == [1, 3, 0]
    # Track eta: [-4,-2): T8; [-2,0): T2, T3; [0,2): T1, T4, T7 (fake); [2,4]: T5 (fake).
    assert b["fake_rate_vs_eta"].k.tolist() == [0, 0, 1, 1]
    assert b["fake_rate_vs_eta"].n.tolist() == [1, 2, 3, 1]
    assert b["duplicate_rate_vs_eta"].k.tolist() == [0, 1, 0, 0]
    assert b["duplicate_rate_vs_eta"].n.tolist() == [1, 2, 2, 0]


def test_efficiency_vs_vertex_z_by_hand(hand_event) -> None:  # type: ignore[no-untyped-def]
    event, assignment = hand_event(1)
    particles = event.particles.copy()
    # Fiducial P1, P2, P6 (found under atlas) and P7 (not found) moved along the beam.
    vz = {1: -120.0, 2: 10.0, 6: 30.0, 7: 90.0}
    particles["vz"] = particles["particle_id"].map(vz).fillna(0.0)
    b = tracking_performance(
        assignment, event.truth, particles, matching="atlas", vz_bins=[-150, -50, 50, 150]
    ).binned["efficiency_vs_vz"]
    assert b.k.tolist() == [1, 2, 0] and b.n.tolist() == [1, 2, 1]
    # Without a vz column the histogram is empty (no plot), not an error.
    nb = tracking_performance(
        assignment, event.truth, particles.drop(columns="vz"), matching="atlas"
    ).binned["efficiency_vs_vz"]
    assert nb.n.sum() == 0


def test_binned_efficiency_double_majority(hand_event) -> None:  # type: ignore[no-untyped-def]
    b = _perf(hand_event, "double_majority").binned
    assert b["efficiency_vs_pt"].k.tolist() == [0, 1, 1]
    assert b["efficiency_vs_eta"].k.tolist() == [0, 1, 1, 0]


def test_fiducial_selection_options(hand_event) -> None:  # type: ignore[no-untyped-def]
    # --all: P4 (secondary, 3 GeV, 4 hits) joins; under acts it is found by T5.
    r = _perf(hand_event, "acts", fiducial=FiducialSelection(primary_only=False))
    assert _counts(r.efficiency) == (3, 5)
    # pT >= 0.4 adds P3 (0.5 GeV, found by T4).
    r = _perf(hand_event, "atlas", fiducial=FiducialSelection(pt_min=0.4))
    assert _counts(r.efficiency) == (4, 5)
    # pT <= 5 and |eta| <= 2 keep P1 and P2 only.
    r = _perf(hand_event, "atlas", fiducial=FiducialSelection(pt_max=5.0, abs_eta_max=2.0))
    assert _counts(r.efficiency) == (2, 2)
    # min_hits 2 adds P5 (2 hits, 1.5 GeV; T7 is a fake, so not found).
    r = _perf(hand_event, "atlas", fiducial=FiducialSelection(min_hits=2))
    assert _counts(r.efficiency) == (3, 5)


def test_fiducial_prod_r_and_electrons(hand_event) -> None:  # type: ignore[no-untyped-def]
    event, assignment = hand_event(1)
    particles = event.particles.assign(
        vx=[0.0, 0.0, 0.0, 0.0, 0.0, 30.0, 0.0],  # P6 made at r = 30 mm
        particle_type=[211, 11, 211, 211, 211, 211, -11],  # P2 and P7 are electrons
    )
    kw = {"matching": "atlas", "track_params": TRACK_PARAMS}
    r = tracking_performance(
        assignment, event.truth, particles, fiducial=FiducialSelection(max_prod_r=10.0), **kw
    )
    assert _counts(r.efficiency) == (2, 3)  # P1, P2 found; P7 not
    r = tracking_performance(
        assignment, event.truth, particles, fiducial=FiducialSelection(exclude_electrons=True), **kw
    )
    assert _counts(r.efficiency) == (2, 2)  # P1, P6


def test_track_selection(hand_event) -> None:  # type: ignore[no-untyped-def]
    # min 2 hits: T6 (P4, 2 hits, purity 1, half of P4) counts: atlas-matched, and a
    # duplicate? No: T5 is not atlas-matched, so T6 is P4's only matched track.
    r = _perf(hand_event, "atlas", track_selection=TrackSelection(min_hits=2))
    assert _counts(r.fake_rate) == (2, 8)
    assert _counts(r.duplicate_rate) == (1, 6)
    # min 4 hits: T2, T4, T5 remain; atlas: T5 fake; P2 found via T2 only.
    r = _perf(hand_event, "atlas", track_selection=TrackSelection(min_hits=4))
    assert _counts(r.fake_rate) == (1, 3)
    assert _counts(r.efficiency) == (1, 4)
    # acts with 2-hit tracks: P4 has T5 and T6 matched; T5 (2 of P4, purity 1/2) loses to
    # T6 (2 of P4, purity 1) as the best track, so one duplicate.
    r = _perf(hand_event, "acts", track_selection=TrackSelection(min_hits=2))
    assert _counts(r.duplicate_rate) == (1, 5)


def test_combine_sums_counts(hand_event) -> None:  # type: ignore[no-untyped-def]
    one = _perf(hand_event, "atlas")
    both = TrackingPerformance.combine([one, one])
    assert _counts(both.efficiency) == (6, 8)
    assert _counts(both.fake_rate) == (4, 14)
    assert both.n_events == 2
    assert both.binned["fake_rate_vs_pt"].n.tolist() == [4, 8, 0]
    # Same value, narrower interval.
    assert both.fake_rate.value == one.fake_rate.value
    assert both.fake_rate.high - both.fake_rate.low < one.fake_rate.high - one.fake_rate.low
    other = _perf(hand_event, "acts")
    with pytest.raises(ValueError, match="different settings"):
        TrackingPerformance.combine([one, other])


def test_to_dict_is_json(hand_event) -> None:  # type: ignore[no-untyped-def]
    import json

    d = json.loads(json.dumps(_perf(hand_event, "atlas").to_dict()))
    assert d["efficiency"]["k"] == 3 and d["efficiency"]["n"] == 4
    assert d["fiducial"]["pt_max"] is None  # infinity
    assert d["binned"]["fake_rate_vs_pt"]["value"][2] is None  # empty bin
    assert d["interval"]["method"] == "clopper-pearson"


def test_unassigned_hits_and_shared_hits(hand_event) -> None:  # type: ignore[no-untyped-def]
    event, assignment = hand_event(1)
    # Hit 1 also on a new track 9 with hits 2, 3: a second atlas match of P1 -> duplicate.
    extra = pd.DataFrame({"hit_id": [1, 2, 3], "track_id": [9, 9, 9]})
    r = tracking_performance(
        pd.concat([assignment, extra]), event.truth, event.particles, matching="atlas"
    )
    assert _counts(r.duplicate_rate) == (2, 6)
    with pytest.raises(InputError, match="twice on one track"):
        tracking_performance(
            pd.concat([assignment, assignment.iloc[:1]]), event.truth, event.particles
        )
    with pytest.raises(InputError, match="not in the event"):
        tracking_performance(
            pd.DataFrame({"hit_id": [999], "track_id": [1]}), event.truth, event.particles
        )
    with pytest.raises(ConfigError, match="unknown matching"):
        match_tracks(assignment, event.truth, "loose")  # type: ignore[arg-type]


def test_estimated_track_kinematics_on_a_helix() -> None:
    # A particle with pT = 2 GeV in 2 T bends with R = pT / (0.3 B) = 3.333 m; hits on the
    # circle through the origin at radii 30..1000 mm, z = r * sinh(eta) for eta = 1.2.
    pt, eta, radius = 2.0, 1.2, 2.0 / (0.3 * 2.0) * 1000.0
    r = np.array([30.0, 70, 115, 170, 260, 360, 500, 660, 820, 1000])
    phi = np.arcsin(r / (2 * radius))  # chord angle from the origin
    x, y = r * np.cos(phi), r * np.sin(phi)
    s = 2 * radius * phi  # arc length: z grows linearly with it
    z = s * np.sinh(eta)
    positions = pd.DataFrame({"hit_id": np.arange(1, 11), "x": x, "y": y, "z": z})
    assignment = pd.DataFrame({"hit_id": np.arange(1, 11), "track_id": 5})
    est = estimate_track_kinematics(assignment, positions).iloc[0]
    assert est["pt"] == pytest.approx(pt, rel=1e-6)
    assert est["eta"] == pytest.approx(eta, abs=0.01)
    # Two hits: no circle.
    two = estimate_track_kinematics(assignment.iloc[:2], positions)
    assert np.isnan(two["pt"].iloc[0])


def test_real_event_truth_assignment(trackml_prefix) -> None:  # type: ignore[no-untyped-def]
    from lhcml.io import read_event

    event = read_event(trackml_prefix, parts=["hits", "truth", "particles"])
    truth = event.truth
    pid = truth["particle_id"].to_numpy()
    assignment = pd.DataFrame({"hit_id": truth["hit_id"], "track_id": np.where(pid == 0, -1, pid)})
    for matching in ("atlas", "double_majority", "acts"):
        r = tracking_performance(
            assignment, truth, event.particles, hits=event.hits, matching=matching
        )
        assert r.efficiency.k == r.efficiency.n > 0
        assert r.fake_rate.k == 0 and r.duplicate_rate.k == 0
        # Every particle with >= 3 hits is one selected, matched track.
        counts = pd.Series(pid[pid != 0]).value_counts()
        assert r.fake_rate.n == int((counts >= 3).sum())
