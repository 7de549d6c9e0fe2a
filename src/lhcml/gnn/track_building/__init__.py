"""Track building: scored edges -> tracks.

``algorithms`` (connected components, junctions, walkthrough, longest paths, stitching,
second pass; numba), ``infer`` (graph files -> submissions), ``evaluate`` (submissions ->
efficiency, fake and duplicate rates).
"""

from __future__ import annotations

from lhcml.gnn.track_building.algorithms import (
    METHODS,
    best_edges,
    build_tracks,
    connected_components,
    longest_paths,
    second_pass,
    stitch_segments,
    walkthrough,
)

__all__ = [
    "METHODS",
    "best_edges",
    "build_tracks",
    "connected_components",
    "longest_paths",
    "second_pass",
    "stitch_segments",
    "walkthrough",
]
