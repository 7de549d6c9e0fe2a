"""Python sequence elements and converters of the ACTS chain (imports ``acts``).

Kept apart from :mod:`lhcml.simulation.detector` so that importing lhcml never pulls
in ACTS; only :meth:`DetectorSimulation.run` imports this module.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import acts
import acts.arrow
import acts.examples as ae
import acts.examples.arrow
import numpy as np
import pyarrow as pa

from lhcml.errors import LhcmlError

if TYPE_CHECKING:
    from lhcml.simulation.generators import GenParticles
    from lhcml.simulation.raw import Clock, RawEvent

LEVEL = acts.logging.WARNING

#: Keys on the ACTS whiteboard.
GEN_TABLE = "lhcml_gen_particles"
EMPTY_HITS = "lhcml_gen_hits"
HIT_TABLE = "lhcml_hit_table"
PARTICLE_TABLE = "lhcml_particle_table"


class GeneratorReader(ae.IReader):
    """Puts each event's generator particles on the whiteboard as an Arrow table."""

    def __init__(
        self,
        generate: Callable[[int], GenParticles],
        select: Callable[[GenParticles], np.ndarray],
        clock: Clock,
    ) -> None:
        ae.IReader.__init__(self, "LhcmlGenerator", LEVEL)
        self._generate = generate
        self._select = select
        self._clock = clock
        self._out = ae.WriteDataHandle(self, acts.arrow.ArrowTable, "OutputParticlesTable")
        self._out.initialize(GEN_TABLE)
        # The converter insists on a hits table; ours is empty.
        self._hits = ae.WriteDataHandle(self, acts.arrow.ArrowTable, "OutputHitsTable")
        self._hits.initialize(EMPTY_HITS)
        #: Per event: the generator particles and the rows of them given to Fatras.
        self.generated: dict[int, tuple[GenParticles, np.ndarray]] = {}

    def availableEvents(self) -> tuple[int, int]:
        return (0, 2**62)

    def read(self, ctx: Any) -> Any:
        self._clock.mark("start")
        gen = self._generate(ctx.eventNumber)
        rows = np.flatnonzero(self._select(gen))
        self.generated[ctx.eventNumber] = (gen, rows)
        self._out(ctx, acts.arrow.ArrowTable.from_arrow(particle_table(gen, rows)))
        self._hits(ctx, acts.arrow.ArrowTable.from_arrow(empty_hit_table()))
        self._clock.mark("generated")
        return ae.ProcessCode.SUCCESS


class Mark(ae.IAlgorithm):
    """Records the wall-clock time when the sequence reaches it (stage timing)."""

    def __init__(self, name: str, clock: Clock) -> None:
        ae.IAlgorithm.__init__(self, f"LhcmlMark_{name}", LEVEL)
        self._name = name
        self._clock = clock

    def execute(self, ctx: Any) -> Any:
        self._clock.mark(self._name)
        return ae.ProcessCode.SUCCESS


class Collector(ae.IAlgorithm):
    """Reads the event's results off the whiteboard and hands them to ``consume``."""

    def __init__(
        self,
        reader: GeneratorReader,
        consume: Callable[[RawEvent], None],
        clock: Clock,
        sp_layers: set[tuple[int, int]],
        pmin: float,
    ) -> None:
        ae.IAlgorithm.__init__(self, "LhcmlCollector", LEVEL)
        self._reader = reader
        self._pmin = pmin
        # [volume, layer] -> makes space points (ids are small: 8 + 16 bits in ACTS).
        self._sp_layers = np.zeros((256, 1 << 12), dtype=bool)
        for volume, layer in sp_layers:
            self._sp_layers[volume, layer] = True
        self._consume = consume
        self._clock = clock
        handles = {
            "hit_table": (acts.arrow.ArrowTable, HIT_TABLE),
            "particle_table": (acts.arrow.ArrowTable, PARTICLE_TABLE),
            "simhits": (ae.SimHitContainer, "simhits"),
            "particles": (ae.SimParticleContainer, "particles_simulated"),
            "spacepoints": (acts.SpacePointContainer, "spacepoints"),
            "measurements": (ae.MeasurementContainer, "measurements"),
            "measurement_simhits": (ae.MeasurementSimHitsMap, "measurement_simhits_map"),
        }
        self._handles = {}
        for key, (typ, wb_key) in handles.items():
            handle = ae.ReadDataHandle(self, typ, key)
            handle.initialize(wb_key)
            self._handles[key] = handle

    def execute(self, ctx: Any) -> Any:
        clock = self._clock
        clock.mark("converted")
        wb = ctx.eventStore
        gen, rows = self._reader.generated.pop(ctx.eventNumber)
        data = {k: h(wb) for k, h in self._handles.items()}
        raw = collect(ctx.eventNumber, gen, rows, data, self._sp_layers, self._pmin)
        clock.mark("collected")
        raw.timings = {
            "generation": clock.span("start", "generated"),
            "fatras": clock.span("before_fatras", "after_fatras"),
            "digitization": clock.span("after_fatras", "after_digitization"),
            "conversion": clock.span("after_digitization", "collected"),
        }
        self._consume(raw)
        return ae.ProcessCode.SUCCESS


def flat(table: pa.Table, name: str) -> np.ndarray:
    """Values of a one-row list column (zero-copy where Arrow allows)."""
    col = table.column(name)
    chunk = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return chunk.values.to_numpy(zero_copy_only=False)


def collect(
    event_id: int,
    gen: GenParticles,
    rows: np.ndarray,
    d: dict[str, Any],
    sp_layers: np.ndarray,
    pmin: float,
) -> RawEvent:
    """Turn the whiteboard objects of one event into a :class:`RawEvent`.

    ``rows`` are the generator rows that were given to Fatras, in table order;
    ``sp_layers`` is a boolean ``[volume, layer]`` lookup of the space-point selection;
    ``pmin`` is Fatras' momentum threshold [GeV].
    """
    from lhcml.simulation.raw import RawEvent

    ht = pa.table(d["hit_table"])
    pt = pa.table(d["particle_table"])
    mom4 = hit_momenta(d["simhits"])
    barcodes = particle_barcodes(d["particles"], pt, gen, rows, pmin)
    meas = np.column_stack([flat(ht, "x"), flat(ht, "y"), flat(ht, "z")])
    volume = flat(ht, "volume_id").astype(np.int32)
    layer = flat(ht, "layer_id").astype(np.int32)
    meas_rows = measurement_rows(
        d["measurement_simhits"], len(d["measurements"]), len(d["simhits"])
    )
    sp = d["spacepoints"]
    sp_xyz = np.column_stack([np.asarray(sp.x), np.asarray(sp.y), np.asarray(sp.z)])
    sp_meas = spacepoint_measurements(
        sp, sp_xyz, meas[meas_rows], sp_layers[volume[meas_rows], layer[meas_rows]]
    )
    return RawEvent(
        event_id=event_id,
        gen=gen,
        fatras_rows=rows,
        hit_meas=meas,
        hit_true=np.column_stack([flat(ht, "true_x"), flat(ht, "true_y"), flat(ht, "true_z")]),
        hit_mom=mom4[:, :3],
        hit_volume=volume,
        hit_layer=layer,
        hit_module=flat(ht, "surface_id").astype(np.int32),
        hit_particle_row=flat(ht, "particle_id").astype(np.int64),
        particle_barcode=barcodes,
        particle_pdg=flat(pt, "pdg_id").astype(np.int32),
        particle_charge=flat(pt, "charge"),
        particle_vertex=np.column_stack([flat(pt, "vx"), flat(pt, "vy"), flat(pt, "vz")]),
        particle_momentum=np.column_stack([flat(pt, "px"), flat(pt, "py"), flat(pt, "pz")]),
        particle_parent=flat(pt, "parent_id").astype(np.int64),
        meas_rows=meas_rows,
        sp_meas=sp_meas,
        sp_xyz=sp_xyz,
        sp_var=np.column_stack([np.asarray(sp.varianceR), np.asarray(sp.varianceZ)]),
    )


def hit_momenta(simhits: Any) -> np.ndarray:
    """``(n, 4)`` four-momentum of each sim hit before the hit (``momentum4Before``).

    The Arrow table lacks it, so one tight loop it is: each Eigen vector exposes its
    four doubles through the buffer protocol, ``bytes`` copies them and one
    ``frombuffer`` reads them all (~0.7 us per hit, the fastest way found).
    """
    n = len(simhits)
    raw = b"".join(map(bytes, map(operator.attrgetter("momentum4Before"), simhits)))
    if len(raw) == 32 * n:
        return np.frombuffer(raw, dtype=np.float64).reshape(n, 4)
    return np.fromiter(  # a binding without the buffer layout: element-wise
        (h.momentum4Before for h in simhits), dtype=np.dtype((np.float64, 4)), count=n
    )


def particle_barcodes(
    particles: Any,
    pt: pa.Table,
    gen: GenParticles,
    rows: np.ndarray,
    pmin: float,
) -> np.ndarray:
    """Barcode fields (vertex primary, vertex secondary, particle, generation,
    sub-particle) of the simulated particles, in container order.

    The container is sorted by barcode. Generator particles entered as generation 0
    with particle number = table row (the converter's convention), and Fatras
    returns those with ``p >= pmin``; when the returned generation-0 rows match that
    prediction exactly (count, vertex and momentum), their barcodes are known without
    asking ACTS and only the Fatras secondaries are read one by one. Otherwise every
    barcode is read (~2 us per particle).
    """
    primary = flat(pt, "primary").astype(bool)
    n = len(primary)
    g = gen.select(rows)
    p_in = np.sqrt(
        g.px.astype(np.float64) ** 2 + g.py.astype(np.float64) ** 2 + g.pz.astype(np.float64) ** 2
    )
    expected = np.flatnonzero(p_in >= pmin)
    if primary.sum() == len(expected) and (
        np.array_equal(flat(pt, "vertex_primary")[primary], g.subevent[expected] + 1)
        and np.array_equal(flat(pt, "px")[primary], g.px[expected])
        and np.array_equal(flat(pt, "pz")[primary], g.pz[expected])
    ):
        out = np.zeros((n, 5), dtype=np.int64)
        out[primary, 0] = g.subevent[expected] + 1
        out[primary, 2] = expected
        secondaries = itertools.compress(particles, ~primary)
        out[~primary] = _read_barcodes(secondaries, int(n - primary.sum()))
        return out
    return _read_barcodes(iter(particles), n)


def _read_barcodes(particles: Iterable[Any], count: int) -> np.ndarray:
    return np.fromiter(
        (
            (b.vertexPrimary, b.vertexSecondary, b.particle, b.generation, b.subParticle)
            for b in (p.particleId for p in particles)
        ),
        dtype=np.dtype((np.int64, 5)),
        count=count,
    ).reshape(-1, 5)


def measurement_rows(measurement_simhits: Any, n_measurements: int, n_simhits: int) -> np.ndarray:
    """First sim-hit row of each measurement, in measurement order.

    Without merging, digitization makes one measurement per sim hit, in sim-hit order:
    then the rows are simply ``0..n-1``. With merging (``DetectorConfig.merge_hits``),
    hits closer than a pitch on one module share a measurement and need not be adjacent,
    so the measurement-to-sim-hit map is read (one tight loop, ~0.35 us per entry).
    """
    n = len(measurement_simhits)
    if n_measurements == n_simhits == n:
        return np.arange(n, dtype=np.int64)
    pairs = np.fromiter(
        itertools.chain.from_iterable(measurement_simhits), dtype=np.int64, count=2 * n
    ).reshape(n, 2)
    first = np.full(n_measurements, -1, dtype=np.int64)
    # Reversed: for a measurement with several sim hits the smallest row is written last.
    first[pairs[::-1, 0]] = pairs[::-1, 1]
    if np.any(first < 0):
        raise LhcmlError("a measurement has no sim hit")
    return first


def spacepoint_measurements(
    sp: Any, sp_xyz: np.ndarray, meas_xyz: np.ndarray, in_selection: np.ndarray
) -> np.ndarray:
    """Measurement index of each space point.

    The space point maker walks the selected measurements in order and makes one point
    per pixel measurement, at its position; the positions confirm that, and if they did
    not, each space point's source link is read instead (~2 us each).

    Args:
        sp: the ACTS space point container.
        sp_xyz: (k, 3) space point positions.
        meas_xyz: (m, 3) measured positions, in measurement order.
        in_selection: per measurement, whether its (volume, layer) makes space points.
    """
    index = np.flatnonzero(in_selection)
    if len(index) == len(sp_xyz) and np.allclose(meas_xyz[index], sp_xyz, rtol=0, atol=1e-3):
        return index
    return np.fromiter(
        (ae.IndexSourceLink.fromSourceLink(next(iter(p.sourceLinks))).index() for p in sp),
        dtype=np.int64,
        count=len(sp),
    )


def particle_table(gen: GenParticles, rows: np.ndarray) -> pa.Table:
    """One-row Arrow table of the generator particles ``rows``, with list columns: the
    layout the ACTS converter reads."""
    n = len(rows)
    gen = gen.select(rows)
    offsets = pa.array(np.array([0, n], dtype=np.int32))

    def col(values: np.ndarray, typ: pa.DataType) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, pa.array(values, type=typ))

    f32 = pa.float32()
    return pa.table(
        {
            # The converter numbers the particles by table row (0-based); the id column
            # says the same.
            "particle_id": col(np.arange(n, dtype=np.uint64), pa.uint64()),
            "pdg_id": col(gen.pdg.astype(np.int64), pa.int64()),
            "mass": col(gen.mass.astype(np.float32), f32),
            "charge": col(gen.charge.astype(np.float32), f32),
            "vx": col(gen.vx.astype(np.float32), f32),
            "vy": col(gen.vy.astype(np.float32), f32),
            "vz": col(gen.vz.astype(np.float32), f32),
            "time": col(gen.vt.astype(np.float32), f32),
            "px": col(gen.px.astype(np.float32), f32),
            "py": col(gen.py.astype(np.float32), f32),
            "pz": col(gen.pz.astype(np.float32), f32),
            "vertex_primary": col((gen.subevent + 1).astype(np.uint16), pa.uint16()),
            # Fatras rejects input with a non-zero generation, so every generator
            # particle enters as generation 0; displaced decays are marked in the
            # lhcml particle id instead (see lhcml.simulation.assemble).
            "primary": col(np.ones(n, dtype=bool), pa.bool_()),
        }
    )


_HIT_TYPES = {
    "x": pa.float32(),
    "y": pa.float32(),
    "z": pa.float32(),
    "true_x": pa.float32(),
    "true_y": pa.float32(),
    "true_z": pa.float32(),
    "time": pa.float32(),
    "particle_id": pa.uint64(),
    "detector": pa.uint8(),
    "volume_id": pa.uint8(),
    "layer_id": pa.uint16(),
    "surface_id": pa.uint32(),
}


def empty_hit_table() -> pa.Table:
    """A one-row hits table with empty lists (the converter requires one)."""
    offsets = pa.array(np.array([0, 0], dtype=np.int32))
    return pa.table(
        {k: pa.ListArray.from_arrays(offsets, pa.array([], type=t)) for k, t in _HIT_TYPES.items()}
    )
