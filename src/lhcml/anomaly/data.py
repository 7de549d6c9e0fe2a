"""Jet samples -> DarkCLR inputs: padded ``(pT, eta, phi)`` constituents per jet.

The reference (DarkCLR, arXiv:2312.03067, public code ``luigifvr/dark-clr``) feeds each
jet as its ``n_constituents`` (50) hardest constituents, ``(pT, eta, phi)``, with eta and
phi centred on the pT-weighted centroid, pT-ordered, and pT divided by a fixed scale
(300 GeV). Padding is zero pT; a constituent is real when its pT is > 0, which is how the
augmentations and the encoder's mask tell padding apart.

eta and phi are taken relative to the jet axis (``part_deta``, ``part_dphi`` of the
weaver layout, already wrapped into [-pi, pi)) before centring, so a jet at phi = pi
is not torn in two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lhcml.errors import ConfigError, InputError
from lhcml.jets.config import PROCESSES
from lhcml.jets.dataset import JetData, read_jets, select

#: Reference constituent-pT scale [GeV] (``rescale_pts`` of the reference code).
PT_SCALE = 300.0


@dataclass
class ConstituentJets:
    """Jets as padded constituent arrays.

    Attributes:
        x: ``(n_jets, n_constituents, 3)`` float32 ``(pT / pt_scale, eta, phi)``, centred,
            pT-ordered, zero-padded.
        jet_pt: ``(n_jets,)`` jet pT [GeV].
        process: ``(n_jets,)`` index into :data:`lhcml.jets.config.PROCESSES`.
        source: what the jets were read from (for messages and metrics).
    """

    x: np.ndarray
    jet_pt: np.ndarray
    process: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.x)

    @property
    def multiplicity(self) -> np.ndarray:
        """Real constituents per jet (after the cut to ``n_constituents``)."""
        return (self.x[:, :, 0] > 0).sum(1)

    def take(self, index: np.ndarray) -> ConstituentJets:
        index = np.asarray(index, dtype=np.int64)
        return ConstituentJets(self.x[index], self.jet_pt[index], self.process[index], self.source)

    @staticmethod
    def concat(parts: Sequence[ConstituentJets]) -> ConstituentJets:
        return ConstituentJets(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.jet_pt for p in parts]),
            np.concatenate([p.process for p in parts]),
            " + ".join(p.source for p in parts),
        )


def constituents(data: JetData, n_constituents: int = 50, pt_scale: float = PT_SCALE) -> np.ndarray:
    """DarkCLR inputs of the jets of a :class:`~lhcml.jets.dataset.JetData`.

    Returns:
        ``(n_jets, n_constituents, 3)`` float32 (see :class:`ConstituentJets`).
    """
    n = len(data)
    lengths = data.lengths
    pos = np.arange(int(lengths.max(initial=1)))
    mask = pos[None, :] < lengths[:, None]
    gather = np.where(mask, data.offsets[:-1, None] + pos[None, :], 0)
    pt = np.where(mask, np.hypot(data.vectors[gather, 0], data.vectors[gather, 1]), 0.0)
    deta = np.where(mask, data.features[gather, 0], 0.0)  # part_deta, part_dphi (unscaled)
    dphi = np.where(mask, data.features[gather, 1], 0.0)
    order = np.argsort(-pt, axis=1, kind="stable")[:, :n_constituents]
    pt, deta, dphi = (np.take_along_axis(a, order, 1) for a in (pt, deta, dphi))
    # Centre on the pT-weighted centroid of the kept constituents (the reference's).
    w = pt / np.maximum(pt.sum(1, keepdims=True), 1e-12)
    real = pt > 0
    deta = np.where(real, deta - (w * deta).sum(1, keepdims=True), 0.0)
    dphi = np.where(real, dphi - (w * dphi).sum(1, keepdims=True), 0.0)
    out = np.zeros((n, n_constituents, 3), dtype=np.float32)
    k = pt.shape[1]
    out[:, :k, 0] = pt / pt_scale
    out[:, :k, 1] = deta
    out[:, :k, 2] = dphi
    return out


def read_constituents(
    paths: str | Path | Sequence[str | Path],
    *,
    n_constituents: int = 50,
    pt_scale: float = PT_SCALE,
    split: str | None = None,
    fractions: Sequence[float] = (0.6, 0.1, 0.3),
    max_jets: int | None = None,
    what: str = "jets",
) -> ConstituentJets:
    """Read jet samples (``lhcml jets generate`` layout) as DarkCLR inputs.

    Args:
        paths: sample directories, files or globs.
        n_constituents: constituents per jet (the hardest ones).
        pt_scale: constituent pT divisor [GeV].
        split: ``train`` / ``val`` / ``test`` (by event hash, as the taggers split) or
            None for all jets.
        fractions: the ``(train, val, test)`` fractions.
        max_jets: keep at most this many jets of each process (the first ones).
        what: the role of these jets in messages (``background``, ``signal``).

    Raises:
        InputError: no jet files, unreadable or missing columns, a jet without
            constituents, NaN or infinite constituent momenta.
        ConfigError: bad ``n_constituents`` / ``pt_scale``.
    """
    (jets,) = read_constituent_splits(
        paths,
        [(split, max_jets)],
        n_constituents=n_constituents,
        pt_scale=pt_scale,
        fractions=fractions,
        what=what,
    )
    return jets


def read_constituent_splits(
    paths: str | Path | Sequence[str | Path],
    splits: Sequence[tuple[str | None, int | None]],
    *,
    n_constituents: int = 50,
    pt_scale: float = PT_SCALE,
    fractions: Sequence[float] = (0.6, 0.1, 0.3),
    what: str = "jets",
) -> list[ConstituentJets]:
    """:func:`read_constituents` of several ``(split, max_jets)`` of the same samples,
    reading the files once."""
    if n_constituents < 1:
        raise ConfigError(f"data.n_constituents: must be >= 1, got {n_constituents}")
    if not pt_scale > 0:
        raise ConfigError(f"data.pt_scale: must be > 0, got {pt_scale}")
    plist = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not plist:
        raise InputError(f"no {what} samples given")
    for p in plist:
        p = Path(p)
        if p.is_dir() and not any(p.glob("*.parquet")):
            raise InputError(f"{what} directory has no jet files (*.parquet)", path=p)
    data = read_jets(plist, PROCESSES, max_particles=n_constituents)
    if not np.isfinite(data.vectors).all():
        bad = int((~np.isfinite(data.vectors).all(1)).sum())
        raise InputError(
            f"{what}: {bad} constituents with NaN or infinite momenta",
            path=Path(plist[0]),
            column="part_px/part_py/part_pz/part_energy",
        )
    src = ", ".join(str(p) for p in plist)
    out = []
    for split, max_jets in splits:
        part = select(data, split, fractions, max_jets)
        if len(part) == 0:
            raise InputError(f"{what}: no jets left in split '{split}'", path=Path(plist[0]))
        x = constituents(part, n_constituents, pt_scale)
        out.append(ConstituentJets(x, part.jets["jet_pt"].astype(np.float32), part.labels, src))
    return out
