"""Track candidates: lists of hits to fit, from truth, from a track finder, or corrupted.

A :class:`Candidates` holds many candidates as flat per-hit arrays plus ``offsets``
(candidate ``i`` owns hits ``offsets[i]:offsets[i+1]``), hits ordered inside out (by
distance from the origin). Per candidate it keeps the truth that training and
evaluation need: the majority particle, its true perigee parameters
(:mod:`lhcml.fitting.targets`), and per hit whether it belongs to that particle.

**Labels** (the ATLAS rule of :mod:`lhcml.metrics.tracking`): a candidate is *real* when
its majority particle holds more than half of its hits, otherwise *fake*; a hit
*belongs* when its particle is the candidate's majority particle.

**Sources**:

- :func:`truth_candidates`: the hits of each selected particle (the GNN chain's output
  will replace these once it exists; :func:`from_assignment` reads any finder's
  ``hit_id, track_id`` output).
- :func:`corrupt_candidates`: what a track finder gets wrong, made from truth
  candidates with the event's other hits: *contaminated* (1-3 hits replaced by, or
  added from, the nearest hit of another particle on the same layer), *merged* (the
  inner part of one track joined to the outer part of a neighbouring track, or the
  union of both), *dropped* (1-3 hits removed) and *fake* (60-100 % of the hits
  replaced by other particles' hits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from lhcml.data.event import Event
from lhcml.errors import InputError
from lhcml.fitting.targets import BFIELD, PARAMS, truth_targets

#: Candidate kinds.
KINDS: tuple[str, ...] = ("truth", "contaminated", "merged", "dropped", "fake", "found")
KIND_CODE = {k: i for i, k in enumerate(KINDS)}

_HIT_FIELDS = ("xyz", "volume", "layer", "module", "hit_id", "hit_particle")
_CAND_FIELDS = (
    "event_id",
    "particle_id",
    "kind",
    "n_major",
    "targets",
    "pt",
    "eta",
    "track_id",
)


@dataclass
class Candidates:
    """Many candidates in flat arrays (see the module docstring).

    Attributes:
        xyz: (N, 3) float64 hit positions [mm].
        volume, layer, module: (N,) int32 hit geometry ids.
        hit_id: (N,) int64 hit ids in their event.
        hit_particle: (N,) int64 true particle of each hit (0: noise / unknown).
        offsets: (n + 1,) int64 candidate boundaries.
        event_id: (n,) int64.
        particle_id: (n,) int64 majority particle (0: none).
        kind: (n,) int8 index into :data:`KINDS`.
        n_major: (n,) int32 hits of the majority particle.
        targets: (n, 5) float64 true perigee ``qopt, theta, phi, d0, z0`` of the
            majority particle (NaN when unknown).
        pt, eta: (n,) float64 true pT and eta of the majority particle (NaN if unknown).
        track_id: (n,) int64 the finder's track id (-1 for made-up candidates).
    """

    xyz: np.ndarray
    volume: np.ndarray
    layer: np.ndarray
    module: np.ndarray
    hit_id: np.ndarray
    hit_particle: np.ndarray
    offsets: np.ndarray
    event_id: np.ndarray
    particle_id: np.ndarray
    kind: np.ndarray
    n_major: np.ndarray
    targets: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    track_id: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """(n,) hits per candidate."""
        return np.diff(self.offsets)

    @property
    def candidate_of_hit(self) -> np.ndarray:
        """(N,) candidate index of every hit."""
        return np.repeat(np.arange(len(self)), self.lengths)

    @property
    def hit_label(self) -> np.ndarray:
        """(N,) bool: the hit belongs to its candidate's majority particle."""
        major = np.repeat(self.particle_id, self.lengths)
        return (self.hit_particle == major) & (major != 0)

    @property
    def is_real(self) -> np.ndarray:
        """(n,) bool: more than half of the hits are the majority particle's."""
        return 2 * self.n_major > self.lengths

    @property
    def is_pure(self) -> np.ndarray:
        """(n,) bool: every hit belongs to the majority particle."""
        return (self.n_major == self.lengths) & (self.particle_id != 0)

    def select(self, index: np.ndarray | Sequence[int]) -> Candidates:
        """The candidates ``index`` (integer indices or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        lengths = self.lengths[index]
        starts = self.offsets[:-1][index]
        rows = (
            np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
            + np.arange(lengths.sum())
            if len(index)
            else np.zeros(0, np.int64)
        )
        hits = {f: getattr(self, f)[rows] for f in _HIT_FIELDS}
        cands = {f: getattr(self, f)[index] for f in _CAND_FIELDS}
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Candidates(offsets=offsets, **hits, **cands)

    def with_hits(self, keep: np.ndarray) -> Candidates:
        """The same candidates with only the hits where ``keep`` (N,) is True; the
        majority counts are recomputed from the remaining hits."""
        keep = np.asarray(keep, dtype=bool)
        cand = self.candidate_of_hit[keep]
        lengths = np.bincount(cand, minlength=len(self))
        hits = {f: getattr(self, f)[keep] for f in _HIT_FIELDS}
        cands = {f: getattr(self, f).copy() for f in _CAND_FIELDS}
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        out = Candidates(offsets=offsets, **hits, **cands)
        major = np.repeat(out.particle_id, lengths)
        out.n_major = np.bincount(
            cand, weights=(hits["hit_particle"] == major) & (major != 0), minlength=len(self)
        ).astype(np.int32)
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field by name (for ``np.savez``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` file atomically."""
        from lhcml.io.atomic import write_atomic

        def write(p: Path) -> None:
            with open(p, "wb") as fh:
                np.savez(fh, **self.to_arrays())

        return write_atomic(Path(path), write)

    @classmethod
    def load(cls, path: str | Path) -> Candidates:
        """Read a file written by :meth:`save`.

        Raises:
            InputError: the file is missing or lacks a field.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError("candidate file not found", path=path)
        with np.load(path, allow_pickle=False) as data:
            missing = [f.name for f in fields(cls) if f.name not in data.files]
            if missing:
                raise InputError(f"not a candidate file: lacks {missing}", path=path)
            return cls(**{f.name: data[f.name] for f in fields(cls)})

    @classmethod
    def concat(cls, parts: Iterable[Candidates]) -> Candidates:
        """Candidates of ``parts`` one after the other."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return empty()
        out = {
            f: np.concatenate([getattr(p, f) for p in parts]) for f in _HIT_FIELDS + _CAND_FIELDS
        }
        lengths = np.concatenate([p.lengths for p in parts])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(offsets=offsets, **out)


def empty() -> Candidates:
    """No candidates."""
    z = np.zeros(0)
    zi = np.zeros(0, np.int64)
    return Candidates(
        xyz=np.zeros((0, 3)),
        volume=zi.astype(np.int32),
        layer=zi.astype(np.int32),
        module=zi.astype(np.int32),
        hit_id=zi,
        hit_particle=zi,
        offsets=np.zeros(1, np.int64),
        event_id=zi,
        particle_id=zi,
        kind=zi.astype(np.int8),
        n_major=zi.astype(np.int32),
        targets=np.zeros((0, 5)),
        pt=z,
        eta=z,
        track_id=zi,
    )


@dataclass(frozen=True)
class TruthSelection:
    """Which particles become truth candidates.

    Attributes:
        pt_min, pt_max: true pT range [GeV].
        eta_max: maximum |eta|.
        min_hits: minimum number of hits.
        primary_only: only primary particles.
        max_hits: keep at most this many (innermost) hits.
    """

    pt_min: float = 0.5
    pt_max: float = 1e9
    eta_max: float = 2.5
    min_hits: int = 7
    primary_only: bool = True
    max_hits: int = 32


def _event_hits(event: Event) -> pd.DataFrame:
    if event.truth is None or event.particles is None:
        raise InputError(f"event {event.event_id} has no truth: truth candidates need it")
    hits = event.hits.merge(event.truth[["hit_id", "particle_id"]], on="hit_id", how="left")
    hits["particle_id"] = hits["particle_id"].fillna(0).astype(np.int64)
    return hits


def _from_groups(
    event: Event,
    hits: pd.DataFrame,
    rows: np.ndarray,
    group: np.ndarray,
    kind: np.ndarray,
    targets: pd.DataFrame | None,
    track_id: np.ndarray | None = None,
    max_hits: int = 10_000,
) -> Candidates:
    """Candidates from hit rows grouped by ``group`` (0..n-1), hits sorted inside out."""
    xyz = hits[["x", "y", "z"]].to_numpy(np.float64)[rows]
    dist = np.sqrt((xyz**2).sum(axis=1))
    order = np.lexsort((dist, group))
    rows, group, xyz = rows[order], group[order], xyz[order]
    n = int(group.max()) + 1 if len(group) else 0
    rank = np.arange(len(group)) - np.searchsorted(group, group)
    keep = rank < max_hits
    rows, group, xyz = rows[keep], group[keep], xyz[keep]
    lengths = np.bincount(group, minlength=n)
    hp = hits["particle_id"].to_numpy(np.int64)[rows]
    # Majority particle per candidate (noise excluded; ties: smaller id).
    real = hp != 0
    pairs = pd.DataFrame({"g": group[real], "p": hp[real]}).value_counts().reset_index()
    pairs = pairs.sort_values(["g", "count", "p"], ascending=[True, False, True])
    first = pairs.drop_duplicates("g")
    major = np.zeros(n, np.int64)
    n_major = np.zeros(n, np.int32)
    major[first["g"].to_numpy()] = first["p"].to_numpy()
    n_major[first["g"].to_numpy()] = first["count"].to_numpy()
    if targets is None:
        targets = truth_targets(event.particles) if event.particles is not None else None
    if targets is not None:
        t = targets.set_index("particle_id").reindex(major)
        tv = t[list(PARAMS)].to_numpy(np.float64)
        pt = t["pt"].to_numpy(np.float64)
        eta = t["eta"].to_numpy(np.float64)
    else:
        tv = np.full((n, 5), np.nan)
        pt = eta = np.full(n, np.nan)
    return Candidates(
        xyz=xyz,
        volume=hits["volume_id"].to_numpy(np.int32)[rows],
        layer=hits["layer_id"].to_numpy(np.int32)[rows],
        module=hits["module_id"].to_numpy(np.int32)[rows],
        hit_id=hits["hit_id"].to_numpy(np.int64)[rows],
        hit_particle=hp,
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        event_id=np.full(n, event.event_id, np.int64),
        particle_id=major,
        kind=np.asarray(kind, np.int8),
        n_major=n_major,
        targets=tv,
        pt=pt,
        eta=eta,
        track_id=np.full(n, -1, np.int64) if track_id is None else np.asarray(track_id, np.int64),
    )


def truth_candidates(
    event: Event, selection: TruthSelection | None = None, *, bfield: float = BFIELD
) -> Candidates:
    """One candidate per selected particle: its hits, inside out.

    Args:
        event: an event with truth.
        selection: which particles (default :class:`TruthSelection`).
        bfield: field [T] for the true perigee parameters.

    Raises:
        InputError: the event has no truth.
    """
    sel = selection or TruthSelection()
    hits = _event_hits(event)
    targets = truth_targets(event.particles, bfield)
    particles = event.particles
    pid = particles["particle_id"].to_numpy(np.int64)
    counts = hits.loc[hits["particle_id"] != 0, "particle_id"].value_counts()
    nh = counts.reindex(pid).fillna(0).to_numpy()
    ok = (
        (particles["q"].to_numpy() != 0)
        & (targets["pt"].to_numpy() >= sel.pt_min)
        & (targets["pt"].to_numpy() <= sel.pt_max)
        & (np.abs(targets["eta"].to_numpy()) <= sel.eta_max)
        & (nh >= sel.min_hits)
    )
    if sel.primary_only and "primary" in particles.columns:
        ok &= particles["primary"].to_numpy(bool)
    chosen = np.sort(pid[ok])
    hp = hits["particle_id"].to_numpy(np.int64)
    rows = np.flatnonzero(np.isin(hp, chosen))
    group = np.searchsorted(chosen, hp[rows])
    kind = np.full(len(chosen), KIND_CODE["truth"])
    return _from_groups(event, hits, rows, group, kind, targets, max_hits=sel.max_hits)


def from_assignment(event: Event, assignment: pd.DataFrame, *, max_hits: int = 64) -> Candidates:
    """Candidates from a track finder's ``hit_id, track_id`` table (``track_id < 0``:
    unassigned). Truth labels are filled when the event has truth.

    Raises:
        InputError: a column is missing or a hit id is unknown.
    """
    for col in ("hit_id", "track_id"):
        if col not in assignment.columns:
            raise InputError(f"track assignment lacks column '{col}'", column=col)
    hits = (
        _event_hits(event)
        if event.truth is not None
        else event.hits.assign(particle_id=np.zeros(len(event.hits), np.int64))
    )
    a = assignment[assignment["track_id"].to_numpy() >= 0]
    rows = pd.Index(hits["hit_id"].to_numpy()).get_indexer(a["hit_id"].to_numpy())
    if (rows < 0).any():
        raise InputError("assignment holds hit ids not in the event", column="hit_id")
    tid, group = np.unique(a["track_id"].to_numpy(np.int64), return_inverse=True)
    kind = np.full(len(tid), KIND_CODE["found"])
    targets = truth_targets(event.particles) if event.particles is not None else None
    return _from_groups(event, hits, rows, group, kind, targets, track_id=tid, max_hits=max_hits)


@dataclass(frozen=True)
class Corruption:
    """How many corrupted candidates to make, as fractions of the truth candidates.

    Attributes:
        contaminated, merged, dropped, fake: fractions of the truth candidates that get
            a corrupted copy of each kind.
        max_wrong: at most this many wrong hits in a contaminated candidate.
    """

    contaminated: float = 0.3
    merged: float = 0.1
    dropped: float = 0.1
    fake: float = 0.2
    max_wrong: int = 3


class _Neighbours:
    """Nearest hits of other particles, preferably on the same layer."""

    def __init__(self, hits: pd.DataFrame) -> None:
        from scipy.spatial import cKDTree

        self.xyz = hits[["x", "y", "z"]].to_numpy(np.float64)
        self.pid = hits["particle_id"].to_numpy(np.int64)
        self.layer_key = (hits["volume_id"].to_numpy(np.int64) << 16) | hits["layer_id"].to_numpy(
            np.int64
        )
        self.tree = cKDTree(self.xyz)

    def wrong(
        self,
        rows: np.ndarray,
        particle: np.ndarray,
        k: int = 12,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """For each hit row, the nearest hit of another particle (same layer first); with
        ``rng``, a random one of the ``k`` nearest such hits instead (fakes mix
        particles)."""
        k = min(k, len(self.xyz))
        _, nb = self.tree.query(self.xyz[rows], k=k)
        nb = nb.reshape(len(rows), k)
        other = self.pid[nb] != particle[:, None]
        same = other & (self.layer_key[nb] == self.layer_key[rows][:, None])
        if rng is not None:
            # Random priorities among the allowed neighbours.
            noise = rng.random(nb.shape)
            pick_same = np.argmax(np.where(same, noise + 1.0, 0.0), axis=1)
            pick_other = np.argmax(np.where(other, noise + 1.0, 0.0), axis=1)
        else:
            pick_same = np.argmax(same, axis=1)
            pick_other = np.argmax(other, axis=1)
        choice = np.where(same.any(axis=1), pick_same, pick_other)
        out = nb[np.arange(len(rows)), choice]
        return np.where(other.any(axis=1), out, -1)


def corrupt_candidates(
    event: Event,
    truth: Candidates,
    rng: np.random.Generator,
    corruption: Corruption | None = None,
) -> Candidates:
    """Corrupted copies of the truth candidates of one event (see the module docstring).

    Args:
        event: the event the candidates come from (its other hits are the wrong ones).
        truth: truth candidates of this event (:func:`truth_candidates`).
        rng: random generator.
        corruption: fractions of each kind.

    Returns:
        The corrupted candidates only (truth not included), labels recomputed.
    """
    c = corruption or Corruption()
    n = len(truth)
    if n == 0:
        return empty()
    hits = _event_hits(event)
    row_of = pd.Index(hits["hit_id"].to_numpy())
    nb = _Neighbours(hits)
    groups: list[np.ndarray] = []
    kinds: list[int] = []
    lengths = truth.lengths
    cand_rows = [
        row_of.get_indexer(truth.hit_id[truth.offsets[i] : truth.offsets[i + 1]]) for i in range(n)
    ]
    r_hits = np.hypot(hits["x"].to_numpy(), hits["y"].to_numpy())

    def pick(frac: float) -> np.ndarray:
        return rng.choice(n, size=min(n, round(frac * n)), replace=False)

    for i in pick(c.contaminated):
        rows = cand_rows[i]
        n_wrong = int(rng.integers(1, c.max_wrong + 1))
        n_wrong = max(1, min(n_wrong, (lengths[i] - 1) // 2))
        at = rng.choice(len(rows), size=n_wrong, replace=False)
        wrong = nb.wrong(rows[at], np.full(n_wrong, truth.particle_id[i]))
        wrong = wrong[wrong >= 0]
        if len(wrong) == 0:
            continue
        if rng.random() < 0.5:
            keep = np.ones(len(rows), bool)
            keep[at[: len(wrong)]] = False
            new = np.concatenate([rows[keep], wrong])
        else:
            new = np.concatenate([rows, wrong])
        groups.append(np.unique(new))
        kinds.append(KIND_CODE["contaminated"])
    # Merged: join with the nearest other truth candidate in (eta, phi).
    eta = truth.eta
    phi = truth.targets[:, 2]
    for i in pick(c.merged):
        dphi = np.abs(np.angle(np.exp(1j * (phi - phi[i]))))
        dist = np.hypot(eta - eta[i], dphi)
        dist[i] = np.inf
        j = int(np.argmin(dist))
        if not np.isfinite(dist[j]):
            continue
        a, b = cand_rows[i], cand_rows[j]
        if rng.random() < 0.5:
            split = np.median(r_hits[a])
            new = np.concatenate([a[r_hits[a] < split], b[r_hits[b] >= split]])
        else:
            new = np.concatenate([a, b])
        groups.append(np.unique(new))
        kinds.append(KIND_CODE["merged"])
    for i in pick(c.dropped):
        rows = cand_rows[i]
        n_drop = int(rng.integers(1, 4))
        if lengths[i] - n_drop < 5:
            continue
        keep = np.ones(len(rows), bool)
        keep[rng.choice(len(rows), size=n_drop, replace=False)] = False
        groups.append(rows[keep])
        kinds.append(KIND_CODE["dropped"])
    for i in pick(c.fake):
        rows = cand_rows[i]
        frac = rng.uniform(0.6, 1.0)
        n_wrong = max(1, int(np.ceil(frac * len(rows))))
        at = rng.choice(len(rows), size=n_wrong, replace=False)
        wrong = nb.wrong(rows[at], np.full(n_wrong, truth.particle_id[i]), k=30, rng=rng)
        keep = np.ones(len(rows), bool)
        keep[at[wrong >= 0]] = False
        new = np.unique(np.concatenate([rows[keep], wrong[wrong >= 0]]))
        if len(new) >= 3:
            groups.append(new)
            kinds.append(KIND_CODE["fake"])
    if not groups:
        return empty()
    rows = np.concatenate(groups)
    group = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    out = _from_groups(event, hits, rows, group, np.array(kinds), None)
    return out
