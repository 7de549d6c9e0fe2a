"""TrackML weights and score: hand-computed cases and the real event."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lhcml.data.weights import ORDER_MATRIX, hit_order, hit_weights, pt_weight
from lhcml.errors import InputError
from lhcml.metrics.trackml import analyze_tracks, score_event

# ---------------------------------------------------------------- weights by hand


def test_order_matrix_rows_by_hand() -> None:
    # 4 hits: the proposal stretched over 4 points is 10, 16/3, 3, 6 (sum 73/3).
    np.testing.assert_allclose(ORDER_MATRIX[4, :4], np.array([30, 16, 9, 18]) / 73)
    # 5 hits hit the proposal points 0, 2, 4, 6, 8 exactly: 10, 6, 3, 3, 6.
    np.testing.assert_allclose(ORDER_MATRIX[5, :5], np.array([10, 6, 3, 3, 6]) / 28)
    assert not ORDER_MATRIX[:4].any()
    np.testing.assert_allclose(ORDER_MATRIX[4:].sum(axis=1), 1.0)


def test_pt_weight_by_hand() -> None:
    pt = np.array([0.01, 0.05, 0.3, 0.5, 1.75, 3.0, 50.0])
    np.testing.assert_allclose(pt_weight(pt), [0.0, 0.2, 0.2, 0.2, 0.6, 1.0, 1.0])


def _truth(pid_tz: list[tuple[int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "hit_id": np.arange(1, len(pid_tz) + 1),
            "particle_id": [p for p, _ in pid_tz],
            "tz": [z for _, z in pid_tz],
        }
    )


def _particles(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
    """(particle_id, pt, vz) rows; momentum along x."""
    return pd.DataFrame(
        {
            "particle_id": [r[0] for r in rows],
            "vz": [r[2] for r in rows],
            "px": [r[1] for r in rows],
            "py": 0.0,
        }
    )


def test_hit_weights_by_hand() -> None:
    # Particle 1: pt 3 GeV (w_pt 1), 4 hits, vz = 10; |tz - vz| = 30, 5, 20, 12 (shuffled),
    # so the order is hit2, hit4, hit3, hit1. Particle 2: pt 0.3 (w_pt 0.2), 5 hits with
    # vz = -5 in order. Particle 3: 3 hits (zero). Noise: zero. Particle 9 is unknown.
    truth = _truth(
        [
            *[(1, 40.0), (1, 15.0), (1, -10.0), (1, 22.0)],
            *[(2, -4.0), (2, -3.0), (2, 0.0), (2, 10.0), (2, 20.0)],
            *[(3, 1.0), (3, 2.0), (3, 3.0)],
            *[(0, 5.0), (9, 1.0), (9, 2.0), (9, 3.0), (9, 4.0)],
        ]
    )
    particles = _particles([(1, 3.0, 10.0), (2, 0.3, -5.0), (3, 10.0, 0.0)])
    w = hit_weights(truth, particles)
    p1 = np.array([18, 30, 9, 16]) / 73  # hit1 is 4th, hit2 1st, hit3 3rd, hit4 2nd
    p2 = 0.2 * np.array([10, 6, 3, 3, 6]) / 28
    expected = np.r_[p1, p2, 0, 0, 0, 0, 0, 0, 0, 0] / 1.2  # total 1 + 0.2
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert w.sum() == pytest.approx(1.0)


def test_hit_weights_ties_take_truncated_average_rank() -> None:
    # |tz - vz| = 1, 2, 2, 3: pandas ranks 1, 2.5, 2.5, 4 -> ihit 0, 1, 1, 3 (as the
    # original library's rank().astype(int)); the track's weights no longer sum to 1.
    truth = _truth([(1, 1.0), (1, -2.0), (1, 2.0), (1, 3.0)])
    particles = _particles([(1, 5.0, 0.0)])
    w = hit_weights(truth, particles)
    raw = np.array([30, 16, 16, 18]) / 73
    np.testing.assert_allclose(w, raw / raw.sum())


def test_hit_weights_long_track_uses_row_20_and_drops_hits_beyond() -> None:
    truth = _truth([(1, float(z)) for z in range(1, 23)])  # 22 hits
    w = hit_weights(truth, _particles([(1, 5.0, 0.0)]))
    np.testing.assert_allclose(w[:20], ORDER_MATRIX[20, :20], rtol=1e-12)
    assert w[20] == 0.0 and w[21] == 0.0


def test_hit_weights_secondaries_zero() -> None:
    secondary = (1 << 24) | 7  # TrackML generation bits = 1
    truth = _truth([(5, z) for z in (1.0, 2.0, 3.0, 4.0)] + [(secondary, z) for z in (1, 2, 3, 4)])
    particles = _particles([(5, 1.0, 0.0), (secondary, 1.0, 0.0)])
    both = hit_weights(truth, particles)
    np.testing.assert_allclose(both, np.r_[ORDER_MATRIX[4, :4], ORDER_MATRIX[4, :4]] / 2)
    primaries = hit_weights(truth, particles, secondaries_zero=True)
    np.testing.assert_allclose(primaries, np.r_[ORDER_MATRIX[4, :4], np.zeros(4)])
    # The lhcml 'primary' column takes precedence over the id bits.
    flagged = particles.assign(primary=[False, True])
    np.testing.assert_allclose(
        hit_weights(truth, flagged, secondaries_zero=True),
        np.r_[np.zeros(4), ORDER_MATRIX[4, :4]],
    )


def test_hit_weights_all_noise_is_zero_not_nan() -> None:
    w = hit_weights(_truth([(0, 1.0), (0, 2.0)]), _particles([(1, 1.0, 0.0)]))
    np.testing.assert_array_equal(w, [0.0, 0.0])
    assert hit_weights(_truth([]), _particles([])).shape == (0,)


def test_hit_weights_missing_column_is_input_error() -> None:
    with pytest.raises(InputError, match="tz"):
        hit_weights(_truth([(1, 1.0)]).drop(columns="tz"), _particles([(1, 1.0, 0.0)]))


def _reference_order(pid: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Straightforward per-particle ranking with pandas (average ranks, truncated)."""
    df = pd.DataFrame({"p": pid, "d": dist})
    ihit = (df.groupby("p")["d"].rank() - 1).astype(int).to_numpy()
    nhits = df.groupby("p")["d"].transform("size").to_numpy()
    return ihit, nhits


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6).map(float)), min_size=1, max_size=60)
)
def test_hit_order_matches_pandas_rank(rows: list[tuple[int, float]]) -> None:
    pid = np.array([r[0] for r in rows])
    dist = np.array([r[1] for r in rows])  # few distinct values: many ties
    ihit, nhits = hit_order(pid, dist)
    ref_ihit, ref_nhits = _reference_order(pid, dist)
    np.testing.assert_array_equal(ihit, ref_ihit)
    np.testing.assert_array_equal(nhits, ref_nhits)


# ---------------------------------------------------------------- real event


@pytest.fixture(scope="module")
def real(trackml_prefix: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from lhcml.io import read_event

    event = read_event(trackml_prefix, parts=["hits", "truth", "particles"])
    assert event.truth is not None and event.particles is not None
    return event.truth, event.particles


def test_weights_equal_the_real_event_weight_column(real: tuple[pd.DataFrame, ...]) -> None:
    truth, particles = real
    ours = hit_weights(truth, particles, secondaries_zero=True)
    theirs = truth["weight"].to_numpy(np.float64)
    theirs = theirs / theirs.sum()
    assert np.abs(ours - theirs).max() < 1e-6
    # Same zero pattern: noise, short and secondary particles.
    np.testing.assert_array_equal(ours == 0, theirs == 0)
    assert (theirs > 0).sum() == 4300


def test_real_event_without_secondary_rule_differs_only_by_secondaries(
    real: tuple[pd.DataFrame, ...],
) -> None:
    truth, particles = real
    all_w = hit_weights(truth, particles)
    file_w = truth["weight"].to_numpy(np.float64)
    secondary = ((truth["particle_id"].to_numpy() >> 24) & 0xFFF) != 0
    assert all_w[secondary].sum() > 0.05  # secondaries carry weight under the Kaggle rule
    ratio = all_w[file_w > 0] / file_w[file_w > 0]
    # Primaries keep their relative weights: one common normalisation factor.
    np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-4)


def test_truth_as_submission_scores_one_on_real_event(real: tuple[pd.DataFrame, ...]) -> None:
    truth, _ = real
    sub = truth[["hit_id", "particle_id"]].rename(columns={"particle_id": "track_id"})
    assert score_event(truth, sub) == pytest.approx(1.0, abs=1e-12)
    shuffled = sub.sample(frac=1.0, random_state=3)
    assert score_event(truth, shuffled) == pytest.approx(1.0, abs=1e-12)


def test_real_event_everything_in_one_track_scores_zero(real: tuple[pd.DataFrame, ...]) -> None:
    truth, _ = real
    sub = pd.DataFrame({"hit_id": truth["hit_id"], "track_id": 1})
    assert score_event(truth, sub) == 0.0


# ---------------------------------------------------------------- score by hand


@pytest.fixture
def small() -> pd.DataFrame:
    """P1: hits 1-4, P2: hits 5-10, noise 11-12; weights chosen by hand (sum 1)."""
    return pd.DataFrame(
        {
            "hit_id": np.arange(1, 13),
            "particle_id": [1] * 4 + [2] * 6 + [0] * 2,
            "weight": [0.05, 0.10, 0.15, 0.10, 0.20, 0.10, 0.10, 0.05, 0.10, 0.05, 0.0, 0.0],
        }
    )


def _sub(tracks: dict[int, list[int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(h, t) for t, hs in tracks.items() for h in hs], columns=["hit_id", "track_id"]
    )


def test_track_stealing_a_hit(small: pd.DataFrame) -> None:
    # A = P1 hits 1-3 + P2 hit 5 (3/4 pure, 3/4 of P1); B = P1 hit 4 + P2 hits 6-10.
    sub = _sub({10: [1, 2, 3, 5], 20: [4, 6, 7, 8, 9, 10], 30: [11], 31: [12]})
    assert score_event(small, sub) == pytest.approx(0.30 + 0.40)
    tracks = analyze_tracks(small, sub).set_index("track_id")
    assert tracks.loc[10, "major_particle_id"] == 1 and tracks.loc[10, "major_nhits"] == 3
    assert tracks.loc[20, "major_particle_id"] == 2 and tracks.loc[20, "major_nhits"] == 5
    assert tracks.loc[20, "major_particle_nhits"] == 6


def test_exactly_half_scores_zero_because_strict(small: pd.DataFrame) -> None:
    # Track purity exactly 1/2: 2 of P1 + 2 of P2.
    half_purity = _sub({1: [1, 2, 5, 6], 2: [3], 3: [4], 4: [7, 8, 9, 10], 5: [11, 12]})
    # P2: 4 of 6 hits on track 4 (pure) counts: 0.10 + 0.05 + 0.10 + 0.05.
    assert score_event(small, half_purity) == pytest.approx(0.30)
    # Particle fraction exactly 1/2: two pure tracks with 2 of P1's 4 hits each give
    # nothing; P2 (6 of 8 hits of its track, all of P2) counts fully.
    half_particle = _sub({1: [1, 2], 2: [3, 4], 3: list(range(5, 13))})
    assert score_event(small, half_particle) == pytest.approx(0.60)


def test_split_track(small: pd.DataFrame) -> None:
    # P2 split 3 + 3: neither half has more than half of P2 -> P2 gives nothing.
    even = _sub({1: [1, 2, 3, 4], 2: [5, 6, 7], 3: [8, 9, 10], 4: [11, 12]})
    assert score_event(small, even) == pytest.approx(0.40)
    # Split 4 + 2: the 4-hit part counts (hits 5, 6, 7, 9).
    uneven = _sub({1: [1, 2, 3, 4], 2: [5, 6, 7, 9], 3: [8, 10], 4: [11, 12]})
    assert score_event(small, uneven) == pytest.approx(0.40 + 0.20 + 0.10 + 0.10 + 0.10)


def test_noise_hits_in_tracks(small: pd.DataFrame) -> None:
    # 3 P1 + 2 noise: 3/5 pure, 3/4 of P1 -> counts 0.30; 2 P1 + 2 noise: half -> 0.
    sub = _sub({1: [1, 2, 3, 11, 12], 2: [4], 3: list(range(5, 11))})
    assert score_event(small, sub) == pytest.approx(0.30 + 0.60)
    sub = _sub({1: [1, 2, 11, 12], 2: [3, 4], 3: list(range(5, 11))})
    assert score_event(small, sub) == pytest.approx(0.60)
    # A noise-majority track scores nothing (noise weighs zero).
    tracks = analyze_tracks(small, _sub({1: [11, 12, 1], 2: [2, 3, 4], 3: list(range(5, 11))}))
    assert tracks.set_index("track_id").loc[1, "major_particle_id"] == 0


def test_score_normalises_by_total_weight(small: pd.DataFrame) -> None:
    doubled = small.assign(weight=small["weight"] * 2)
    # Track 2 holds 3 of P2's 6 hits (not more than half): only P1 counts.
    sub = _sub({1: [1, 2, 3, 4], 2: [5, 6, 7, 11, 12], 3: [8, 9, 10]})
    assert score_event(doubled, sub) == pytest.approx(0.40)


def test_negative_track_ids(small: pd.DataFrame) -> None:
    # P2's 4 of 6 hits share track -1: a track in the challenge's reading, unassigned in
    # lhcml's.
    sub = _sub({1: [1, 2, 3, 4], -1: [5, 6, 7, 8, 11], 2: [9, 10, 12]})
    assert score_event(small, sub) == pytest.approx(0.40 + 0.45)
    assert score_event(small, sub, negative_unassigned=True) == pytest.approx(0.40)


@pytest.mark.parametrize(
    ("mutate", "column", "message"),
    [
        (lambda s: pd.concat([s, s.iloc[:1]]), "hit_id", "more than once"),
        (lambda s: s.iloc[1:], "hit_id", "1 hit.s. of the event missing"),
        (
            lambda s: pd.concat([s, pd.DataFrame({"hit_id": [99], "track_id": [1]})]),
            "hit_id",
            "not in the event",
        ),
        (
            lambda s: s.assign(track_id=s["track_id"].astype(float).where(s.hit_id != 3)),
            "track_id",
            "NaN",
        ),
        (lambda s: s.assign(track_id=s["track_id"] + 0.5), "track_id", "expected integers"),
        (lambda s: s.assign(track_id="x"), "track_id", "expected integers"),
        (lambda s: s.drop(columns="track_id"), "track_id", "lacks column"),
    ],
)
def test_bad_submissions_are_clear_errors(small, mutate, column, message) -> None:  # type: ignore[no-untyped-def]
    sub = _sub({1: [1, 2, 3, 4], 2: list(range(5, 13))})
    with pytest.raises(InputError, match=message) as info:
        score_event(small, mutate(sub), path="my-submission.csv")
    assert info.value.column == column
    assert "my-submission.csv" in str(info.value)
