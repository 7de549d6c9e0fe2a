"""Jet Parquet files -> padded tensors and masks for the taggers.

Jets are held jagged in memory (one flat array of constituents plus offsets) and padded
per batch to the longest jet of the batch, so a batch of 60-constituent jets costs a
60-long sequence, not ``max_particles``. A batch is a dict of tensors:

- ``x``: ``(B, L, C)`` standardised particle features (:data:`PARTICLE_FEATURES`),
- ``v``: ``(B, L, 4)`` four-momenta ``px, py, pz, E`` [GeV] (for pair features),
- ``mask``: ``(B, L)`` bool, True for real constituents (padding is zero and False),
- ``label``: ``(B,)`` class index (position of the process in ``classes``).

Splits are deterministic and by event: a jet goes to train / val / test from a hash of
``(label, event_id)``, so both jets of one event always land in the same split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import ConfigError, InputError
from lhcml.jets.config import LABELS
from lhcml.jets.writer import list_chunks

#: Particle features fed to the networks (ParT's kinematic + particle-type inputs of
#: JetClass, without impact parameters), after :data:`STANDARDISE`.
PARTICLE_FEATURES: tuple[str, ...] = (
    "part_deta",
    "part_dphi",
    "part_pt_log",
    "part_e_log",
    "part_logptrel",
    "part_logerel",
    "part_deltaR",
    "part_charge",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
)
#: ``(centre, scale)``: feature -> ``clip((x - centre) * scale, -5, 5)``, the values of
#: weaver's JetClass configuration (jets of pT 500-1000 GeV).
STANDARDISE: dict[str, tuple[float, float]] = {
    "part_pt_log": (1.7, 0.7),
    "part_e_log": (2.0, 0.7),
    "part_logptrel": (-4.7, 0.7),
    "part_logerel": (-4.7, 0.7),
    "part_deltaR": (0.2, 4.0),
}
#: Per-jet columns kept for the substructure baseline and plots.
JET_COLUMNS: tuple[str, ...] = (
    "jet_pt",
    "jet_eta",
    "jet_mass",
    "jet_sdmass",
    "jet_nparticles",
    "jet_tau1",
    "jet_tau2",
    "jet_tau3",
)
_READ_PARTICLES = (
    "part_px",
    "part_py",
    "part_pz",
    "part_energy",
    "part_deta",
    "part_dphi",
    "part_charge",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
)
SPLITS = ("train", "val", "test")


def split_of(label: np.ndarray, event_id: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) of each jet from a hash of its event.

    Args:
        label: ``(n,)`` process labels.
        event_id: ``(n,)`` event numbers.
        fractions: ``(train, val, test)`` fractions summing to 1.
    """
    # splitmix64 of (label, event): uniform in [0, 1), the same on every machine.
    with np.errstate(over="ignore"):
        z = event_id.astype(np.uint64) * np.uint64(4) + label.astype(np.uint64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    edges = np.cumsum(fractions)[:-1]
    return np.searchsorted(edges, u, side="right")


def particle_features(
    cols: dict[str, np.ndarray], jet_pt: np.ndarray, jet_energy: np.ndarray, jet_of: np.ndarray
) -> np.ndarray:
    """Standardised :data:`PARTICLE_FEATURES` of flat constituents, ``(n, C)`` float32."""
    pt = np.hypot(cols["part_px"], cols["part_py"])
    energy = cols["part_energy"]
    tiny = np.float32(1e-8)
    feats = {
        "part_deta": cols["part_deta"],
        "part_dphi": cols["part_dphi"],
        "part_pt_log": np.log(np.maximum(pt, tiny)),
        "part_e_log": np.log(np.maximum(energy, tiny)),
        "part_logptrel": np.log(np.maximum(pt / jet_pt[jet_of], tiny)),
        "part_logerel": np.log(np.maximum(energy / jet_energy[jet_of], tiny)),
        "part_deltaR": np.hypot(cols["part_deta"], cols["part_dphi"]),
    }
    out = np.empty((len(pt), len(PARTICLE_FEATURES)), dtype=np.float32)
    for k, name in enumerate(PARTICLE_FEATURES):
        x = feats[name] if name in feats else cols[name]
        if name in STANDARDISE:
            c, s = STANDARDISE[name]
            x = np.clip((x - c) * s, -5.0, 5.0)
        out[:, k] = x
    return out


@dataclass
class JetData:
    """Jets in memory: jagged constituents, labels and per-jet observables.

    Attributes:
        features: ``(n_particles, C)`` standardised particle features (float32).
        vectors: ``(n_particles, 4)`` ``px, py, pz, E`` (float32).
        offsets: ``(n_jets + 1,)`` start of each jet's constituents.
        labels: ``(n_jets,)`` class index in ``classes``.
        classes: the process names of the class indices.
        jets: per-jet columns (:data:`JET_COLUMNS`, float64/int64).
        event_id: ``(n_jets,)`` event numbers.
    """

    features: np.ndarray
    vectors: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    jets: dict[str, np.ndarray] = field(default_factory=dict)
    event_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, index: np.ndarray) -> JetData:
        """The jets at ``index`` (in that order), as a new compact :class:`JetData`."""
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = _ranges(self.offsets[index], lengths)
        return JetData(
            features=self.features[flat],
            vectors=self.vectors[flat],
            offsets=offsets,
            labels=self.labels[index],
            classes=self.classes,
            jets={k: v[index] for k, v in self.jets.items()},
            event_id=self.event_id[index],
        )

    def batch(self, index: np.ndarray | Sequence[int], pad_to: int | None = None) -> dict[str, Any]:
        """Padded tensors of the jets at ``index`` (see the module docstring).

        Args:
            index: jet indices.
            pad_to: sequence length (default: the longest jet of the batch).
        """
        import torch

        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        length = int(lengths.max(initial=1)) if pad_to is None else int(pad_to)
        pos = np.arange(length)
        mask = pos[None, :] < lengths[:, None]
        gather = np.where(mask, self.offsets[index][:, None] + pos[None, :], 0)
        x = self.features[gather]
        v = self.vectors[gather]
        x[~mask] = 0.0
        v[~mask] = 0.0
        return {
            "x": torch.from_numpy(x),
            "v": torch.from_numpy(v),
            "mask": torch.from_numpy(mask),
            "label": torch.from_numpy(self.labels[index]),
        }


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each ``(s, n)`` (vectorised)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    jet_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total) - jet_start)


def read_jets(
    paths: str | Path | Sequence[str | Path],
    classes: Sequence[str] = ("qcd", "top"),
    *,
    max_particles: int = 128,
    split: str | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    max_jets_per_class: int | None = None,
) -> JetData:
    """Read jet Parquet files into a :class:`JetData`.

    Args:
        paths: sample directories, files or globs (:func:`lhcml.jets.writer.list_chunks`).
        classes: process names; class ``k`` is ``classes[k]``; other jets are dropped.
        max_particles: constituents kept per jet (the first, i.e. highest pT, ones).
        split: ``train``, ``val``, ``test`` or None (all jets).
        fractions: the ``(train, val, test)`` fractions of :func:`split_of`.
        max_jets_per_class: keep at most this many jets of each class (the first ones
            in file order, after the split).

    Returns:
        The jets, in file order.

    Raises:
        InputError: unreadable files or missing columns.
        ConfigError: unknown classes or split, bad fractions.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    unknown = [c for c in classes if c not in LABELS]
    if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ConfigError(
            f"classes: need >= 2 distinct processes of {', '.join(LABELS)}, got {list(classes)}"
        )
    if split is not None and split not in SPLITS:
        raise ConfigError(f"split: unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"split fractions: need three fractions summing to 1, got {fractions}")
    if max_particles < 1:
        raise ConfigError(f"max_particles: must be >= 1, got {max_particles}")
    label_to_class = {LABELS[c]: k for k, c in enumerate(classes)}
    columns = [*_READ_PARTICLES, *JET_COLUMNS, "jet_energy", "label", "event_id"]
    parts: list[JetData] = []
    for path in list_chunks(paths):
        try:
            table = pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowInvalid, KeyError) as e:
            raise InputError(f"cannot read jet columns: {e}", path=path) from e
        parts.append(_from_table(table, path, label_to_class, classes, max_particles))
    return select(_concat(parts, classes), split, fractions, max_jets_per_class)


def select(
    data: JetData,
    split: str | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    max_jets_per_class: int | None = None,
) -> JetData:
    """The jets of one split (:func:`split_of`), at most ``max_jets_per_class`` per class
    (the first ones), in their order."""
    keep = np.ones(len(data), dtype=bool)
    if split is not None:
        raw = np.array([LABELS[c] for c in data.classes])[data.labels]
        keep &= split_of(raw, data.event_id, fractions) == SPLITS.index(split)
    if max_jets_per_class is not None:
        for k in range(len(data.classes)):
            idx = np.flatnonzero(keep & (data.labels == k))
            keep[idx[max_jets_per_class:]] = False
    return data if keep.all() else data.subset(np.flatnonzero(keep))


def _from_table(
    table: Any,
    path: Path,
    label_to_class: dict[int, int],
    classes: Sequence[str],
    max_particles: int,
) -> JetData:
    import pyarrow as pa

    def flat(name: str) -> tuple[np.ndarray, np.ndarray]:
        col = table.column(name).combine_chunks()
        if not pa.types.is_list(col.type):
            raise InputError("expected a list column", path=path, column=name)
        offsets = col.offsets.to_numpy().astype(np.int64)
        values = col.values.to_numpy(zero_copy_only=False).astype(np.float32)
        return offsets, values[offsets[0] :]  # (offsets of a slice may not start at 0)

    label = table.column("label").to_numpy().astype(np.int64)
    keep = np.isin(label, list(label_to_class))
    offsets, _ = flat("part_px")
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    if np.any(lengths[keep] == 0):
        raise InputError("a jet without constituents", path=path, column="part_px")
    cols = {name: flat(name)[1] for name in _READ_PARTICLES}
    kept_len = np.minimum(lengths, max_particles)
    kept_len[~keep] = 0
    take = _ranges(offsets[:-1], kept_len)
    jet_of = np.repeat(np.arange(len(label)), kept_len)
    cols = {k: v[take] for k, v in cols.items()}
    jet_pt = table.column("jet_pt").to_numpy().astype(np.float32)
    jet_energy = table.column("jet_energy").to_numpy().astype(np.float32)
    features = particle_features(cols, jet_pt, jet_energy, jet_of)
    vectors = np.stack([cols[c] for c in ("part_px", "part_py", "part_pz", "part_energy")], 1)
    new_offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(kept_len[keep], out=new_offsets[1:])
    return JetData(
        features=features,
        vectors=vectors.astype(np.float32),
        offsets=new_offsets,
        labels=np.vectorize(label_to_class.__getitem__, otypes=[np.int64])(label[keep]),
        classes=tuple(classes),
        jets={c: table.column(c).to_numpy()[keep].astype(np.float64) for c in JET_COLUMNS},
        event_id=table.column("event_id").to_numpy()[keep].astype(np.int64),
    )


def _concat(parts: list[JetData], classes: Sequence[str]) -> JetData:
    if not parts:
        raise InputError("no jets to read")
    offsets = [np.zeros(1, dtype=np.int64)]
    shift = 0
    for p in parts:
        offsets.append(p.offsets[1:] + shift)
        shift += int(p.offsets[-1])
    return JetData(
        features=np.concatenate([p.features for p in parts]),
        vectors=np.concatenate([p.vectors for p in parts]),
        offsets=np.concatenate(offsets),
        labels=np.concatenate([p.labels for p in parts]),
        classes=tuple(classes),
        jets={k: np.concatenate([p.jets[k] for p in parts]) for k in JET_COLUMNS},
        event_id=np.concatenate([p.event_id for p in parts]),
    )


class JetBatchDataset:
    """A map-style torch dataset of jets whose batches are fetched in one call.

    ``torch.utils.data.DataLoader`` calls :meth:`__getitems__` with a batch's indices;
    pass ``collate_fn=collate_batch``.
    """

    def __init__(self, data: JetData) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.data.batch([i])

    def __getitems__(self, index: list[int]) -> dict[str, Any]:
        return self.data.batch(index)


def collate_batch(batch: Any) -> Any:
    """The collate function of :class:`JetBatchDataset` (batches come ready-made)."""
    return batch


class LengthBucketSampler:
    """Batches of jets of similar length, so little of a batch is padding.

    Each epoch: shuffle all jets, cut them into pools of ``pool_batches`` batches, sort
    each pool by length, cut it into batches and shuffle the order of all batches. A
    batch then holds random jets of about the same multiplicity (attention and pair
    costs grow with the square of the longest jet of the batch). Without ``shuffle``:
    jets sorted by length, fixed order.

    Args:
        lengths: ``(n,)`` constituents per jet.
        batch_size: jets per batch.
        shuffle: random batches (training) or a fixed order.
        seed: seed of epoch 0; epoch ``e`` uses ``seed + e``.
        pool_batches: batches per sorting pool (1: plain shuffled batches).
        rank, world_size: with several training processes (DDP), every process draws the
            same batches (same seed) and keeps every ``world_size``-th from ``rank``, the
            same number each (a process with one step more would wait forever in the
            gradient all-reduce), so the processes see disjoint jets.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 32,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.pool = max(1, int(pool_batches)) * self.batch_size
        self.epoch = 0
        self.rank, self.world_size = int(rank), max(1, int(world_size))
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")

    def _n_batches(self) -> int:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            return (n + bs - 1) // bs
        full, rest = divmod(n, self.pool)
        return full * ((self.pool + bs - 1) // bs) + (rest + bs - 1) // bs

    def __len__(self) -> int:
        return self._n_batches() // self.world_size

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The batches (index arrays) of ``epoch``."""
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(n)
        out: list[np.ndarray] = []
        for start in range(0, n, self.pool):
            pool = perm[start : start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            out += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        return [out[i] for i in rng.permutation(len(out))]

    def __iter__(self) -> Any:
        batches = self.batches(self.epoch)
        self.epoch += 1
        if self.world_size > 1:
            batches = batches[self.rank :: self.world_size][: len(self)]
        return iter(b.tolist() for b in batches)


def make_loader(
    data: JetData,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    pool_batches: int = 32,
    rank: int = 0,
    world_size: int = 1,
) -> Any:
    """A ``DataLoader`` over ``data``: in-process, length-bucketed batches
    (:class:`LengthBucketSampler`; ``pool_batches=1``: plain shuffled batches; ``rank`` /
    ``world_size``: this process's share under DDP)."""
    from torch.utils.data import DataLoader

    sampler = LengthBucketSampler(
        data.lengths,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        pool_batches=pool_batches,
        rank=rank,
        world_size=world_size,
    )
    return DataLoader(
        JetBatchDataset(data),  # type: ignore[arg-type]
        batch_sampler=sampler,
        collate_fn=collate_batch,
        num_workers=0,
    )
