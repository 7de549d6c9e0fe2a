"""Triplet seeding on pixel space points.

- :mod:`~lhcml.seeding.config`: :class:`SeedingConfig`, ACTS's ``GridTripletSeedingAlgorithm``
  parameters (names, meanings, defaults) and the physmon preset;
- :mod:`~lhcml.seeding.grid`, :mod:`~lhcml.seeding.doublets`,
  :mod:`~lhcml.seeding.triplets`, :mod:`~lhcml.seeding.filter`,
  :mod:`~lhcml.seeding.finder`: ACTS's grid triplet seeding ported to numba (float32, the
  same cuts in the same order: on the same space points the seeds are ACTS's);
- :mod:`~lhcml.seeding.hashing`: nearest-neighbour buckets (KD-tree, faiss or Annoy),
  seeding inside each, merged seeds;
- :mod:`~lhcml.seeding.estimate`: q/pT, phi, theta, d0, z0 from a seed's three points;
- :mod:`~lhcml.seeding.io`: ``event<N>-seeds.parquet`` files; :mod:`~lhcml.seeding.run`:
  seeding events on disk (``lhcml seed``);
- :mod:`~lhcml.seeding.spacepoints`: space points from pixel hits (TrackML);
- :mod:`~lhcml.seeding.acts_reference`: ACTS's own seeder on our space points (pyacts).

Seed metrics live in :mod:`lhcml.seeding.evaluate`.
"""

from __future__ import annotations

from lhcml.seeding.config import SeedingConfig
from lhcml.seeding.finder import Seeds, find_seeds
from lhcml.seeding.hashing import HashingConfig, find_seeds_hashing

__all__ = ["HashingConfig", "SeedingConfig", "Seeds", "find_seeds", "find_seeds_hashing"]
