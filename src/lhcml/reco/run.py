"""Run a track finder over events on disk (used by ``lhcml reconstruct`` and the demo)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.progress import Progress

from lhcml.data.event import Event
from lhcml.io import list_events, read_event, resolve_prefix
from lhcml.io.submission import submission_path, write_submission
from lhcml.reco.dbscan import HelixDBSCAN, HelixDBSCANConfig


@dataclass(frozen=True)
class ReconstructionResult:
    """One reconstructed event: its submission file, track count and CPU time.

    ``unknown_hits`` counts hits in modules the GNN chain's module map never saw (they
    get no edge, so no track; 0 for DBSCAN); ``n_hits`` all hits of the event.
    """

    event_id: int
    path: Path
    n_tracks: int
    seconds: float
    n_hits: int = 0
    unknown_hits: int = 0

    @property
    def unknown_share(self) -> float:
        """Share of the event's hits in modules the models never saw."""
        return self.unknown_hits / self.n_hits if self.n_hits else 0.0


#: Track finders of :func:`reconstruct_events`.
METHODS: tuple[str, ...] = ("gnn", "dbscan", "maskformer")


def reconstruct_events(
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    method: str = "gnn",
    pt_min: float = 0.8,
    model_dir: str | Path | None = None,
    device: str = "cpu",
    detectors: str | Path | None = None,
    progress: bool = True,
    backend: str = "torch",
    precision: str = "auto",
    jobs: int = 1,
) -> list[ReconstructionResult]:
    """Find tracks in each event; write submissions.

    Args:
        events: directory of events, or one event prefix.
        out_dir: directory for ``event*-submission.csv``.
        event_ids: subset of events (default: all in the directory).
        method: ``gnn`` (the GNN chain, :class:`lhcml.gnn.pipeline.GNNChain`),
            ``dbscan`` (the helix-unrolling baseline) or ``maskformer`` (hit filter +
            MaskFormer, :class:`lhcml.reco.maskformer.infer.MaskFormerFinder`).
        pt_min: DBSCAN: lowest pT hypothesis [GeV].
        model_dir: GNN: model set (default: the shipped one); MaskFormer: its trained
            model directory.
        device: GNN / MaskFormer: ``cpu`` or ``cuda``.
        detectors: GNN: detector file describing the events' module numbering (default:
            a ``detectors.csv(.gz)`` beside the events, as in the TrackML data).
        progress: show a progress bar.
        backend: GNN: ``torch`` or ``onnx`` (ONNX Runtime, :mod:`lhcml.gnn.onnx`).
        precision: GNN: the Interaction Network's CPU products (``auto``, ``float32``,
            ``bfloat16``; :class:`~lhcml.gnn.pipeline.GNNChain`).
        jobs: events reconstructed in parallel, each in its own process with one torch
            thread (throughput on several cores; 1: in this process).

    Raises:
        ConfigError: unknown method, jobs < 1.
    """
    from lhcml.errors import ConfigError

    if method not in METHODS:
        raise ConfigError(f"--method: unknown track finder '{method}'; available: {list(METHODS)}")
    events = Path(events)
    if events.is_dir():
        ids = list(event_ids) if event_ids else list_events(events)
        sources = [(events, eid) for eid in ids]
    else:
        prefix, eid = resolve_prefix(events)
        sources = [(prefix, eid)]
    options = {
        "method": method,
        "pt_min": pt_min,
        "model_dir": model_dir,
        "device": device,
        "detectors": detectors,
        "backend": backend,
        "precision": precision,
    }
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    results = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("reconstructing", total=len(sources))
        if jobs == 1 or len(sources) == 1:
            find = make_finder(**options)
            for source, eid in sources:
                results.append(_reconstruct_one(find, source, eid, Path(out_dir)))
                bar.advance(task)
        else:
            import multiprocessing as mp

            # Event-parallel: one process per job, one torch thread each (spawned: a
            # forked torch / OpenMP runtime can hang). Results come back in event order.
            ctx = mp.get_context("spawn")
            n = min(jobs, len(sources))
            with ctx.Pool(n, initializer=_init_worker, initargs=(options,)) as pool:
                work = [(source, eid, Path(out_dir)) for source, eid in sources]
                for res in pool.imap(_worker_event, work):
                    results.append(res)
                    bar.advance(task)
    return results


def make_finder(
    *,
    method: str,
    pt_min: float,
    model_dir: str | Path | None,
    device: str,
    detectors: str | Path | None,
    backend: str,
    precision: str,
) -> Any:
    """``find(event, source) -> (tracks, unknown hits)`` for one track finder."""
    if method == "gnn":
        from lhcml.gnn.pipeline import GNNChain

        chain = GNNChain(model_dir, device=device, backend=backend, precision=precision)
        return _gnn_finder(chain, detectors)
    if method == "maskformer":
        from lhcml.reco.maskformer.infer import MaskFormerFinder

        mf = MaskFormerFinder(model_dir, device=device)

        def find_mf(event: Event, source: Path) -> tuple[pd.DataFrame, int]:
            return mf.reconstruct(event).tracks, 0

        return find_mf
    finder = HelixDBSCAN(HelixDBSCANConfig(pt_min=pt_min))

    def find(event: Event, source: Path) -> tuple[pd.DataFrame, int]:
        return finder.find_tracks(event.hits), 0

    return find


def _reconstruct_one(find: Any, source: Path, eid: int, out_dir: Path) -> ReconstructionResult:
    """Read one event, find its tracks, write its submission."""
    event = read_event(source, eid if source.is_dir() else None, parts=["hits"])
    start = time.perf_counter()
    tracks, unknown = find(event, source)
    seconds = time.perf_counter() - start
    path = write_submission(tracks, submission_path(out_dir, event.event_id))
    return ReconstructionResult(
        event.event_id,
        path,
        int(tracks["track_id"][tracks["track_id"] >= 0].nunique()),
        seconds,
        len(event.hits),
        unknown,
    )


#: The finder of a worker process of ``reconstruct_events(jobs > 1)``.
_WORKER: dict[str, Any] = {}


def _init_worker(options: dict[str, Any]) -> None:  # pragma: no cover - in a subprocess
    import torch

    torch.set_num_threads(1)
    _WORKER["find"] = make_finder(**options)


def _worker_event(
    item: tuple[Path, int, Path],
) -> ReconstructionResult:  # pragma: no cover - in a subprocess
    return _reconstruct_one(_WORKER["find"], *item)


def _gnn_finder(chain: Any, detectors: str | Path | None) -> Any:
    """``find(event, source)`` running the GNN chain, translating module numbers with the
    given detector file or one found beside the events."""
    from lhcml.gnn.files import find_detectors
    from lhcml.io import read_detectors

    cache: dict[Path, pd.DataFrame] = {}

    def find(event: Event, source: Path) -> tuple[pd.DataFrame, int]:
        from lhcml.data.event import PIXEL_VOLUMES
        from lhcml.errors import InputError

        if not event.hits["volume_id"].isin(PIXEL_VOLUMES).any():
            raise InputError(
                f"event {event.event_id} has no pixel hits (volumes {list(PIXEL_VOLUMES)}): "
                "the GNN chain's graphs and training start in the pixel detector "
                "(TrackML / ACTS Generic layout)",
                path=source,
            )
        det_file = Path(detectors) if detectors is not None else find_detectors(source)
        det = None
        if det_file is not None:
            if det_file not in cache:
                cache[det_file] = read_detectors(det_file)
            det = cache[det_file]
        try:
            result = chain.reconstruct(event, detectors=det)
        except InputError as e:
            if det_file is None or e.path is not None:
                raise
            raise InputError(
                f"event {event.event_id}: {e.message}", path=det_file, column=e.column
            ) from e
        return result.tracks, result.unknown_hits

    return find
