"""Writing jet samples: Parquet chunks, a process pool, resuming.

Layout of a sample directory (one process per directory)::

    OUT/_generation.json           configuration, versions (written first; the "_"
                                   makes Parquet dataset readers skip it)
    OUT/<process>-000000.parquet   chunk 0: the jets of events 0 .. E-1
    OUT/<process>-000001.parquet   chunk 1: events E .. 2E-1, ...

with ``E = events_per_chunk``. Each chunk is written atomically (temporary file +
rename), so a chunk file that exists is complete; rerunning the same command skips
existing chunks (resume). A chunk depends only on ``(config, chunk index)``.

Columns, one row per jet (the layout of weaver-core / Particle Transformer's JetClass
files; ``part_*`` are lists, one entry per constituent, highest pT first):

=========================== ===============================================================
``part_px/py/pz/energy``    constituent four-momentum [GeV] (float32)
``part_deta``, ``part_dphi``  eta and phi relative to the jet axis (float32)
``part_charge``             charge [e] (float32)
``part_pid``                PDG id of the reconstructed candidate (int32; see
                            :class:`~lhcml.jets.config.DetectorResponse`)
``part_is{ChargedHadron,NeutralHadron,Photon,Electron,Muon}``  type flags (float32 0/1)
``jet_pt/eta/phi/energy``   jet kinematics (anti-kT, all constituents) (float32)
``jet_mass``, ``jet_sdmass``  plain and soft-drop mass [GeV] (float32)
``jet_nparticles``          number of constituents before truncation (int32)
``jet_tau1/2/3``            N-subjettiness (float32)
``aux_truth_pt``            pT of the matched top / W / dark quark (0 for QCD) (float32)
``event_id``                event number in the sample (int64)
``label``                   0 qcd, 1 top, 2 w, 3 dark (int32)
``label_{qcd,top,w,dark}``  one-hot labels (int8)
=========================== ===============================================================
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lhcml._pool import collect_ready, drain
from lhcml.errors import ConfigError, InputError
from lhcml.io.atomic import write_atomic, write_json_atomic
from lhcml.jets.config import GenerationConfig

META_FILE = "_generation.json"  # "_": Parquet dataset readers skip it
_PARTICLE_TYPES = {
    "part_pid": "int32",
}
_JET_TYPES = {
    "jet_nparticles": "int32",
    "event_id": "int64",
    "label": "int32",
    "label_qcd": "int8",
    "label_top": "int8",
    "label_w": "int8",
    "label_dark": "int8",
}


def chunk_path(out_dir: str | Path, process: str, chunk: int) -> Path:
    """Path of chunk ``chunk`` of a ``process`` sample in ``out_dir``."""
    return Path(out_dir) / f"{process}-{chunk:06d}.parquet"


def columns_to_table(columns: dict[str, Any], meta: dict[str, Any] | None = None) -> Any:
    """A ``pyarrow.Table`` from :meth:`JetGenerator.jets` columns (list columns built
    from offsets, no copies of the flat values beyond the dtype cast)."""
    import pyarrow as pa

    particles, counts = columns["_particles"]
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    arrays, fields = [], []
    off = pa.array(offsets, type=pa.int32())
    # Non-nullable fields (no missing values exist): readers get plain lists of floats.
    for name, values in particles.items():
        flat = pa.array(values.astype(_PARTICLE_TYPES.get(name, "float32")))
        list_type = pa.list_(pa.field("element", flat.type, nullable=False))
        arrays.append(pa.ListArray.from_arrays(off, flat, type=list_type))
        fields.append(pa.field(name, list_type, nullable=False))
    for name, values in columns.items():
        if name == "_particles":
            continue
        arr = pa.array(np.asarray(values).astype(_JET_TYPES.get(name, "float32")))
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, nullable=False))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    if meta is not None:
        table = table.replace_schema_metadata({b"lhcml": json.dumps(meta).encode()})
    return table


def write_chunk(columns: dict[str, Any], path: str | Path, meta: dict[str, Any]) -> Path:
    """Write one chunk atomically as Parquet (zstd)."""
    import pyarrow.parquet as pq

    table = columns_to_table(columns, meta)
    return write_atomic(path, lambda p: pq.write_table(table, p, compression="zstd"))


def chunk_info(path: str | Path) -> dict[str, Any]:
    """The ``lhcml`` metadata of a chunk (``n_jets``, ``n_events``, ...), read cheaply.

    Raises:
        InputError: unreadable file or no lhcml metadata.
    """
    import pyarrow.parquet as pq

    try:
        md = pq.read_schema(path).metadata or {}
    except Exception as e:
        raise InputError(f"not a readable Parquet file: {e}", path=path) from e
    if b"lhcml" not in md:
        raise InputError("no lhcml metadata (not written by lhcml jets generate)", path=path)
    return json.loads(md[b"lhcml"])


@dataclass
class GenerationSummary:
    """What a :func:`generate_jets` call did.

    Attributes:
        written: chunk indices generated by this call.
        skipped: chunk indices already on disk (resume).
        jets: jets in all chunks of the sample (written + skipped).
        events: events in all chunks.
        seconds: wall time of the call.
    """

    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    jets: int = 0
    events: int = 0
    seconds: float = 0.0


# --- worker side ----------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_generator(config_dict: dict[str, Any]) -> Any:
    from lhcml.jets.generation import JetGenerator

    key = json.dumps(config_dict, sort_keys=True)
    if _WORKER.get("key") != key:
        _WORKER["gen"] = JetGenerator(GenerationConfig.from_dict(config_dict))
        _WORKER["key"] = key
    return _WORKER["gen"]


def _pool_init(config_dict: dict[str, Any], progress: Any) -> None:
    _WORKER["progress"] = progress
    try:
        _worker_generator(config_dict).pythia  # noqa: B018  (initialise Pythia once)
    except Exception as e:  # noqa: BLE001  (re-raised from the first chunk)
        # An initializer that raises makes the pool respawn workers forever.
        _WORKER["init_error"] = e


def run_chunk(
    gen: Any, chunk: int, out_dir: str | Path, on_event: Callable[[int], None] | None = None
) -> tuple[int, int, int]:
    """Generate and write chunk ``chunk`` with the :class:`JetGenerator` ``gen``.

    Returns:
        ``(chunk, n_jets, n_events)``.
    """
    cfg: GenerationConfig = gen.config
    first = chunk * cfg.events_per_chunk
    ids = list(range(first, first + cfg.events_per_chunk))
    columns = gen.jets(ids, on_event=on_event)
    n_jets = len(columns["label"])
    meta = {
        "process": cfg.process,
        "chunk": chunk,
        "first_event": first,
        "n_events": len(ids),
        "n_jets": n_jets,
        "config": cfg.to_dict(),
    }
    write_chunk(columns, chunk_path(out_dir, cfg.process, chunk), meta)
    return chunk, n_jets, len(ids)


def generate_chunk(config_dict: dict[str, Any], chunk: int, out_dir: str) -> tuple[int, int, int]:
    """Pool entry point: :func:`run_chunk` with this worker's generator and progress."""
    if "init_error" in _WORKER:
        raise _WORKER["init_error"]
    progress = _WORKER.get("progress")
    return run_chunk(
        _worker_generator(config_dict),
        chunk,
        out_dir,
        on_event=progress.put if progress is not None else None,
    )


# --- driver ---------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("lhcml", "pythia8mc", "fastjet", "awkward", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _check_meta(out: Path, config: GenerationConfig) -> None:
    meta_path = out / META_FILE
    cfg = config.to_dict()
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"unreadable generation metadata: {e}", path=meta_path) from e
        if old != json.loads(json.dumps(cfg)):
            changed = sorted(k for k in set(old) | set(cfg) if old.get(k) != cfg.get(k))
            raise ConfigError(
                f"--out: {out} holds a sample generated with another configuration "
                f"(differs in: {', '.join(changed)}); use a new output directory"
            )
    else:
        write_json_atomic(
            meta_path,
            {"source": "lhcml jets generate", "config": cfg, "versions": _versions()},
        )


def generate_jets(
    config: GenerationConfig,
    out_dir: str | Path,
    *,
    events: int | None = None,
    jets: int | None = None,
    jobs: int = 1,
    on_event: Callable[[int], None] | None = None,
    on_chunk: Callable[[int, int, int], None] | None = None,
) -> GenerationSummary:
    """Generate a jet sample into ``out_dir`` (resumable).

    Exactly one of ``events`` and ``jets`` is given: ``events`` generates chunks
    ``0 .. ceil(events / events_per_chunk) - 1`` (rounded up to whole chunks);
    ``jets`` generates chunks in order until the sample holds at least that many jets.

    Args:
        config: the sample configuration (validated here).
        out_dir: output directory (created; must not hold another configuration).
        events: number of events (rounded up to whole chunks).
        jets: number of jets wanted.
        jobs: worker processes (1: this process). With ``jobs > 1`` a script needs the
            ``if __name__ == "__main__":`` guard (``spawn`` start method).
        on_event: called with each event id once generated (progress).
        on_chunk: called with ``(chunk, n_jets, n_events)`` per chunk written or found.

    Returns:
        A :class:`GenerationSummary`.

    Raises:
        ConfigError: bad options, or ``out_dir`` holds another configuration.
    """
    config.validate()
    if (events is None) == (jets is None):
        raise ConfigError("--events/--jets: give exactly one of them")
    if events is not None and events < 1:
        raise ConfigError(f"--events: must be >= 1, got {events}")
    if jets is not None and jets < 1:
        raise ConfigError(f"--jets: must be >= 1, got {jets}")
    if jobs < 1:
        raise ConfigError(f"--jobs: must be >= 1, got {jobs}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_meta(out, config)
    t0 = time.perf_counter()
    summary = GenerationSummary()
    notify_chunk = on_chunk or (lambda _c, _j, _e: None)
    per = config.events_per_chunk
    n_chunks = None if events is None else -(-events // per)

    def record(chunk: int, n_jets: int, n_events: int, written: bool) -> None:
        (summary.written if written else summary.skipped).append(chunk)
        summary.jets += n_jets
        summary.events += n_events
        notify_chunk(chunk, n_jets, n_events)

    def enough() -> bool:
        return jets is not None and summary.jets >= jets

    # Chunks already on disk, in order (in --jets mode only up to the first hole).
    todo: list[int] = []
    c = 0
    while n_chunks is None or c < n_chunks:
        path = chunk_path(out, config.process, c)
        if path.is_file():
            info = chunk_info(path)
            record(c, int(info["n_jets"]), int(info["n_events"]), written=False)
        elif n_chunks is not None:
            todo.append(c)
        else:
            break
        c += 1
    next_chunk = c  # --jets mode: where new chunks start

    def schedule() -> int | None:
        nonlocal next_chunk
        if n_chunks is not None:
            return todo.pop(0) if todo else None
        if enough():
            return None
        k = next_chunk
        while chunk_path(out, config.process, k).is_file():  # (written by a rerun)
            k += 1
        next_chunk = k + 1
        return k

    cfg = config.to_dict()
    if jobs == 1:
        from lhcml.jets.generation import JetGenerator

        gen = None
        while (k := schedule()) is not None:
            gen = gen or JetGenerator(config)
            record(*run_chunk(gen, k, out, on_event), written=True)
    else:
        _run_pool(cfg, str(out), jobs, schedule, record, on_event)
    summary.written.sort()
    summary.skipped.sort()
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_pool(
    cfg: dict[str, Any],
    out: str,
    jobs: int,
    schedule: Callable[[], int | None],
    record: Callable[[int, int, int, bool], None],
    on_event: Callable[[int], None] | None,
) -> None:
    ctx = mp.get_context("spawn")  # fork after importing Pythia / torch is not safe
    notify = on_event or (lambda _e: None)
    with ctx.Manager() as manager:
        progress = manager.Queue()
        with ctx.Pool(jobs, initializer=_pool_init, initargs=(cfg, progress)) as pool:
            pending = []
            # Keep one chunk per worker plus one queued: in --jets mode we stop
            # scheduling as soon as the jets written reach the target.
            while True:
                while len(pending) < jobs + 1 and (k := schedule()) is not None:
                    pending.append(pool.apply_async(generate_chunk, (cfg, k, out)))
                if not pending:
                    break
                drain(progress, notify, timeout=0.2)
                pending = collect_ready(pending, lambda r: record(*r, written=True))
            drain(progress, notify, timeout=0.0)


def list_chunks(paths: str | Path | list[str | Path]) -> list[Path]:
    """Parquet files of samples: directories (their ``*.parquet``), files or globs.

    Raises:
        InputError: a path that matches nothing.
    """
    import glob

    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.parquet"))
        elif p.is_file():
            found = [p]
        else:
            # Shell-style patterns, absolute or relative (Path.glob takes relative only).
            found = sorted(Path(f) for f in glob.glob(str(item)))  # noqa: PTH207
        if not found:
            raise InputError("no Parquet jet files found", path=p)
        files.extend(found)
    return files
