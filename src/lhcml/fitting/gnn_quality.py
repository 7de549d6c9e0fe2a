"""Candidate quality on a track finder's output: cuts on validation events, rates on test.

The study behind the shipped model's ``cleaning.json`` and the ``gnn_quality`` block of
its ``metrics.json`` (``lhcml fit quality``):

1. read each event's finder submission (the GNN chain's ``event*-submission.csv``) and
   turn its tracks into candidates (:func:`lhcml.fitting.candidates.from_assignment`);
2. score every track and hit with TrackFormer's quality heads;
3. on the **validation** events, pick the candidate and hit thresholds that maximise
   efficiency - fake rate - duplicate rate (:func:`lhcml.fitting.quality.choose_cleaning`);
4. on the **test** events, report the rates of the raw tracks (before) and of the
   cleaned tracks (after), ATLAS matching, the GNN chain's fiducial selection
   (pT > 1 GeV, |eta| < 4, primary, no electrons, >= 3 hits) and tracks of >= 5 hits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lhcml.errors import InputError


def _load_split(events_dir: Path, subs_dir: Path, max_events: int | None) -> tuple[dict, dict]:
    from lhcml.io import list_events, read_event
    from lhcml.metrics.evaluate import read_submission

    ids = list_events(events_dir)[:max_events]
    if not ids:
        raise InputError("no events found", path=events_dir)
    events, subs = {}, {}
    for eid in ids:
        path = Path(subs_dir) / f"event{eid:09d}-submission.csv"
        if not path.is_file():
            raise InputError("submission file missing", path=path)
        events[eid] = read_event(events_dir, eid, parts=("hits", "truth", "particles"))
        subs[eid] = read_submission(path)
    return events, subs


def _score(model: Any, feat: Any, loss: str, events: dict, subs: dict) -> tuple[dict, dict, float]:
    from lhcml.fitting.candidates import from_assignment
    from lhcml.fitting.evaluate import predict

    cands, scores, seconds = {}, {}, 0.0
    for eid, ev in events.items():
        c = from_assignment(ev, subs[eid])
        t0 = time.perf_counter()
        pred = predict(model, feat, loss, c)
        seconds += time.perf_counter() - t0
        cands[eid] = c
        scores[eid] = (pred.cand_score, pred.hit_score)
    return cands, scores, seconds


def run(
    model_dir: str | Path,
    val_events: str | Path,
    val_submissions: str | Path,
    test_events: str | Path,
    test_submissions: str | Path,
    *,
    max_events: int | None = None,
    threads: int = 1,
    store: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Choose the cleaning cuts on validation events and report test rates before / after.

    Args:
        model_dir: trained TrackFormer.
        val_events, val_submissions: validation events and the finder's submissions.
        test_events, test_submissions: held-out events and submissions.
        max_events: at most this many events per split.
        threads: torch CPU threads.
        store: write the cuts to ``model_dir/cleaning.json`` (what ``lhcml fit infer
            --clean`` applies) and the result into ``model_dir/metrics.json``
            (``gnn_quality``).
        progress: optional callable ``(message)``.

    Returns:
        ``cleaning`` (chosen cuts), ``val`` and ``test`` (``before``, ``after`` and
        ``after_default_cuts`` rates), ``scan`` (the validation grid), timing.

    Raises:
        InputError: missing events or submissions.
    """
    import json

    import torch

    from lhcml.fitting.checkpoint import load_model
    from lhcml.fitting.quality import (
        CleaningConfig,
        choose_cleaning,
        clean_assignment,
        finder_rates,
    )
    from lhcml.io import write_json_atomic

    say = progress or (lambda _m: None)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    model, feat, loss = load_model(model_dir)
    out: dict[str, Any] = {
        "matching": "atlas",
        "min_track_hits": 5,
        "fiducial": "lhcml.gnn.features.DEFAULT_TARGET (pT > 1 GeV, |eta| < 4, primary, "
        "no electrons, >= 3 hits)",
        "figure_of_merit": "efficiency - fake rate - duplicate rate (validation events)",
    }
    say("validation: scoring the finder's tracks")
    v_events, v_subs = _load_split(Path(val_events), Path(val_submissions), max_events)
    v_cands, v_scores, _ = _score(model, feat, loss, v_events, v_subs)
    say("validation: scanning the cuts")
    best, scan = choose_cleaning(v_events, v_cands, v_scores)
    out["cleaning"] = best.to_dict()
    out["val"] = {
        "events": sorted(v_events),
        "before": finder_rates(v_events, v_subs),
        "after": next(s["rates"] for s in scan if s["cleaning"] == best.to_dict()),
    }
    out["scan"] = [
        {
            **s["cleaning"],
            "efficiency": s["rates"]["efficiency"]["value"],
            "fake_rate": s["rates"]["fake_rate"]["value"],
            "duplicate_rate": s["rates"]["duplicate_rate"]["value"],
            "figure_of_merit": s["figure_of_merit"],
        }
        for s in scan
    ]
    say("test: before / after")
    t_events, t_subs = _load_split(Path(test_events), Path(test_submissions), max_events)
    t_cands, t_scores, seconds = _score(model, feat, loss, t_events, t_subs)
    n_tracks = sum(len(c) for c in t_cands.values())
    out["test"] = {
        "events": sorted(t_events),
        "before": finder_rates(t_events, t_subs),
        "after": finder_rates(
            t_events, {e: clean_assignment(t_cands[e], *t_scores[e], best) for e in t_events}
        ),
        "after_default_cuts": finder_rates(
            t_events,
            {e: clean_assignment(t_cands[e], *t_scores[e], CleaningConfig()) for e in t_events},
        ),
        "scored_tracks": n_tracks,
        "scoring_tracks_per_second": n_tracks / seconds if seconds else None,
        "threads": threads,
    }
    torch.set_num_threads(old)
    if store:
        model_dir = Path(model_dir)
        write_json_atomic(model_dir / "cleaning.json", best.to_dict())
        metrics_path = model_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        metrics["gnn_quality"] = {k: v for k, v in out.items() if k != "scan"}
        write_json_atomic(metrics_path, metrics)
    return out
