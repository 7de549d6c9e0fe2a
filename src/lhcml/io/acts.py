"""Reader for the CSV output of the ACTS examples framework (pyacts 48.1).

Files of one event, as the ACTS writers name them (``.csv``; ``.csv.gz`` also read):

============================================  ===========================================
``event000000001-measurements.csv``           ``CsvMeasurementWriter``: ``measurement_id,
                                              geometry_id, local_key, local0, local1, phi,
                                              theta, time, var_local0, var_local1, var_phi,
                                              var_theta, var_time, global_x, global_y,
                                              global_z``
``event000000001-measurement-simhit-map.csv`` ``CsvMeasurementWriter``: ``measurement_id,
                                              hit_id`` (``hit_id`` = 0-based row of the sim
                                              hit in ``-hits.csv``)
``event000000001-cells.csv``                  ``CsvMeasurementWriter`` (clusters):
                                              ``geometry_id, measurement_id, channel0,
                                              channel1, timestamp, value`` (header only
                                              after smearing digitization)
``event000000001-hits.csv``                   ``CsvSimHitWriter`` (**sim** hits, not
                                              measurements): ``particle_id_pv,
                                              particle_id_sv, particle_id_part,
                                              particle_id_gen, particle_id_subpart,
                                              geometry_id, tx, ty, tz, tt, tpx, tpy, tpz,
                                              te, deltapx, deltapy, deltapz, deltae, index``
``event000000001-particles_simulated.csv``    ``CsvParticleWriter`` (Fatras output, with
``event000000001-particles.csv``              secondaries; the generator's list):
                                              ``particle_id_pv, particle_id_sv,
                                              particle_id_part, particle_id_gen,
                                              particle_id_subpart, particle_type, process,
                                              vx, vy, vz, vt, px, py, pz, m, q``
``event000000001-spacepoint.csv``             ``CsvSpacePointWriter``: ``measurement_id_1,
                                              measurement_id_2, geometry_id_1,
                                              geometry_id_2, x, y, z, t, var_r, var_z``
============================================  ===========================================

Units are ACTS' output units: mm, GeV, ns, e - lhcml's own.

Mapping to the lhcml tables
---------------------------
- hits: one per measurement; ``hit_id = measurement_id + 1``; ``x, y, z`` the measured
  global position ACTS writes (``global_x/y/z``, no geometry needed);
  ``volume_id, layer_id, module_id`` decoded from ``geometry_id``
  (:func:`decode_geometry_id`; module = ACTS "sensitive" field).
- truth: the sim hit each measurement came from (the one with the largest energy
  deposit when a cluster merged several); true position and momentum of that sim hit;
  ``weight`` from :func:`lhcml.data.weights.hit_weights` (0 where unavailable).
- particles: ``particles_simulated`` (Fatras secondaries included), plus generator
  particles (``particles``) Fatras did not return; id from the barcode
  (:func:`acts_particle_id`), ``primary`` = secondary vertex and generation both 0,
  ``nhits`` counted from the measurements, ``subevent`` = primary vertex - 1.
- spacepoints: ``hit_id`` from ``measurement_id_1``; strip space points' second
  measurement goes to an extra ``hit_id_2`` column (0 for pixel space points).
- cells: ``hit_id`` from ``measurement_id``, ``ch0, ch1, value`` from
  ``channel0, channel1, value``; ``None`` when the file has no rows (smearing
  digitization), an empty table if cells were asked for explicitly.

Particle ids
------------
ACTS 48 barcodes have five fields (16 + 16 + 32 + 8 + 32 bits), more than an int64
holds, so the reader packs them into the TrackML-style layout lhcml uses everywhere
(shared with :mod:`lhcml.simulation`)::

    bits 52-62  vertex primary      (11 bits, 1..2047)
    bits 36-51  particle            (16 bits)
    bits 24-35  generation          (12 bits; TrackML's generation field)
    bits 12-23  sub-particle        (12 bits)
    bits  0-11  vertex secondary    (12 bits)

Ids stay positive, and :func:`acts_particle_id` stores ACTS' generation **plus one for
particles from a secondary vertex** in the generation field, so that
``(particle_id >> 24) & 0xFFF != 0`` holds exactly for the non-primary particles, as in
the TrackML files (the mapping stays one-to-one because the secondary vertex keeps its
own field). A field that does not fit raises :class:`~lhcml.errors.InputError`.

ACTS Parquet: pyacts 48.1's ``ParquetWriter`` writes ColliderML-style shards (one row
per event, list columns, particles / sim hits / tracks, no measurement table); it is not
a per-event table layout and is not read here.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from lhcml.data.event import TABLES, Event
from lhcml.data.validate import conform_table, validate_event
from lhcml.errors import InputError
from lhcml.io.common import only_event, read_failure

# --- geometry identifiers ---------------------------------------------------------

#: ACTS ``GeometryIdentifier`` fields: (shift, bits), from the most significant.
GEOMETRY_FIELDS: dict[str, tuple[int, int]] = {
    "volume": (56, 8),
    "boundary": (48, 8),
    "layer": (36, 12),
    "approach": (28, 8),
    "sensitive": (8, 20),
    "extra": (0, 8),
}


def decode_geometry_id(geometry_id: np.ndarray | Iterable[int]) -> dict[str, np.ndarray]:
    """Split ACTS geometry identifiers into their fields (vectorised).

    Args:
        geometry_id: 64-bit ACTS ``GeometryIdentifier`` values (any integer dtype;
            read as unsigned).

    Returns:
        ``{"volume", "boundary", "layer", "approach", "sensitive", "extra"}`` -> int32
        arrays. For a sensitive surface, (volume, layer, sensitive) is TrackML's
        (volume_id, layer_id, module_id).
    """
    gid = np.asarray(geometry_id).astype(np.uint64, copy=False)
    return {
        name: ((gid >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int32)
        for name, (shift, bits) in GEOMETRY_FIELDS.items()
    }


def encode_geometry_id(
    volume: np.ndarray | int,
    layer: np.ndarray | int,
    sensitive: np.ndarray | int,
    *,
    boundary: np.ndarray | int = 0,
    approach: np.ndarray | int = 0,
    extra: np.ndarray | int = 0,
) -> np.ndarray:
    """Inverse of :func:`decode_geometry_id`: uint64 ACTS geometry identifiers.

    Raises:
        ValueError: a field is negative or does not fit its bits.
    """
    values = {
        "volume": volume,
        "boundary": boundary,
        "layer": layer,
        "approach": approach,
        "sensitive": sensitive,
        "extra": extra,
    }
    out = np.zeros(np.broadcast(*values.values()).shape, dtype=np.uint64)
    for name, (shift, bits) in GEOMETRY_FIELDS.items():
        v = np.asarray(values[name], dtype=np.int64)
        if v.size and (v.min() < 0 or v.max() >= (1 << bits)):
            raise ValueError(f"geometry id field '{name}' out of range 0..{(1 << bits) - 1}")
        out |= v.astype(np.uint64) << np.uint64(shift)
    return out


# --- particle ids -----------------------------------------------------------------

#: lhcml particle id layout: barcode field -> (shift, bits). See the module docstring.
BARCODE_FIELDS: dict[str, tuple[int, int]] = {
    "vertex_primary": (52, 11),
    "particle": (36, 16),
    "generation": (24, 12),
    "sub_particle": (12, 12),
    "vertex_secondary": (0, 12),
}


def encode_barcode(
    vertex_primary: np.ndarray | int,
    vertex_secondary: np.ndarray | int,
    particle: np.ndarray | int,
    generation: np.ndarray | int,
    sub_particle: np.ndarray | int,
    *,
    path: str | Path | None = None,
) -> np.ndarray:
    """Pack barcode fields into positive int64 particle ids (layout: module docstring).

    The fields are packed as given; :func:`acts_particle_id` applies the
    secondary-vertex rule for raw ACTS barcodes.

    Args:
        vertex_primary, vertex_secondary, particle, generation, sub_particle: the
            fields (arrays broadcast together).
        path: file the values came from, for error messages.

    Returns:
        int64 array of particle ids.

    Raises:
        InputError: a field is negative or does not fit its bits (e.g. more than 2047
            primary vertices or 65535 particles per vertex).
    """
    values = {
        "vertex_primary": vertex_primary,
        "particle": particle,
        "generation": generation,
        "sub_particle": sub_particle,
        "vertex_secondary": vertex_secondary,
    }
    out = np.zeros(np.broadcast(*values.values()).shape, dtype=np.int64)
    for name, (shift, bits) in BARCODE_FIELDS.items():
        v = np.asarray(values[name], dtype=np.int64)
        if v.size and (v.min() < 0 or v.max() >= (1 << bits)):
            bad = v[(v < 0) | (v >= (1 << bits))]
            raise InputError(
                f"barcode field '{name}' value {bad.flat[0]} does not fit the {bits} bits "
                "of lhcml particle ids",
                path=path,
                column=name,
            )
        out |= v << shift
    return out


def decode_barcode(particle_id: np.ndarray | Iterable[int]) -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_barcode`: the five fields as int64 arrays."""
    pid = np.asarray(particle_id, dtype=np.int64)
    return {
        name: (pid >> shift) & ((1 << bits) - 1) for name, (shift, bits) in BARCODE_FIELDS.items()
    }


def acts_particle_id(
    vertex_primary: np.ndarray,
    vertex_secondary: np.ndarray,
    particle: np.ndarray,
    generation: np.ndarray,
    sub_particle: np.ndarray,
    *,
    path: str | Path | None = None,
) -> np.ndarray:
    """lhcml particle ids of raw ACTS barcodes.

    The generation field gets ACTS' generation plus one when the secondary vertex is
    non-zero, so the TrackML test ``(id >> 24) & 0xFFF != 0`` marks exactly the
    particles that are not primary (:func:`acts_primary`).

    Raises:
        InputError: a field does not fit (see :func:`encode_barcode`).
    """
    vs = np.asarray(vertex_secondary, dtype=np.int64)
    gen = np.asarray(generation, dtype=np.int64) + (vs != 0)
    return encode_barcode(vertex_primary, vs, particle, gen, sub_particle, path=path)


def acts_primary(vertex_secondary: np.ndarray, generation: np.ndarray) -> np.ndarray:
    """ACTS barcode rule: primary iff made at the primary vertex by the generator."""
    return (np.asarray(vertex_secondary) == 0) & (np.asarray(generation) == 0)


# --- files ------------------------------------------------------------------------

_BARCODE_COLUMNS = (
    "particle_id_pv",
    "particle_id_sv",
    "particle_id_part",
    "particle_id_gen",
    "particle_id_subpart",
)
#: Column kinds of each ACTS file the reader uses: u = uint64, i = int64, f = float64.
_MEASUREMENTS = {"measurement_id": "u", "geometry_id": "u"}
_MEAS_GLOBAL = {"global_x": "f", "global_y": "f", "global_z": "f"}
_MAP = {"measurement_id": "u", "hit_id": "u"}
_SIMHITS = {
    **dict.fromkeys(_BARCODE_COLUMNS, "u"),
    "geometry_id": "u",
    **dict.fromkeys(("tx", "ty", "tz", "tpx", "tpy", "tpz", "deltae"), "f"),
}
_PARTICLES = {
    **dict.fromkeys(_BARCODE_COLUMNS, "u"),
    "particle_type": "i",
    **dict.fromkeys(("vx", "vy", "vz", "px", "py", "pz", "q"), "f"),
}
_CELLS = {"measurement_id": "u", "channel0": "i", "channel1": "i", "value": "f"}
_SPACEPOINTS = {
    "measurement_id_1": "u",
    "measurement_id_2": "u",
    **dict.fromkeys(("x", "y", "z", "var_r", "var_z"), "f"),
}
_ARROW_TYPES = {"u": pa.uint64(), "i": pa.int64(), "f": pa.float64()}
#: ACTS' invalid index (``std::numeric_limits<uint64_t>::max()``).
_INVALID = np.uint64(np.iinfo(np.uint64).max)

_NAME_RE = re.compile(r"^event(\d+)(?:-([\w-]+)\.(?:csv|csv\.gz))?$")


def _find(prefix: Path, *stems: str) -> Path | None:
    """First existing ``{prefix}-{stem}.csv(.gz)`` among ``stems``."""
    for stem in stems:
        for ext in (".csv", ".csv.gz"):
            candidate = Path(f"{prefix}-{stem}{ext}")
            if candidate.is_file():
                return candidate
    return None


def list_acts_events(directory: str | Path) -> list[int]:
    """Event ids with a measurements file in ``directory``, sorted."""
    ids = set()
    for f in Path(directory).glob("event*-measurements.csv*"):
        m = _NAME_RE.match(f.name)
        if m and m.group(2) == "measurements":
            ids.add(int(m.group(1)))
    return sorted(ids)


def _acts_prefix(path: Path) -> Path | None:
    """``dir/event000000001`` if ``path`` is that prefix or one of its ACTS files."""
    m = _NAME_RE.match(path.name)
    if not m:
        return None
    prefix = path.with_name(f"event{m.group(1)}")
    return prefix if _find(prefix, "measurements") else None


def is_acts_dir(path: str | Path, event_id: int | None = None) -> bool:
    """Whether ``path`` holds ACTS CSV output (``event*-measurements.csv``).

    Args:
        path: a directory, an event prefix ``dir/event000000001`` or one of its files.
        event_id: unused; kept for the dispatch in :func:`lhcml.io.events.read_event`.
    """
    path = Path(path)
    if path.is_dir():
        return bool(list_acts_events(path))
    return _acts_prefix(path) is not None


def _resolve(path: Path, event_id: int | None) -> tuple[Path, int]:
    if path.is_dir():
        if event_id is None:
            event_id = only_event(path, list_acts_events(path), "ACTS")
        return path / f"event{event_id:09d}", event_id
    prefix = _acts_prefix(path)
    if prefix is None:
        raise InputError("not an ACTS event: no -measurements.csv file", path=path)
    parsed = int(prefix.name[len("event") :])
    if event_id is not None and event_id != parsed:
        raise InputError(f"event id {event_id} does not match the prefix", path=path)
    return prefix, parsed


def _header(path: Path) -> list[str]:
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            line = f.readline()
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(read_failure(e), path=path) from e
    if not line.strip():
        raise InputError("empty file: no CSV header", path=path)
    return [c.strip() for c in line.rstrip("\r\n").split(",")]


def _read_csv(
    path: Path, columns: Mapping[str, str], optional: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """Read the named columns of an ACTS CSV file, refusing missing or bad values.

    Args:
        path: the file.
        columns: required column -> kind (``u`` uint64, ``i`` int64, ``f`` float64).
        optional: columns read when present.

    Returns:
        Column name -> numpy array, for the required and the present optional columns.

    Raises:
        InputError: unreadable file, missing column, unparsable / missing / NaN value;
            the message names the file and the column.
    """
    header = _header(path)
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(
            f"lacks required column(s) {missing}; found {header}", path=path, column=missing[0]
        )
    wanted = {**columns, **{c: k for c, k in (optional or {}).items() if c in header}}
    convert = pacsv.ConvertOptions(
        include_columns=list(wanted),
        column_types={c: _ARROW_TYPES[k] for c, k in wanted.items()},
    )
    try:
        table = pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowException, OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        message = read_failure(e)
        # Arrow names the failing column by its position in the file.
        m = re.search(r"column #(\d+)", message)
        column = header[int(m.group(1))] if m and int(m.group(1)) < len(header) else None
        raise InputError(message, path=path, column=column) from e
    out = {}
    for name, kind in wanted.items():
        col = table.column(name)
        if col.null_count:
            rows = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
            raise InputError(
                f"{col.null_count} missing / NaN value(s), first at data row {rows[0]} (0-based)",
                path=path,
                column=name,
            )
        values = col.to_numpy()
        if kind == "f" and not np.isfinite(values).all():
            rows = np.flatnonzero(~np.isfinite(values))
            raise InputError(
                f"{len(rows)} NaN / infinite value(s), first at data row {rows[0]} (0-based)",
                path=path,
                column=name,
            )
        out[name] = values
    return out


def _need(prefix: Path, table: str, *stems: str) -> Path:
    found = _find(prefix, *stems)
    if found is None:
        names = ", ".join(f"-{s}.csv" for s in stems)
        raise InputError(f"no {names} file for the requested {table}", path=prefix)
    return found


def _index_of(ids: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Position of each of ``ids`` in the sorted array ``known``; -1 where absent."""
    if len(known) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    return np.where(known[pos] == ids, pos, -1)


#: CSV column of each barcode field, for error messages.
_FIELD_COLUMN = dict(
    zip(
        ("vertex_primary", "vertex_secondary", "particle", "generation", "sub_particle"),
        _BARCODE_COLUMNS,
        strict=True,
    )
)


def _barcode_ids(cols: Mapping[str, np.ndarray], path: Path) -> np.ndarray:
    for c in _BARCODE_COLUMNS:
        # No ACTS barcode field is wider than 32 bits; refuse before the int64 cast.
        if len(cols[c]) and cols[c].max() >= np.uint64(1 << 32):
            raise InputError(
                f"barcode value {int(cols[c].max())} is wider than 32 bits", path=path, column=c
            )
    fields = [cols[c].astype(np.int64) for c in _BARCODE_COLUMNS]
    try:
        return acts_particle_id(*fields, path=path)
    except InputError as e:
        raise InputError(e.message, path=path, column=_FIELD_COLUMN.get(e.column or "")) from None


def _read_particles(prefix: Path) -> tuple[pd.DataFrame, Path]:
    """Simulated particles plus generator particles missing from them."""
    simulated = _find(prefix, "particles_simulated")
    generated = _find(prefix, "particles")
    if simulated is None and generated is None:
        raise InputError(
            "no -particles_simulated.csv or -particles.csv file for the requested particles",
            path=prefix,
        )
    frames = []
    for f in (simulated, generated):
        if f is None:
            continue
        c = _read_csv(f, _PARTICLES)
        frames.append(
            pd.DataFrame(
                {
                    "particle_id": _barcode_ids(c, f),
                    "vx": c["vx"],
                    "vy": c["vy"],
                    "vz": c["vz"],
                    "px": c["px"],
                    "py": c["py"],
                    "pz": c["pz"],
                    # ACTS writes the charge as a float.
                    "q": np.rint(c["q"]).astype(np.int32),
                    "particle_type": c["particle_type"],
                    "primary": acts_primary(c["particle_id_sv"], c["particle_id_gen"]),
                    "subevent": c["particle_id_pv"].astype(np.int64) - 1,
                }
            )
        )
        dup = frames[-1]["particle_id"].duplicated()
        if dup.any():
            raise InputError(
                f"{int(dup.sum())} duplicate barcode(s) (e.g. lhcml id "
                f"{frames[-1]['particle_id'][dup].iloc[0]})",
                path=f,
                column="particle_id_part",
            )
    particles = pd.concat(frames, ignore_index=True)
    # The Fatras list comes first: keep its row when both files have the particle.
    particles = particles.drop_duplicates("particle_id", keep="first")
    particles = particles.sort_values("particle_id", ignore_index=True)
    return particles, simulated or generated  # type: ignore[return-value]


def _truth(
    prefix: Path, meas_ids: np.ndarray, meas_geometry: np.ndarray, hits: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Truth rows (aligned with ``hits``) from the measurement -> sim hit map."""
    map_file = _need(prefix, "truth", "measurement-simhit-map")
    sim_file = _need(prefix, "truth", "hits")
    link = _read_csv(map_file, _MAP)
    sim = _read_csv(sim_file, _SIMHITS)
    n_sim = len(sim["geometry_id"])
    if np.any(link["hit_id"] >= n_sim):
        bad = link["hit_id"][link["hit_id"] >= n_sim]
        raise InputError(
            f"{len(bad)} link(s) to sim hits beyond the {n_sim} rows of {sim_file.name} "
            f"(e.g. {int(bad[0])})",
            path=map_file,
            column="hit_id",
        )
    row = _index_of(link["measurement_id"], meas_ids)
    if np.any(row < 0):
        bad = link["measurement_id"][row < 0]
        raise InputError(
            f"{len(bad)} link(s) to measurement ids not in the measurements file "
            f"(e.g. {int(bad[0])})",
            path=map_file,
            column="measurement_id",
        )
    sim_row = link["hit_id"].astype(np.int64)
    # One sim hit per measurement: the largest energy deposit (-deltae) when a merged
    # cluster has several (smearing digitization always has exactly one).
    order = np.lexsort((sim["deltae"][sim_row], row))
    first = np.ones(len(order), dtype=bool)
    first[1:] = row[order][1:] != row[order][:-1]
    chosen = order[first]
    meas_row, sim_row = row[chosen], sim_row[chosen]
    if np.any(sim["geometry_id"][sim_row] != meas_geometry[meas_row]):
        raise InputError(
            "sim hits linked to measurements lie on other surfaces (geometry_id differs): "
            f"the map does not index the rows of {sim_file.name}",
            path=map_file,
            column="hit_id",
        )
    pid = _barcode_ids({c: v[sim_row] for c, v in sim.items()}, sim_file)
    n = len(hits)
    truth = {
        "hit_id": hits["hit_id"].to_numpy(),
        "particle_id": np.zeros(n, dtype=np.int64),
        # Measurements without a sim hit (none with ACTS digitization) count as noise
        # at their measured position with zero momentum.
        "tx": np.array(hits["x"], dtype=np.float64),
        "ty": np.array(hits["y"], dtype=np.float64),
        "tz": np.array(hits["z"], dtype=np.float64),
        "tpx": np.zeros(n),
        "tpy": np.zeros(n),
        "tpz": np.zeros(n),
    }
    truth["particle_id"][meas_row] = pid
    for out, col in (("tx", "tx"), ("ty", "ty"), ("tz", "tz")):
        truth[out][meas_row] = sim[col][sim_row]
    for out, col in (("tpx", "tpx"), ("tpy", "tpy"), ("tpz", "tpz")):
        truth[out][meas_row] = sim[col][sim_row]
    return pd.DataFrame(truth), {"map": map_file, "simhits": sim_file}


def _hit_weights(truth: pd.DataFrame, particles: pd.DataFrame) -> np.ndarray:
    try:
        from lhcml.data.weights import hit_weights
    except ImportError:  # metrics not installed: weights unknown
        return np.zeros(len(truth), dtype=np.float32)
    return np.asarray(hit_weights(truth, particles), dtype=np.float32)


def read_acts_event(
    path: str | Path, event_id: int | None = None, *, parts: Iterable[str] | None = None
) -> Event:
    """Read one event of ACTS CSV output into an lhcml :class:`~lhcml.data.Event`.

    Args:
        path: directory of ACTS CSV output (with ``event_id`` unless it holds one
            event), an event prefix ``dir/event000000001`` or one of its files.
        event_id: event number when ``path`` is a directory.
        parts: tables to read (default: all that are present); ``hits`` is always read.

    Returns:
        The validated event (see the module docstring for the mapping);
        ``meta["format"] == "acts-csv"``.

    Raises:
        InputError: missing files or columns, unparsable or missing values, links to
            measurements / sim hits / particles that do not exist, barcodes that do not
            fit lhcml particle ids; the message names the file and the column.
    """
    prefix, event_id = _resolve(Path(path), event_id)
    wanted = set(TABLES if parts is None else parts) | {"hits"}
    unknown = wanted - set(TABLES)
    if unknown:
        raise InputError(f"unknown table(s) {sorted(unknown)}; choose from {list(TABLES)}")
    explicit = set() if parts is None else wanted

    meas_file = _need(prefix, "hits", "measurements")
    header = _header(meas_file)
    if "global_x" not in header:
        # Older ACTS wrote local coordinates only; converting needs the tracking
        # geometry of the exact detector, which a file reader cannot know.
        raise InputError(
            "no global_x/global_y/global_z columns: written by an ACTS version that "
            "stores local coordinates only (pyacts >= 48 writes global positions)",
            path=meas_file,
            column="global_x",
        )
    meas = _read_csv(meas_file, {**_MEASUREMENTS, **_MEAS_GLOBAL})
    if len(meas["measurement_id"]) == 0:
        raise InputError(
            f"event {event_id} has no measurements (the file has no data rows)", path=meas_file
        )
    order = np.argsort(meas["measurement_id"], kind="stable")
    meas = {k: v[order] for k, v in meas.items()}
    meas_ids = meas["measurement_id"]
    dup = meas_ids[1:] == meas_ids[:-1]
    if dup.any():
        raise InputError(
            f"duplicate measurement ids (e.g. {int(meas_ids[1:][dup][0])})",
            path=meas_file,
            column="measurement_id",
        )
    if meas_ids[-1] >= np.iinfo(np.int64).max:
        raise InputError("measurement id too large", path=meas_file, column="measurement_id")
    geo = decode_geometry_id(meas["geometry_id"])
    hits = pd.DataFrame(
        {
            "hit_id": meas_ids.astype(np.int64) + 1,
            "x": meas["global_x"],
            "y": meas["global_y"],
            "z": meas["global_z"],
            "volume_id": geo["volume"],
            "layer_id": geo["layer"],
            "module_id": geo["sensitive"],
        }
    )
    files: dict[str, Path] = {"hits": meas_file}
    tables: dict[str, pd.DataFrame] = {}

    truth = particles = None
    need_truth = bool({"truth", "particles"} & wanted)
    has_truth_files = _find(prefix, "measurement-simhit-map") and _find(prefix, "hits")
    if need_truth and (has_truth_files or {"truth", "particles"} & explicit):
        truth, truth_files = _truth(prefix, meas_ids, meas["geometry_id"], hits)
        particles, particles_file = _read_particles(prefix)
        known = _index_of(truth["particle_id"].to_numpy(), particles["particle_id"].to_numpy())
        orphan = (known < 0) & (truth["particle_id"].to_numpy() != 0)
        if orphan.any():
            bad = np.unique(truth["particle_id"].to_numpy()[orphan])
            raise InputError(
                f"{len(bad)} particle(s) of sim hits are not in {particles_file.name} "
                f"(e.g. barcode { ({k: int(v[0]) for k, v in decode_barcode(bad[:1]).items()}) })",
                path=truth_files["simhits"],
                column="particle_id_part",
            )
        counts = np.bincount(known[known >= 0], minlength=len(particles))
        particles["nhits"] = counts.astype(np.int32)
        particles["prod_r"] = np.hypot(particles["vx"], particles["vy"])
        truth["weight"] = _hit_weights(truth, particles)
        if "truth" in wanted:
            tables["truth"] = truth
            files["truth"] = truth_files["map"]
        if "particles" in wanted:
            tables["particles"] = particles
            files["particles"] = particles_file

    if "spacepoints" in wanted:
        sp_file = _find(prefix, "spacepoint", "spacepoints")
        if sp_file is None and "spacepoints" in explicit:
            _need(prefix, "spacepoints", "spacepoint")
        if sp_file is not None:
            tables["spacepoints"] = _spacepoints(sp_file, meas_ids)
            files["spacepoints"] = sp_file

    if "cells" in wanted:
        cells_file = _find(prefix, "cells")
        if cells_file is None and "cells" in explicit:
            _need(prefix, "cells", "cells")
        if cells_file is not None:
            c = _read_csv(cells_file, _CELLS)
            if len(c["measurement_id"]) or "cells" in explicit:
                missing = _index_of(c["measurement_id"], meas_ids) < 0
                if missing.any():
                    raise InputError(
                        f"{int(missing.sum())} cell(s) of measurement ids not in the "
                        f"measurements file (e.g. {int(c['measurement_id'][missing][0])})",
                        path=cells_file,
                        column="measurement_id",
                    )
                tables["cells"] = pd.DataFrame(
                    {
                        "hit_id": c["measurement_id"].astype(np.int64) + 1,
                        "ch0": c["channel0"],
                        "ch1": c["channel1"],
                        "value": c["value"],
                    }
                )
                files["cells"] = cells_file

    tables["hits"] = hits
    conformed = {name: conform_table(df, name, files[name]) for name, df in tables.items()}
    meta = {"source": str(prefix), "format": "acts-csv"}
    if "particles" in files:
        meta["particles_file"] = files["particles"].name
    event = Event(event_id=event_id, meta=meta, **conformed)
    return validate_event(event, files)


def _spacepoints(sp_file: Path, meas_ids: np.ndarray) -> pd.DataFrame:
    sp = _read_csv(sp_file, _SPACEPOINTS)
    first = sp["measurement_id_1"]
    missing = _index_of(first, meas_ids) < 0
    if missing.any():
        raise InputError(
            f"{int(missing.sum())} space point(s) of measurement ids not in the "
            f"measurements file (e.g. {int(first[missing][0])})",
            path=sp_file,
            column="measurement_id_1",
        )
    second = sp["measurement_id_2"]
    has_second = second != _INVALID
    return pd.DataFrame(
        {
            "hit_id": first.astype(np.int64) + 1,
            "x": sp["x"],
            "y": sp["y"],
            "z": sp["z"],
            "var_r": sp["var_r"],
            "var_z": sp["var_z"],
            # Strip space points combine two measurements; 0 = none (pixel).
            "hit_id_2": np.where(has_second, second.astype(np.int64) + 1, 0),
        }
    )
