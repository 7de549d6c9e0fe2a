"""Candidates from truth, corruption labels, and the quality cleaning step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lhcml.fitting.candidates import (
    KIND_CODE,
    Candidates,
    Corruption,
    corrupt_candidates,
    from_assignment,
    truth_candidates,
)
from lhcml.fitting.quality import CleaningConfig, assignment_table, clean_candidates
from lhcml.fitting.toys import toy_event


@pytest.fixture(scope="module")
def event():
    return toy_event(60, np.random.default_rng(21), noise_hits=50)


def test_truth_candidates_match_the_particles(event) -> None:
    c = truth_candidates(event)
    hits = event.hits.merge(event.truth, on="hit_id")
    per_particle = hits[hits.particle_id != 0].groupby("particle_id").size()
    expected = per_particle[per_particle >= 7]
    assert len(c) == len(expected)
    assert sorted(c.lengths.tolist()) == sorted(expected.tolist())
    assert c.is_pure.all() and c.hit_label.all()
    # Hits are ordered inside out.
    for i in range(len(c)):
        d = np.linalg.norm(c.xyz[c.offsets[i] : c.offsets[i + 1]], axis=1)
        assert np.all(np.diff(d) > 0)
    assert np.isfinite(c.targets).all()


def test_corruption_labels(event) -> None:
    truth = truth_candidates(event)
    bad = corrupt_candidates(event, truth, np.random.default_rng(0), Corruption(0.5, 0.2, 0.2, 0.3))
    kinds = {k: bad.kind == KIND_CODE[k] for k in ("contaminated", "merged", "dropped", "fake")}
    assert all(m.any() for m in kinds.values())
    assert bad.is_real[kinds["contaminated"]].all()
    assert not bad.is_pure[kinds["contaminated"]].any()
    assert bad.is_pure[kinds["dropped"]].all()
    # Fakes take most hits from random neighbours: nearly all have no majority.
    assert bad.is_real[kinds["fake"]].mean() < 0.2
    # The per-hit labels agree with the majority counts.
    counts = np.bincount(bad.candidate_of_hit, weights=bad.hit_label, minlength=len(bad))
    np.testing.assert_array_equal(counts, bad.n_major)


def _hand_made() -> Candidates:
    """Four candidates of one event: A (particle 1), A' (A with one wrong hit), B
    (particle 2), F (a fake)."""
    hits = {
        "A": ([1, 2, 3, 4, 5, 6], [1] * 6),
        "A2": ([1, 2, 3, 4, 5, 6, 20], [1] * 6 + [3]),
        "B": ([7, 8, 9, 10, 11, 12], [2] * 6),
        "F": ([13, 14, 15, 16, 17], [4, 5, 6, 7, 8]),
    }
    rows = []
    for k, (ids, pids) in enumerate(hits.values()):
        rows += [(k, h, p) for h, p in zip(ids, pids, strict=True)]
    table = pd.DataFrame(rows, columns=["cand", "hit_id", "pid"])
    n = len(hits)
    lengths = table.groupby("cand").size().to_numpy()
    major = np.array([1, 1, 2, 4])
    n_major = np.array([6, 6, 6, 1])
    return Candidates(
        xyz=np.zeros((len(table), 3)),
        volume=np.full(len(table), 8, np.int32),
        layer=np.full(len(table), 2, np.int32),
        module=np.ones(len(table), np.int32),
        hit_id=table["hit_id"].to_numpy(np.int64),
        hit_particle=table["pid"].to_numpy(np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        event_id=np.zeros(n, np.int64),
        particle_id=major,
        kind=np.zeros(n, np.int8),
        n_major=n_major,
        targets=np.zeros((n, 5)),
        pt=np.ones(n),
        eta=np.zeros(n),
        track_id=np.full(n, -1, np.int64),
    )


def test_cleaning_on_hand_made_candidates() -> None:
    c = _hand_made()
    assert c.is_real.tolist() == [True, True, True, False]
    cand_score = np.array([0.9, 0.95, 0.8, 0.2])
    hit_score = np.where(c.hit_label, 0.9, 0.1)
    cleaned, index = clean_candidates(c, cand_score, hit_score, CleaningConfig(min_hits=5))
    # F is dropped (score), A2 loses its wrong hit and then duplicates A: A2 has the
    # higher score, so A goes; B stays.
    assert index.tolist() == [1, 2]
    assert cleaned.lengths.tolist() == [6, 6]
    assert cleaned.is_pure.all()
    table = assignment_table(cleaned)
    assert len(table) == 12 and table.groupby("track_id").size().tolist() == [6, 6]


def test_cleaning_drops_candidates_left_too_short() -> None:
    c = _hand_made()
    hit_score = np.ones(len(c.hit_id))
    hit_score[c.offsets[2] : c.offsets[2] + 2] = 0.0  # B loses two hits -> 4 < 5
    _cleaned, index = clean_candidates(c, np.ones(len(c)), hit_score, CleaningConfig(min_hits=5))
    assert 2 not in index.tolist()


def test_candidates_from_a_track_assignment(event) -> None:
    truth = event.truth
    first = truth[truth.particle_id != 0].drop_duplicates("particle_id").head(3)
    pids = first.particle_id.to_numpy()
    assignment = truth[truth.particle_id.isin(pids)][["hit_id", "particle_id"]].rename(
        columns={"particle_id": "track_id"}
    )
    c = from_assignment(event, assignment)
    assert len(c) == 3 and c.is_pure.all()
    assert sorted(c.particle_id.tolist()) == sorted(pids.tolist())
    assert c.track_id.tolist() == sorted(pids.tolist())


def test_save_and_load(tmp_path, event) -> None:
    c = truth_candidates(event)
    path = c.save(tmp_path / "c.npz")
    back = Candidates.load(path)
    np.testing.assert_array_equal(back.hit_id, c.hit_id)
    np.testing.assert_allclose(back.targets, c.targets)
    sel = c.select(np.array([2, 0]))
    np.testing.assert_array_equal(
        sel.hit_id[: sel.lengths[0]], c.hit_id[c.offsets[2] : c.offsets[3]]
    )


def _finder_output(event) -> tuple[pd.DataFrame, list[int]]:
    """Truth tracks of 10 particles (track id 100 + k), the first contaminated with 3
    hits of the second, plus a fake made of 2 hits each of 3 other particles."""
    from lhcml.fitting.candidates import truth_candidates

    truth = truth_candidates(event)
    pids = truth.particle_id[:16].tolist()
    hp = event.truth.set_index("hit_id")["particle_id"]
    rows = []
    for k, pid in enumerate(pids[:10]):
        hits = hp.index[hp.to_numpy() == pid].to_numpy()
        rows += [(h, 100 + k) for h in hits]
    wrong = hp.index[hp.to_numpy() == pids[1]].to_numpy()[:3]
    rows = [(h, t) for h, t in rows if not (t == 101 and h in set(wrong))]
    rows += [(h, 100) for h in wrong]
    for pid in pids[10:13]:
        rows += [(h, 999) for h in hp.index[hp.to_numpy() == pid].to_numpy()[:2]]
    return pd.DataFrame(rows, columns=["hit_id", "track_id"]), pids


def test_cleaning_a_finders_output_by_hand(event) -> None:
    from lhcml.fitting.quality import clean_assignment, finder_rates
    from lhcml.metrics.tracking import FiducialSelection

    sub, pids = _finder_output(event)
    cands = from_assignment(event, sub)
    assert cands.track_id.tolist() == [*range(100, 110), 999]
    assert (~cands.is_real).sum() == 1  # the fake: no particle holds more than half
    # Perfect scores: the fake goes, the contaminating hits go.
    cand_score = np.where(cands.is_real, 0.9, 0.1)
    hit_score = np.where(cands.hit_label, 0.9, 0.1)
    cleaned = clean_assignment(cands, cand_score, hit_score, CleaningConfig(min_hits=5))
    assert 999 not in set(cleaned.track_id)
    wrong = set(sub.hit_id[(sub.track_id == 100)]) - set(
        event.truth.hit_id[event.truth.particle_id == pids[0]]
    )
    assert len(wrong) == 3 and not wrong & set(cleaned.hit_id[cleaned.track_id == 100])
    # Rates on this event (toy particles: primary pions, 0.5-10 GeV).
    fid = FiducialSelection(pt_min=0.0, abs_eta_max=4.0, min_hits=3)
    ev = {0: event}
    before = finder_rates(ev, {0: sub}, fiducial=fid, min_track_hits=5)
    after = finder_rates(ev, {0: cleaned}, fiducial=fid, min_track_hits=5)
    # The 6-hit fake counts before (>= 5 hits), not after.
    assert before["tracks"] == 11 and before["fake_rate"]["k"] == 1
    assert after["tracks"] == 10 and after["fake_rate"]["k"] == 0
    assert after["efficiency"]["k"] == before["efficiency"]["k"] == 10
    # Cuts that keep everything reproduce the raw rates.
    same = clean_assignment(cands, cand_score, hit_score, CleaningConfig(0.0, 0.0, 0))
    again = finder_rates(ev, {0: same}, fiducial=fid, min_track_hits=5)
    assert again["fake_rate"] == before["fake_rate"]


def test_choose_cleaning_prefers_the_cut_that_removes_the_fake(event) -> None:
    from lhcml.fitting.quality import choose_cleaning

    sub, _ = _finder_output(event)
    cands = from_assignment(event, sub)
    scores = {0: (np.where(cands.is_real, 0.9, 0.05), np.where(cands.hit_label, 0.95, 0.3))}
    from lhcml.metrics.tracking import FiducialSelection

    best, scan = choose_cleaning(
        {0: event}, {0: cands}, scores, grid=(0.0, 0.5), fiducial=FiducialSelection(pt_min=0.0)
    )
    assert len(scan) == 4
    assert best.candidate_threshold == 0.5 or best.hit_threshold == 0.5
    foms = [s["figure_of_merit"] for s in scan]
    assert max(foms) > foms[0]  # (0, 0): no cleaning


def test_cleaning_cuts_beside_a_model(tmp_path) -> None:
    import json

    from lhcml.errors import InputError
    from lhcml.fitting.quality import cleaning_from_model

    assert cleaning_from_model(tmp_path) == CleaningConfig()
    cuts = CleaningConfig(candidate_threshold=0.3, hit_threshold=0.7)
    (tmp_path / "cleaning.json").write_text(json.dumps(cuts.to_dict()))
    assert cleaning_from_model(tmp_path) == cuts
    (tmp_path / "cleaning.json").write_text("{not json")
    with pytest.raises(InputError, match="cleaning"):
        cleaning_from_model(tmp_path)
