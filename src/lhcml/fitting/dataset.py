"""Candidates -> model inputs: per-hit features, references, targets and padded batches.

**Per-hit features** (``FeatureConfig.coords`` selects the coordinates; lengths in m):

- ``xyz``: ``x, y, z``.
- ``rphiz``: ``r, phi / pi, z``.
- ``rdphiz``: ``r, 4 * wrap(phi - phi_first), z`` - azimuth relative to the candidate's
  first (innermost) hit.

Always added: the sine of the angle between the coarse measurement axis and the radial
direction (:func:`lhcml.fitting.geometry.measurement_frames`; 0 in the barrel), and a
detector-layer index (embedded by the model) that tells it the resolution and material.

**Seed** (``FeatureConfig.seed = "helix"``, the default): the helix fit
(:func:`lhcml.fitting.helix.helix_fit_flat`) of the candidate is the *reference*; each hit
also gets its residuals to the seed helix - across the track in x-y and along z - in
units of its resolution, compressed with ``asinh(r / 2)``; the candidate gets the seed
parameters and the residual RMS as global features. The model then predicts the
correction to the seed (``seed = "none"``: a crude reference - straight track from the
first hit - and wide scales; the model regresses the parameters from the coordinates
alone).

**Targets**: ``t = (true - reference) / scale`` per parameter (``phi`` wrapped), with
:data:`SEED_SCALES` / :data:`PLAIN_SCALES`; the q/pT scale of seeded candidates is
relative (1 % of the seed's q/pT plus a floor), so every target is O(1).

**Batches** (:class:`Batches`): candidates sorted by length and cut into batches of
similar length (bucketing: little padding), batch order shuffled per epoch; each batch
is padded to its longest candidate with a boolean mask.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lhcml.errors import ConfigError
from lhcml.fitting import geometry
from lhcml.fitting.candidates import Candidates
from lhcml.fitting.features import helix_features
from lhcml.fitting.targets import BFIELD, wrap_angle

COORDS: tuple[str, ...] = ("xyz", "rphiz", "rdphiz")
SEEDS: tuple[str, ...] = ("helix", "none")
#: Normalisation of the targets with a helix seed: q/pT relative (x |q/pT| + floor),
#: theta, phi [rad], d0, z0 [mm].
SEED_SCALES: tuple[float, ...] = (0.01, 1e-3, 1e-3, 0.03, 0.05)
SEED_QOPT_FLOOR = 2e-4
#: Normalisation without a seed.
PLAIN_SCALES: tuple[float, ...] = (0.5, 0.5, 0.05, 0.05, 50.0)
#: Number of detector-layer ids (embedding size of the model).
N_DETECTOR_IDS = 100


@dataclass(frozen=True)
class FeatureConfig:
    """What the model sees.

    Attributes:
        coords: ``xyz``, ``rphiz`` or ``rdphiz`` (see the module docstring).
        seed: ``helix`` (predict corrections to the helix fit) or ``none``.
        module_frames: take the endcap strips' measurement axes from the Generic
            detector's module table (needs pyacts); otherwise radial.
        bfield: field [T].
    """

    coords: str = "rdphiz"
    seed: str = "helix"
    module_frames: bool = False
    bfield: float = BFIELD

    def validate(self) -> FeatureConfig:
        if self.coords not in COORDS:
            raise ConfigError(f"features.coords: '{self.coords}' not one of {list(COORDS)}")
        if self.seed not in SEEDS:
            raise ConfigError(f"features.seed: '{self.seed}' not one of {list(SEEDS)}")
        return self

    @property
    def n_hit_features(self) -> int:
        return 4 + (2 if self.seed == "helix" else 0)

    @property
    def n_global_features(self) -> int:
        return 8 if self.seed == "helix" else 2

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Encoded:
    """Model inputs of many candidates (flat per hit, see :class:`Candidates`).

    Attributes:
        hit_features: (N, F) float32.
        detector_id: (N,) int64 layer index for the embedding.
        hit_label: (N,) float32 1 if the hit belongs to the majority particle.
        offsets: (n + 1,) int64.
        global_features: (n, G) float32.
        reference, scale: (n, 5) float64: prediction = reference + scale * output.
        target: (n, 5) float32 normalised targets (NaN where unknown).
        reg_weight: (n,) float32 1 for candidates the regression trains on.
        cand_label: (n,) float32 1 for real candidates.
    """

    hit_features: np.ndarray
    detector_id: np.ndarray
    hit_label: np.ndarray
    offsets: np.ndarray
    global_features: np.ndarray
    reference: np.ndarray
    scale: np.ndarray
    target: np.ndarray
    reg_weight: np.ndarray
    cand_label: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def detector_index(volume: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Small integer per (volume, layer) of the Generic layout (0: unknown)."""
    v = geometry.volume_index_table()[np.clip(np.asarray(volume, np.int64), 0, 255)]
    lay = np.clip(np.asarray(layer, np.int64) // 2, 0, 9)
    return np.where(v > 0, v * 10 + lay, 0)


def normalise(params: np.ndarray, reference: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(params - reference) / scale`` with the phi difference wrapped."""
    d = np.asarray(params, np.float64) - reference
    d[:, 2] = wrap_angle(d[:, 2])
    return d / scale


def denormalise(values: np.ndarray, reference: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalise` (phi wrapped into ``(-pi, pi]``)."""
    out = reference + np.asarray(values, np.float64) * scale
    out[:, 2] = wrap_angle(out[:, 2])
    return out


def encode(
    cands: Candidates, config: FeatureConfig | None = None, *, regress_on: str = "pure"
) -> Encoded:
    """Features, references and targets of ``cands`` (see the module docstring).

    Args:
        cands: the candidates.
        config: feature options.
        regress_on: which candidates train the regression: ``pure`` (all hits of one
            particle) or ``real`` (majority > 50 %).
    """
    cfg = (config or FeatureConfig()).validate()
    n = len(cands)
    lengths = cands.lengths
    if cfg.seed == "helix":
        # One compiled pass (lhcml.fitting.features); the definitions are above.
        hit_features, det, glob, reference, scale = helix_features(
            cands.xyz,
            cands.volume,
            cands.layer,
            cands.module,
            cands.offsets,
            coords=cfg.coords,
            module_frames=cfg.module_frames,
            bfield=cfg.bfield,
            scales=SEED_SCALES,
            qopt_floor=SEED_QOPT_FLOOR,
        )
    else:
        xyz = cands.xyz.astype(np.float64)
        r = np.hypot(xyz[:, 0], xyz[:, 1])
        phi = np.arctan2(xyz[:, 1], xyz[:, 0])
        first = np.repeat(cands.offsets[:-1], lengths)
        frames = geometry.measurement_frames(
            xyz, cands.volume, cands.layer, cands.module, use_modules=cfg.module_frames
        )
        barrel = geometry.is_barrel(cands.volume)
        frame_feat = np.where(barrel, 0.0, np.sin(frames - phi))
        if cfg.coords == "xyz":
            coords = xyz / 1000.0
        elif cfg.coords == "rphiz":
            coords = np.column_stack([r / 1000.0, phi / math.pi, xyz[:, 2] / 1000.0])
        else:
            dphi = wrap_angle(phi - phi[first]) if len(phi) else phi
            coords = np.column_stack([r / 1000.0, 4.0 * dphi, xyz[:, 2] / 1000.0])
        hit_features = np.column_stack([coords, frame_feat[:, None]]).astype(np.float32)
        det = detector_index(cands.volume, cands.layer)
        glob = np.column_stack([lengths / 20.0, np.ones(n)]).astype(np.float32)
        reference = _plain_reference(cands, phi, xyz)
        scale = np.tile(np.asarray(PLAIN_SCALES), (n, 1))
    target = normalise(cands.targets, reference, scale)
    known = np.all(np.isfinite(target), axis=1)
    if regress_on == "pure":
        reg = cands.is_pure
    elif regress_on == "real":
        reg = cands.is_real
    else:
        raise ConfigError(f"regress_on: '{regress_on}' not one of ['pure', 'real']")
    return Encoded(
        hit_features=hit_features,
        detector_id=det,
        hit_label=cands.hit_label.astype(np.float32),
        offsets=cands.offsets.astype(np.int64),
        global_features=glob,
        reference=reference,
        scale=scale,
        target=target.astype(np.float32),
        reg_weight=(reg & known).astype(np.float32),
        cand_label=cands.is_real.astype(np.float32),
    )


def _plain_reference(cands: Candidates, phi: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """A straight track from the beam line through the first hit."""
    n = len(cands)
    ref = np.zeros((n, 5))
    if n == 0:
        return ref
    f = cands.offsets[:-1]
    lengths = cands.lengths
    f = np.where(lengths > 0, f, 0)
    rf = np.hypot(xyz[f, 0], xyz[f, 1])
    ref[:, 1] = np.arctan2(rf, xyz[f, 2])
    ref[:, 2] = phi[f]
    ref[:, 4] = xyz[f, 2] - rf * np.cos(ref[:, 1]) / np.maximum(np.sin(ref[:, 1]), 1e-6)
    return ref


class Batches:
    """Length-bucketed batches of an :class:`Encoded` set, as torch tensors.

    Args:
        data: the encoded candidates.
        batch_size: candidates per batch (the last batch of a bucket may be smaller).
        shuffle: shuffle candidates within equal lengths and the batch order each epoch.
        seed: random seed of the shuffling.
        max_tokens: cap on ``batch_size * longest candidate`` (0: none).

    Each batch is a dict: ``hits`` (B, L, F), ``detector_id`` (B, L), ``mask`` (B, L)
    bool, ``global`` (B, G), ``hit_label`` (B, L), ``target`` (B, 5), ``reg_weight``
    (B,), ``cand_label`` (B,), ``index`` (B,) candidate indices.
    """

    def __init__(
        self,
        data: Encoded,
        batch_size: int = 512,
        *,
        shuffle: bool = False,
        seed: int = 0,
        max_tokens: int = 0,
    ) -> None:
        self.data = data
        self.batch_size = max(int(batch_size), 1)
        self.shuffle = shuffle
        self.max_tokens = max_tokens
        self._rng = np.random.default_rng(seed)

    def _plan(self) -> list[np.ndarray]:
        lengths = self.data.lengths
        if self.shuffle:
            jitter = self._rng.random(len(lengths))
            order = np.lexsort((jitter, lengths))
        else:
            order = np.argsort(lengths, kind="stable")
        batches = []
        i = 0
        while i < len(order):
            size = self.batch_size
            if self.max_tokens:
                longest = lengths[order[min(i + size, len(order)) - 1]]
                size = max(1, min(size, self.max_tokens // max(int(longest), 1)))
            batches.append(order[i : i + size])
            i += size
        if self.shuffle:
            self._rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        return len(self._plan()) if self.max_tokens else math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, object]]:
        for idx in self._plan():
            yield collate(self.data, idx)


def collate(data: Encoded, idx: np.ndarray) -> dict[str, object]:
    """Pad the candidates ``idx`` of ``data`` into one batch (see :class:`Batches`)."""
    import torch

    lengths = data.lengths[idx]
    b, m = len(idx), int(lengths.max()) if len(idx) else 0
    mask = np.arange(m)[None, :] < lengths[:, None]
    starts = data.offsets[:-1][idx]
    rows = (starts[:, None] + np.arange(m)[None, :])[mask]
    feats = np.zeros((b, m, data.hit_features.shape[1]), np.float32)
    feats[mask] = data.hit_features[rows]
    det = np.zeros((b, m), np.int64)
    det[mask] = data.detector_id[rows]
    hl = np.zeros((b, m), np.float32)
    hl[mask] = data.hit_label[rows]
    return {
        "hits": torch.from_numpy(feats),
        "detector_id": torch.from_numpy(det),
        "mask": torch.from_numpy(mask),
        "global": torch.from_numpy(data.global_features[idx]),
        "hit_label": torch.from_numpy(hl),
        "target": torch.from_numpy(data.target[idx]),
        "reg_weight": torch.from_numpy(data.reg_weight[idx]),
        "cand_label": torch.from_numpy(data.cand_label[idx]),
        "index": torch.from_numpy(np.asarray(idx, np.int64)),
    }


def length_buckets(data: Encoded, batch_size: int = 512) -> Iterator[dict[str, Any]]:
    """Inference batches of equal-length candidates, without padding or mask.

    Candidates are grouped by length; each group's hits are gathered into one
    (n_L, L, F) array once, and batches are slices of it (no per-batch copies). With no
    padding the model needs no key-padding mask (``mask`` is None).

    Args:
        data: encoded candidates.
        batch_size: candidates per batch (512: the activations of a batch stay in a
            core's L2 cache; larger batches are slower on CPU).

    Yields:
        dicts with ``hits`` (B, L, F), ``detector_id`` (B, L), ``mask`` None, ``global``
        (B, G) tensors, ``index`` (B,) candidate indices and ``rows`` (B, L) hit rows
        (numpy).
    """
    import torch

    lengths = data.lengths
    order = np.argsort(lengths, kind="stable")
    bounds = np.flatnonzero(np.diff(lengths[order])) + 1
    step = max(int(batch_size), 1)
    for idx in np.split(order, bounds):
        if len(idx) == 0:
            continue
        m = int(lengths[idx[0]])
        rows = data.offsets[idx][:, None] + np.arange(m)[None, :]
        hits = torch.from_numpy(data.hit_features[rows])
        det = torch.from_numpy(data.detector_id[rows])
        glob = torch.from_numpy(data.global_features[idx])
        for a in range(0, len(idx), step):
            sl = slice(a, a + step)
            yield {
                "hits": hits[sl],
                "detector_id": det[sl],
                "mask": None,
                "global": glob[sl],
                "index": idx[sl],
                "rows": rows[sl],
            }
