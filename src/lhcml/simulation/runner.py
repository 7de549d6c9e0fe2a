"""Running the simulation: one process, a local process pool, or a dask cluster.

Every event depends only on ``(config, event_id)``, so the same events come out
whatever the split. Work is cut into *chunks* of consecutive event ids (resume can
leave holes); one chunk is one ACTS sequencer run inside a worker that keeps its
detector and Pythia instances for all its chunks.

Parallel modes:

- ``jobs > 1``: a :mod:`multiprocessing` pool (``spawn``; each worker builds the
  detector once, ~1 s), chunks handed out dynamically; progress is reported per event
  through a queue. As with any ``spawn`` pool, a script calling
  :func:`simulate_events` with ``jobs > 1`` needs the ``if __name__ == "__main__":``
  guard.
- ``dask_scheduler="tcp://host:8786"``: chunks are submitted to an existing
  ``dask.distributed`` cluster with :meth:`Client.map`; each worker process caches its
  :class:`Simulator` (per configuration) between chunks. Workers must see ``out_dir``
  (shared file system) and have lhcml installed; start them with one thread each
  (``dask worker tcp://host:8786 --nthreads 1 --nworkers N``) because Pythia and ACTS
  are run single-threaded per process. Progress advances per finished chunk.

Each event is written as soon as it is simulated (atomically, meta file last), so an
interrupted run keeps every finished event and a rerun skips them
(:func:`lhcml.io.event_complete`).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lhcml._pool import collect_ready, drain
from lhcml.data.event import Event
from lhcml.errors import ConfigError
from lhcml.simulation.config import SimulationConfig

Format = Literal["parquet", "csv"]


@dataclass
class SimulationSummary:
    """What a :func:`simulate_events` call did.

    Attributes:
        written: event ids simulated and written by this call.
        skipped: event ids already complete on disk (resume).
        seconds: wall-clock time of the call.
        stage_seconds: seconds per stage (generation, fatras, digitization, conversion,
            writing) summed over the written events (over all workers).
    """

    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def add_timings(self, timings: dict[str, float]) -> None:
        for k, v in timings.items():
            self.stage_seconds[k] = self.stage_seconds.get(k, 0.0) + v


class Simulator:
    """Generator + detector of one process, reused for many events.

    Args:
        config: the (validated) simulation configuration.

    Example:
        >>> sim = Simulator(SimulationConfig(process="gun"))  # doctest: +SKIP
        >>> events = list(sim.events(range(3)))  # doctest: +SKIP
    """

    def __init__(self, config: SimulationConfig) -> None:
        from lhcml.simulation.detector import DetectorSimulation
        from lhcml.simulation.pythia import EventGenerator

        self.config = config.validate()
        self.generator = EventGenerator(self.config)
        self.detector = DetectorSimulation(self.config)

    def run(
        self,
        event_ids: Iterable[int],
        consume: Callable[[Event, dict[str, float]], None],
    ) -> None:
        """Simulate ``event_ids``; call ``consume(event, stage_seconds)`` for each."""
        from lhcml.simulation.assemble import assemble_event

        needs_modules = (
            self.config.detector.noise_fraction > 0 or self.config.detector.noise_count > 0
        )
        modules = self.detector.modules if needs_modules else None

        def on_raw(raw: Any) -> None:
            t0 = time.perf_counter()
            event = assemble_event(raw, self.config, modules)
            event.meta.update(self._meta(raw.gen.vertices))
            timings = dict(raw.timings)
            timings["conversion"] += time.perf_counter() - t0
            consume(event, timings)

        for first, n in consecutive_runs(sorted(set(event_ids))):
            self.detector.run(first, n, self.generator.generate, on_raw)

    def events(self, event_ids: Iterable[int]) -> list[Event]:
        """Simulate ``event_ids`` and return the events (kept in memory)."""
        out: list[Event] = []
        self.run(event_ids, lambda ev, _t: out.append(ev))
        return out

    def _meta(self, vertices: Any) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "source": "lhcml simulate",
            "generator": "particle gun" if self.config.process == "gun" else "pythia8",
            "process": self.config.process,
            "mu": self.config.mu,
            "n_pileup": len(vertices) - 1,
            # Primary vertex (x, y, z) [mm] of each sub-event (0: hard scatter).
            "primary_vertices": [[round(float(c), 6) for c in v[:3]] for v in vertices],
            "seed": self.config.seed,
            "detector": "ACTS Generic (TrackML layout), Fatras, smearing digitization",
            "versions": {p: version(p) for p in ("pyacts", "pythia8mc")},
            "config": self.config.to_dict(),
        }


def consecutive_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """``[(first, count), ...]`` of the runs of consecutive ids in sorted ``ids``."""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def make_chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    """Cut sorted ids into chunks of at most ``size`` (a chunk may have holes)."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def _write(event: Event, out_dir: Path, fmt: Format) -> float:
    from lhcml.io import write_event

    t0 = time.perf_counter()
    write_event(event, out_dir, fmt)
    return time.perf_counter() - t0


# --- per-process worker state (multiprocessing and dask) -----------------------------

_WORKER: dict[str, Any] = {}


def _worker_simulator(config_dict: dict[str, Any]) -> Simulator:
    key = repr(sorted(config_dict.items()))
    if _WORKER.get("key") != key:
        _WORKER["sim"] = Simulator(SimulationConfig.from_dict(config_dict))
        _WORKER["key"] = key
    return _WORKER["sim"]


def _pool_init(config_dict: dict[str, Any], progress: Any) -> None:
    _WORKER["progress"] = progress
    try:
        _worker_simulator(config_dict)
    except Exception as e:  # noqa: BLE001  (re-raised in simulate_chunk)
        # An initializer that raises makes the pool respawn workers forever; report
        # the error from the first chunk instead.
        _WORKER["init_error"] = e


def simulate_chunk(
    config_dict: dict[str, Any], event_ids: list[int], out_dir: str, fmt: Format
) -> tuple[list[int], dict[str, float]]:
    """Simulate and write ``event_ids`` in this process (the unit of parallel work).

    Returns:
        The event ids written and the summed per-stage seconds.
    """
    if "init_error" in _WORKER:
        raise _WORKER["init_error"]
    sim = _worker_simulator(config_dict)
    progress = _WORKER.get("progress")
    done: list[int] = []
    totals: dict[str, float] = {}

    def consume(event: Event, timings: dict[str, float]) -> None:
        timings = {**timings, "writing": _write(event, Path(out_dir), fmt)}
        for k, v in timings.items():
            totals[k] = totals.get(k, 0.0) + v
        done.append(event.event_id)
        if progress is not None:
            progress.put(event.event_id)

    sim.run(event_ids, consume)
    return done, totals


def simulate_events(
    config: SimulationConfig,
    out_dir: str | Path,
    *,
    events: int = 1,
    first_event: int = 0,
    fmt: Format = "parquet",
    jobs: int = 1,
    dask_scheduler: str | None = None,
    chunk_size: int | None = None,
    on_event: Callable[[int], None] | None = None,
    on_skipped: Callable[[list[int]], None] | None = None,
) -> SimulationSummary:
    """Simulate events ``first_event .. first_event + events - 1`` into ``out_dir``.

    Events already complete in ``out_dir`` are skipped (resume).

    Args:
        config: simulation configuration (validated here).
        out_dir: output directory (created if needed).
        events: number of events.
        first_event: first event id.
        fmt: ``parquet`` or ``csv`` (TrackML CSV).
        jobs: worker processes on this machine (1: in this process).
        dask_scheduler: address of a ``dask.distributed`` scheduler; overrides ``jobs``.
        chunk_size: events per unit of work (default: balances the workers).
        on_event: called with each event id once it is written (progress).
        on_skipped: called once with the ids skipped because they were complete.

    Returns:
        A :class:`SimulationSummary`.
    """
    from lhcml.io import event_complete

    config.validate()
    if events < 0:
        raise ConfigError(f"--events: must be >= 0, got {events}")
    if first_event < 0:
        raise ConfigError(f"--first-event: must be >= 0, got {first_event}")
    if jobs < 1:
        raise ConfigError(f"--jobs: must be >= 1, got {jobs}")
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format: unknown format '{fmt}'; choose parquet or csv")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = SimulationSummary()
    wanted = range(first_event, first_event + events)
    summary.skipped = [e for e in wanted if event_complete(out, e)]
    todo = sorted(set(wanted) - set(summary.skipped))
    if on_skipped is not None:
        on_skipped(summary.skipped)
    notify = on_event or (lambda _e: None)

    if not todo:
        pass
    elif dask_scheduler:
        _run_dask(config, todo, out, fmt, dask_scheduler, chunk_size, summary, notify)
    elif jobs == 1 or len(todo) == 1:
        sim = Simulator(config)

        def consume(event: Event, timings: dict[str, float]) -> None:
            timings = {**timings, "writing": _write(event, out, fmt)}
            summary.add_timings(timings)
            summary.written.append(event.event_id)
            notify(event.event_id)

        sim.run(todo, consume)
    else:
        _run_pool(config, todo, out, fmt, jobs, chunk_size, summary, notify)
    summary.written.sort()
    summary.seconds = time.perf_counter() - t0
    return summary


def _default_chunk(n: int, workers: int) -> int:
    # Small chunks balance the load; a chunk costs only a sequencer set-up (~ms).
    return max(1, min(10, n // (4 * workers) or 1))


def _run_pool(
    config: SimulationConfig,
    todo: list[int],
    out: Path,
    fmt: Format,
    jobs: int,
    chunk_size: int | None,
    summary: SimulationSummary,
    notify: Callable[[int], None],
) -> None:
    ctx = mp.get_context("spawn")  # fork after importing ACTS/Pythia is not safe
    jobs = min(jobs, len(todo))
    chunks = make_chunks(todo, chunk_size or _default_chunk(len(todo), jobs))
    cfg = config.to_dict()
    with ctx.Manager() as manager:
        progress = manager.Queue()
        with ctx.Pool(jobs, initializer=_pool_init, initargs=(cfg, progress)) as pool:
            pending = [pool.apply_async(simulate_chunk, (cfg, c, str(out), fmt)) for c in chunks]

            def add(result: tuple[list[int], dict[str, float]]) -> None:
                done, totals = result
                summary.written.extend(done)
                summary.add_timings(totals)

            while pending:
                drain(progress, notify, timeout=0.2)
                pending = collect_ready(pending, add)
            drain(progress, notify, timeout=0.0)


def _run_dask(
    config: SimulationConfig,
    todo: list[int],
    out: Path,
    fmt: Format,
    address: str,
    chunk_size: int | None,
    summary: SimulationSummary,
    notify: Callable[[int], None],
) -> None:
    from distributed import Client, as_completed

    with Client(address) as client:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        chunks = make_chunks(todo, chunk_size or _default_chunk(len(todo), workers))
        cfg = config.to_dict()
        futures = client.map(
            simulate_chunk,
            [cfg] * len(chunks),
            chunks,
            [str(out.resolve())] * len(chunks),
            [fmt] * len(chunks),
            pure=False,
        )
        for fut in as_completed(futures):
            done, totals = fut.result()
            summary.written.extend(done)
            summary.add_timings(totals)
            for e in done:
                notify(e)
