"""Hashing-bucketed seeding: nearest neighbours in (phi, eta) group space points into
buckets, the standard seeder runs inside each bucket, and the seeds are merged.

The scheme is ACTS's hashing seeding (``HashingPrototypeSeedingAlgorithm``, not in the
pyacts 48.1 wheel), with its parameter names:

1. **Model.** Every space point in the grid becomes an item of a nearest-neighbour index
   (``builder``: Annoy as ACTS, or an exact batched KD-tree / faiss index). Features ``f = 1``:
   the azimuth as the unit vector ``(cos phi, sin phi)`` - Euclidean distance in that
   plane is ``2 sin(|dphi| / 2)``, monotonic in ``|dphi|`` and periodic, so phi wraps
   correctly; ``f = 2``: ``(cos phi, sin phi, etaScale * eta)`` with ``eta`` of the
   space point seen from the origin. Annoy: ``nTrees`` random-projection trees (default
   ``2 f``, as ACTS), seeded by ``annoySeed``.
2. **Buckets.** The *query layer* (``layerRMin <= r <= layerRMax``, ``layerZMin <= z <=
   layerZMax``: by default the innermost pixel barrel layer) is cut into ``phiBins``
   bins in phi or, with ``zBins > 0``, ``zBins`` bins in z (ACTS); lhcml adds
   ``binning = "z-phi"``: ``zBins x phiBins`` cells. With ``query = "points"`` (ACTS)
   every query-layer space point asks for its ``bucketSize`` nearest neighbours (itself
   included) and a bucket is the union of the lists of one bin; with ``query = "bins"``
   (lhcml) each bin asks once, at the mean feature vector of its query-layer space
   points, so the bucket is the ``bucketSize`` space points nearest to the bin (plus the
   bin's query points) - the same kind of bucket for a fraction of the Annoy calls.
3. **Seeding.** The standard seeder (:mod:`lhcml.seeding.finder`, same
   :class:`~lhcml.seeding.config.SeedingConfig`) runs inside each bucket as if the
   bucket were the whole event: one grid fill and one kernel call for all buckets.
4. **Merge.** A triplet found in several buckets is kept once (with its highest quality).

A bucket that holds every space point reproduces the standard seeds exactly (the
single-bucket identity): e.g. ``bucketSize`` at least the number of space points and
``phiBins = 1``.

Why buckets can recover efficiency lost to a tight ``maxSeedsPerSpM``: inside a bucket
a middle space point competes only with the triplets of its bucket, and a middle space
point in several (overlapping) buckets can keep up to ``maxSeedsPerSpM + 1`` seeds in
each. A bucket must still hold whole tracks: at pT = 0.5 GeV a track turns by ~0.1 rad
in phi across the pixel layers, and the eta of its space points seen from the origin
shifts by up to ~1 unit with ``|z0|`` ~ 50 mm, which sets the bucket size and overlap.
Annoy's Python API adds and queries one item per call (~0.13 s per mu = 200 event, a
quarter of the seeding time); the ``kdtree`` builder answers every query in one
vectorised call (~0.035 s, exact), and the bucket lists are merged by a numba pass
instead of sorting the ~2.4 10^5 (bucket, point) pairs. That is what makes hashing pay:
see ``benchmarks/bench_seeding.py``.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numba
import numpy as np
import pandas as pd

from lhcml.errors import ConfigError
from lhcml.seeding.config import SeedingConfig
from lhcml.seeding.finder import Seeds, binning_for, run_kernel, spacepoint_arrays
from lhcml.seeding.grid import fill_grid

#: Neighbour-list builders of :class:`HashingConfig`.
BUILDERS: tuple[str, ...] = ("annoy", "kdtree", "faiss")


@dataclass(frozen=True)
class HashingConfig:
    """Hashing parameters (ACTS's names; ``nTrees``, ``etaScale``, ``searchK``, ``query``,
    ``binning`` and ``builder`` are lhcml's).

    The defaults are lhcml's, chosen on simulated ttbar mu = 200 events (see
    ``benchmarks/bench_seeding.py``): (phi, eta) features, one exact KD-tree query per cell
    of a 10 x 90 z-phi grid of the query layer, 300 space points per bucket: 0.9x the
    standard seeder's time, 93 % of the efficiency its tight ``maxSeedsPerSpM`` loses
    recovered; 325 takes the standard time and beats a five times looser cap. Larger
    buckets recover more efficiency for more time. ACTS's own defaults (Annoy,
    ``bucketSize = 10``, 50 phi bins, phi only, every query point asks) are :meth:`acts`.

    Attributes:
        bucketSize: nearest neighbours per query.
        f: features: 1 = phi, 2 = (phi, eta).
        nTrees: Annoy trees (None: ``2 f``, as ACTS).
        zBins: query-layer bins in z.
        phiBins: query-layer bins in phi.
        layerRMin, layerRMax, layerZMin, layerZMax: the query layer (mm).
        etaScale: weight of eta against the phi chord in the ``f = 2`` metric.
        annoySeed: Annoy's random seed.
        searchK: Annoy ``search_k`` (-1: Annoy's default, ``bucketSize * nTrees``).
        query: ``points`` (ACTS): every query-layer space point asks for its
            ``bucketSize`` neighbours and a bucket is the union over a bin; ``bins``: one
            query per bin, at the mean feature vector of the bin's query-layer space
            points, so a bucket is the ``bucketSize`` space points nearest to the bin.
        binning: ``auto`` (ACTS): z bins if ``zBins > 0``, else phi bins; ``z-phi``:
            ``zBins x phiBins`` cells of the query layer.
        builder: how neighbour lists are found: ``annoy`` (ACTS's approximate index, the
            study's reference; one Python call per item and query), ``kdtree`` (exact, one
            batched scipy ``cKDTree`` query for all) or ``faiss`` (exact, one batched
            ``IndexFlatL2`` search). ``nTrees``, ``annoySeed`` and ``searchK`` are Annoy's.
    """

    bucketSize: int = 300
    f: int = 2
    nTrees: int | None = 1
    zBins: int = 10
    phiBins: int = 90
    layerRMin: float = 25.0
    layerRMax: float = 40.0
    layerZMin: float = -550.0
    layerZMax: float = 550.0
    etaScale: float = 0.05
    annoySeed: int = 123456789
    searchK: int = -1
    query: str = "bins"
    binning: str = "z-phi"
    builder: str = "kdtree"

    @classmethod
    def acts(cls, **overrides: object) -> HashingConfig:
        """ACTS's defaults (``HashingAlgorithmConfig`` / ``HashingTrainingConfig``)."""
        base: dict[str, object] = {
            "bucketSize": 10,
            "f": 1,
            "nTrees": None,
            "zBins": 0,
            "phiBins": 50,
            "etaScale": 1.0,
            "query": "points",
            "binning": "auto",
            "builder": "annoy",
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.binning not in ("auto", "z-phi"):
            raise ConfigError(f"hashing parameter binning='{self.binning}': 'auto' or 'z-phi'")
        if self.binning == "z-phi" and (self.zBins < 1 or self.phiBins < 1):
            raise ConfigError("hashing parameter binning='z-phi' needs zBins and phiBins > 0")
        if self.builder not in BUILDERS:
            raise ConfigError(
                f"hashing parameter builder='{self.builder}': one of {', '.join(BUILDERS)}"
            )
        if self.query not in ("points", "bins"):
            raise ConfigError(f"hashing parameter query='{self.query}': 'points' or 'bins'")
        if self.bucketSize < 1:
            raise ConfigError(f"hashing parameter bucketSize={self.bucketSize}: must be >= 1")
        if self.f not in (1, 2):
            raise ConfigError(f"hashing parameter f={self.f}: 1 (phi) or 2 (phi, eta)")
        if self.zBins < 0 or self.phiBins < 0 or (self.zBins == 0 and self.phiBins == 0):
            raise ConfigError("hashing parameters zBins / phiBins: one must be positive")
        if self.nTrees is not None and self.nTrees < 1:
            raise ConfigError(f"hashing parameter nTrees={self.nTrees}: must be >= 1")
        if self.layerRMin > self.layerRMax or self.layerZMin > self.layerZMax:
            raise ConfigError("hashing parameters layer{R,Z}{Min,Max}: empty query layer")
        if self.annoySeed <= 0:
            raise ConfigError("hashing parameter annoySeed: must be positive (as ACTS)")

    @property
    def n_trees(self) -> int:
        """Trees actually built."""
        return self.nTrees if self.nTrees is not None else 2 * self.f

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly."""
        return asdict(self)


def hashing_features(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, config: HashingConfig
) -> np.ndarray:
    """Annoy feature vectors ``(n, 2 or 3)`` (float32) of space points."""
    phi = np.arctan2(y, x).astype(np.float64)
    cols = [np.cos(phi), np.sin(phi)]
    if config.f == 2:
        r = np.hypot(x, y).astype(np.float64)
        cols.append(config.etaScale * np.arcsinh(z.astype(np.float64) / np.maximum(r, 1e-9)))
    return np.column_stack(cols).astype(np.float32)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: the Annoy calls create ~10^5 short-lived lists,
    which would trigger full collections (tens of ms) that find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _annoy_lists(
    feats: np.ndarray, query: np.ndarray, centres: np.ndarray | None, config: HashingConfig
) -> list[np.ndarray]:
    """Neighbour lists through Annoy (approximate; one Python call per item and query)."""
    from annoy import AnnoyIndex

    index = AnnoyIndex(feats.shape[1], "euclidean")
    index.set_seed(int(config.annoySeed))
    for i, v in enumerate(feats.tolist()):  # Annoy has no bulk insert
        index.add_item(i, v)
    index.build(config.n_trees, n_jobs=1)
    k, search_k = int(config.bucketSize), int(config.searchK)
    if centres is None:
        return [np.asarray(index.get_nns_by_item(int(i), k, search_k), np.int64) for i in query]
    return [np.asarray(index.get_nns_by_vector(c, k, search_k), np.int64) for c in centres.tolist()]


def _batch_lists(feats: np.ndarray, vectors: np.ndarray, config: HashingConfig) -> np.ndarray:
    """Exact neighbour lists ``(n_queries, bucketSize)`` in one batched call: scipy's KD-tree
    (``kdtree``, 2-3 dimensions suit it) or faiss's brute-force L2 index (``faiss``)."""
    k = int(config.bucketSize)
    if config.builder == "kdtree":
        from scipy.spatial import cKDTree

        tree = cKDTree(feats, leafsize=32, balanced_tree=False, compact_nodes=False)
        return np.asarray(tree.query(vectors, k, workers=1)[1], np.int64).reshape(-1, k)
    import faiss

    index = faiss.IndexFlatL2(feats.shape[1])
    index.add(np.ascontiguousarray(feats, np.float32))
    return index.search(np.ascontiguousarray(vectors, np.float32), k)[1].astype(np.int64)


@numba.njit(cache=True)
def _merge_bucket_lists(
    bins_a: np.ndarray, rows_a: np.ndarray, bins_b: np.ndarray, rows_b: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Union of two membership lists, each sorted by bin: ``(bucket id, row)`` pairs, each
    once, bucket ids 0..B-1 in bin order. One pass with a per-row stamp instead of sorting
    ~10^5 pairs (which cost more than the neighbour search)."""
    stamp = np.full(n, -1, np.int64)
    out_bucket = np.empty(len(bins_a) + len(bins_b), np.int64)
    out_row = np.empty(len(bins_a) + len(bins_b), np.int64)
    i = j = c = 0
    bucket, last = -1, -1
    while i < len(bins_a) or j < len(bins_b):
        if j >= len(bins_b) or (i < len(bins_a) and bins_a[i] <= bins_b[j]):
            b, r = bins_a[i], rows_a[i]
            i += 1
        else:
            b, r = bins_b[j], rows_b[j]
            j += 1
        if b != last:
            bucket += 1
            last = b
        if stamp[r] != bucket:
            stamp[r] = bucket
            out_bucket[c] = bucket
            out_row[c] = r
            c += 1
    return out_bucket[:c], out_row[:c]


def compute_buckets(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    candidates: np.ndarray,
    config: HashingConfig,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Buckets of space points.

    Args:
        x, y, z: all space points (float32).
        candidates: rows that may enter buckets (those inside the seeding grid).
        config: hashing parameters.

    Returns:
        ``(bucket_id, row)`` membership pairs (each pair once, bucket ids 0..B-1 without
        gaps) and timings (``neighbours``: index build and queries, ``buckets`` seconds).
    """
    with _no_gc():
        t0 = time.perf_counter()
        candidates = np.asarray(candidates, np.int64)
        feats = hashing_features(x[candidates], y[candidates], z[candidates], config)
        xc, yc, zc = x[candidates], y[candidates], z[candidates]
        r2 = xc.astype(np.float64) ** 2 + yc.astype(np.float64) ** 2
        in_layer = (
            (r2 >= config.layerRMin**2)
            & (r2 <= config.layerRMax**2)
            & (zc >= config.layerZMin)
            & (zc <= config.layerZMax)
        )
        query = np.flatnonzero(in_layer)
        zsize = (config.layerZMax - config.layerZMin) / max(config.zBins, 1)
        zbin = np.clip(
            ((zc[query] - config.layerZMin + 0.5 * zsize) / zsize).astype(np.int64),
            0,
            max(config.zBins - 1, 0),
        )
        phi = np.arctan2(yc[query], xc[query]).astype(np.float64)
        pbins = max(config.phiBins, 1)
        pbin = np.clip(((phi + np.pi) / (2 * np.pi / pbins)).astype(np.int64), 0, pbins - 1)
        if config.binning == "z-phi":
            qbin, nbins = zbin * pbins + pbin, config.zBins * pbins
        elif config.zBins > 0:
            qbin, nbins = zbin, config.zBins
        else:
            qbin, nbins = pbin, pbins
        # Query points in bin order: every neighbour list below then comes out grouped by
        # bin, as the merge wants.
        qbin = np.clip(qbin, 0, nbins - 1)
        by_bin = np.argsort(qbin, kind="stable")
        query, qbin = query[by_bin], qbin[by_bin]
        n, k = len(candidates), int(config.bucketSize)
        if config.query == "points":
            owner, centres = qbin, None
        else:
            owner, inverse = np.unique(qbin, return_inverse=True)
            sums = np.zeros((len(owner), feats.shape[1]))
            np.add.at(sums, inverse, feats[query].astype(np.float64))
            centres = sums / np.bincount(inverse, minlength=len(owner))[:, None]
        if k >= n:
            # Every neighbour list is every item: no need to ask the index.
            used = np.unique(owner)
            flat, owner_of = np.tile(np.arange(n), len(used)), np.repeat(used, n)
        elif config.builder == "annoy":
            lists = _annoy_lists(feats, query, centres, config)
            lengths = np.fromiter((len(v) for v in lists), np.int64, count=len(lists))
            flat = np.concatenate(lists) if lists else np.zeros(0, np.int64)
            owner_of = np.repeat(owner, lengths)
        else:
            vectors = feats[query] if centres is None else centres.astype(np.float32)
            flat = _batch_lists(feats, vectors, config).ravel()
            owner_of = np.repeat(owner, k)
        t_nn = time.perf_counter()
        # A query point is in its own bucket: merge both lists bin by bin, each pair once.
        bucket_id, row = _merge_bucket_lists(owner_of, flat, qbin, query, n)
    t3 = time.perf_counter()
    timings = {"neighbours": t_nn - t0, "buckets": t3 - t_nn}
    return bucket_id.astype(np.int64), candidates[row], timings


def merge_seeds(seeds: Seeds, n_points: int) -> Seeds:
    """Drop repeated triplets, keeping the highest-quality copy; canonical order."""
    if len(seeds) == 0:
        return seeds
    sp = seeds.sp
    key = (sp[:, 0] * n_points + sp[:, 1]) * n_points + sp[:, 2]
    order = np.lexsort((-seeds.quality, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    keep = order[first]
    return Seeds(sp[keep], seeds.quality[keep], seeds.z_vertex[keep], seeds.timings)


def find_seeds_hashing(
    spacepoints: pd.DataFrame,
    config: SeedingConfig | None = None,
    hashing: HashingConfig | None = None,
) -> Seeds:
    """Triplet seeds found inside hashing buckets, merged without duplicates.

    Args:
        spacepoints: ``x, y, z, var_r, var_z`` per space point.
        config: seeding configuration (default: physmon), used in every bucket.
        hashing: bucketing parameters (default :class:`HashingConfig`).

    Returns:
        :class:`~lhcml.seeding.finder.Seeds` (rows into ``spacepoints``, sorted by
        bottom, middle, top); ``timings`` adds ``neighbours`` (index build and queries),
        ``buckets`` and ``n_buckets`` / ``bucket_entries`` counts.
    """
    config = config or SeedingConfig.physmon()
    hashing = hashing or HashingConfig()
    c0 = time.process_time()
    t0 = time.perf_counter()
    x, y, z, var_r, var_z = spacepoint_arrays(spacepoints)
    binning = binning_for(config)
    in_grid = np.flatnonzero(binning.bin_of(x, y, z, np.hypot(x, y)) >= 0)
    bucket_id, rows, timings = compute_buckets(x, y, z, in_grid, hashing)
    t1 = time.perf_counter()
    grid = fill_grid(binning, config, x, y, z, var_r, var_z, groups=(bucket_id, rows))
    t2 = time.perf_counter()
    seeds = run_kernel(grid, binning, config)
    t3 = time.perf_counter()
    seeds = merge_seeds(seeds, len(x))
    t4 = time.perf_counter()
    seeds.timings = {
        **timings,
        "hashing": t1 - t0,
        "grid": t2 - t1,
        "kernel": t3 - t2,
        "merge": t4 - t3,
        "total": t4 - t0,
        "cpu": time.process_time() - c0,
        "n_buckets": float(bucket_id.max() + 1 if len(bucket_id) else 0),
        "bucket_entries": float(len(rows)),
    }
    return seeds
