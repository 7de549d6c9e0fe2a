"""Column schemas of the event tables.

Units: positions in mm, momenta in GeV, charge in e, variances in mm^2.
The TrackML columns come first, in the TrackML order, so a CSV written from these
tables is readable by the TrackML challenge's own library.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of an event table.

    Args:
        name: column name.
        dtype: canonical numpy dtype name the column is stored as.
        unit: physical unit ("" for ids and flags).
        description: meaning of the column.
        required: whether a reader must find it (optional columns are derived or dropped).
    """

    name: str
    dtype: str
    unit: str
    description: str
    required: bool = True


def _table(*columns: Column) -> dict[str, Column]:
    return {c.name: c for c in columns}


HITS = _table(
    Column("hit_id", "int64", "", "hit identifier, unique in the event, 1..N"),
    Column("x", "float32", "mm", "measured global x"),
    Column("y", "float32", "mm", "measured global y"),
    Column("z", "float32", "mm", "measured global z"),
    Column("volume_id", "int32", "", "detector volume (7/8/9 pixel, 12/13/14, 16/17/18 strips)"),
    Column("layer_id", "int32", "", "layer within the volume"),
    Column("module_id", "int32", "", "module (sensitive surface) within the layer"),
)

TRUTH = _table(
    Column("hit_id", "int64", "", "hit identifier, as in hits"),
    Column("particle_id", "int64", "", "particle that made the hit; 0 for noise"),
    Column("tx", "float32", "mm", "true x where the particle crossed the module"),
    Column("ty", "float32", "mm", "true y"),
    Column("tz", "float32", "mm", "true z"),
    Column("tpx", "float32", "GeV", "true particle px at the hit"),
    Column("tpy", "float32", "GeV", "true particle py at the hit"),
    Column("tpz", "float32", "GeV", "true particle pz at the hit"),
    Column("weight", "float32", "", "TrackML score weight of the hit (sums to 1 per event)"),
)

PARTICLES = _table(
    Column("particle_id", "int64", "", "particle identifier (non-zero)"),
    Column("vx", "float32", "mm", "production vertex x"),
    Column("vy", "float32", "mm", "production vertex y"),
    Column("vz", "float32", "mm", "production vertex z"),
    Column("px", "float32", "GeV", "momentum x at production"),
    Column("py", "float32", "GeV", "momentum y at production"),
    Column("pz", "float32", "GeV", "momentum z at production"),
    Column("q", "int32", "e", "charge"),
    Column("nhits", "int32", "", "number of hits the particle left"),
    Column("particle_type", "int32", "", "PDG id; 0 if unknown", required=False),
    Column("primary", "bool", "", "made by the generator at a primary vertex", required=False),
    Column("prod_r", "float32", "mm", "production radius sqrt(vx^2 + vy^2)", required=False),
    Column("subevent", "int32", "", "0 hard scatter, k the k-th pile-up vertex", required=False),
)

CELLS = _table(
    Column("hit_id", "int64", "", "hit the cell belongs to"),
    Column("ch0", "int32", "", "channel index along the first local axis"),
    Column("ch1", "int32", "", "channel index along the second local axis"),
    Column("value", "float32", "", "deposited charge / energy"),
)

SPACEPOINTS = _table(
    Column("hit_id", "int64", "", "hit the space point was made from"),
    Column("x", "float32", "mm", "space point x"),
    Column("y", "float32", "mm", "space point y"),
    Column("z", "float32", "mm", "space point z"),
    Column("var_r", "float32", "mm^2", "variance in r"),
    Column("var_z", "float32", "mm^2", "variance in z"),
)

SCHEMAS: dict[str, dict[str, Column]] = {
    "hits": HITS,
    "truth": TRUTH,
    "particles": PARTICLES,
    "cells": CELLS,
    "spacepoints": SPACEPOINTS,
}
