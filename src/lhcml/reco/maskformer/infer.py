"""The MaskFormer finder on one event: hit filter -> wedges -> MaskFormer -> tracks.

A model directory (written by :func:`lhcml.reco.maskformer.train.train`) holds
``config.yaml`` (the resolved experiment config), ``filter.pt`` and ``tracker.pt``
(state dicts, read with ``weights_only=True``) and ``metrics.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lhcml.data.event import Event
from lhcml.errors import ConfigError, InputError
from lhcml.reco.maskformer.config import InferenceConfig, MaskFormerConfig, load_config
from lhcml.reco.maskformer.data import PreparedEvent, hit_features, prepare_event, wedges
from lhcml.reco.maskformer.model import HitFilter, MaskFormer

log = logging.getLogger(__name__)

#: The shipped model directory.
SHIPPED = Path(__file__).parent / "models" / "default"


@dataclass
class FinderResult:
    """Tracks of one event and what the finder saw on the way.

    Args:
        tracks: ``hit_id, track_id`` of every hit (``-1``: no track).
        n_hits: hits of the event.
        n_kept: hits the filter kept.
        n_wedges: wedges the tracker ran on.
        seconds: dict of wall seconds per step (``filter``, ``tracker``).
    """

    tracks: pd.DataFrame
    n_hits: int
    n_kept: int
    n_wedges: int
    seconds: dict[str, float] = field(default_factory=dict)


def load_networks(
    model_dir: str | Path, device: str = "cpu"
) -> tuple[MaskFormerConfig, HitFilter, MaskFormer]:
    """Config and the two networks of a model directory, in eval mode.

    Raises:
        InputError: a missing file, or weights that do not fit the config.
    """
    from lhcml.reco.maskformer.data import n_features

    model_dir = Path(model_dir)
    cfg_path = model_dir / "config.yaml"
    if not cfg_path.is_file():
        raise InputError("not a MaskFormer model directory (no config.yaml)", path=model_dir)
    cfg = load_config(cfg_path)
    nets: list[torch.nn.Module] = [
        HitFilter(n_features(), **cfg.filter),
        MaskFormer(n_features(), **cfg.tracker),
    ]
    for net, name in zip(nets, ("filter.pt", "tracker.pt"), strict=True):
        path = model_dir / name
        if not path.is_file():
            raise InputError(f"missing {name}", path=model_dir)
        try:
            net.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        except RuntimeError as e:
            raise InputError(f"weights do not match config.yaml: {e}", path=path) from None
        net.to(device).eval()
    return cfg, nets[0], nets[1]  # type: ignore[return-value]


def filter_logits(net: HitFilter, ev: PreparedEvent, device: str = "cpu") -> np.ndarray:
    """Hit-filter logits ``(N,)`` of a prepared (phi-sorted) event."""
    x = torch.from_numpy(hit_features(ev.r, ev.phi, ev.z)).to(device)
    with torch.inference_mode():
        return net(x).float().cpu().numpy()


def assign_wedge(
    track_logits: np.ndarray,
    mask_logits: np.ndarray,
    r: np.ndarray,
    core: np.ndarray,
    inf: InferenceConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Hits of one wedge -> (query of each hit or -1, its mask probability).

    A query is a track when its class probability passes ``track_cut``; each hit goes to
    the track with the highest mask logit if that mask probability passes ``mask_cut``;
    tracks with fewer than ``min_hits`` hits, or whose innermost hit is outside the core,
    are dropped (the neighbouring wedge whose core holds it finds it).
    """
    m = len(r)
    owner = np.full(m, -1, np.int64)
    prob = np.zeros(m, np.float32)
    valid = np.flatnonzero(track_logits > _logit(inf.track_cut))
    if len(valid) == 0 or m == 0:
        return owner, prob
    ml = mask_logits[valid]
    best = ml.argmax(0)
    best_logit = ml[best, np.arange(m)]
    hit = best_logit > _logit(inf.mask_cut)
    q = valid[best]
    counts = np.bincount(best[hit], minlength=len(valid))
    # Innermost hit of each track: the smallest r among its hits.
    idx = np.flatnonzero(hit)
    order = idx[np.lexsort((r[idx], best[idx]))]
    first = np.unique(best[order], return_index=True)
    inner = np.full(len(valid), -1, np.int64)
    inner[first[0]] = order[first[1]]
    keep_track = (counts >= inf.min_hits) & (inner >= 0)
    keep_track[keep_track] &= core[inner[keep_track]]
    ok = hit & keep_track[best]
    owner[ok] = q[ok]
    prob[ok] = 1 / (1 + np.exp(-best_logit[ok]))
    return owner, prob


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


class MaskFormerFinder:
    """Hit filter + MaskFormer track finding on whole events.

    Args:
        model_dir: a trained model directory (default: the shipped one).
        device: ``cpu`` or ``cuda``.
        inference: override the model's inference settings (cuts, wedges' hit limit).
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        inference: InferenceConfig | None = None,
    ):
        model_dir = Path(model_dir) if model_dir is not None else SHIPPED
        if not (model_dir / "config.yaml").is_file() and model_dir == SHIPPED:
            raise ConfigError(
                "no MaskFormer model is shipped in this version: train one with "
                "`lhcml maskformer train CONFIG --out DIR` and pass --model DIR"
            )
        self.device = device
        self.config, self.filter, self.tracker = load_networks(model_dir, device)
        self.inference = inference or self.config.inference

    def reconstruct(self, event: Event) -> FinderResult:
        """Tracks of one event (``hit_id, track_id``, every hit; -1: no track).

        Raises:
            InputError: a wedge with more hits after the filter than
                ``inference.max_hits`` (the tracker's attention grows with it; raise the
                limit or ``wedges.n_wedges``).
        """
        import time

        inf = self.inference
        ev = prepare_event(_no_truth(event))
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        keep = np.zeros(len(ev), bool)
        if len(ev):
            keep = filter_logits(self.filter, ev, self.device) > _logit(inf.filter_cut)
        seconds["filter"] = time.perf_counter() - t0
        track = np.full(len(ev), -1, np.int64)
        kept = ev.subset(keep)
        n_wedges = 0
        if len(kept) == 0:
            log.warning(
                "event %d: the hit filter kept no hit of %d: empty submission",
                event.event_id,
                len(ev),
            )
        else:
            t1 = time.perf_counter()
            track[np.flatnonzero(keep)] = self._track(kept, inf)
            seconds["tracker"] = time.perf_counter() - t1
            n_wedges = self.config.wedges.n_wedges
        tracks = pd.DataFrame({"hit_id": ev.hit_id, "track_id": track})
        return FinderResult(tracks, len(ev), int(keep.sum()), n_wedges, seconds)

    def _track(self, ev: PreparedEvent, inf: InferenceConfig) -> np.ndarray:
        w = self.config.wedges
        owner = np.full(len(ev), -1, np.int64)
        best = np.zeros(len(ev), np.float32)
        next_id = 0
        for wedge in wedges(ev.phi, w.n_wedges, w.margin):
            if len(wedge.index) > inf.max_hits:
                raise InputError(
                    f"event {ev.event_id}: {len(wedge.index)} hits in the wedge at phi "
                    f"{wedge.centre:.2f} after the filter, more than inference.max_hits = "
                    f"{inf.max_hits}; raise it or wedges.n_wedges",
                    column="inference.max_hits",
                )
            if len(wedge.index) == 0:
                continue
            idx = wedge.index
            x = torch.from_numpy(hit_features(ev.r[idx], wedge.rel_phi, ev.z[idx]))
            with torch.inference_mode():
                cls, masks = self.tracker(x.to(self.device))[-1]
            q, p = assign_wedge(
                cls.float().cpu().numpy(), masks.float().cpu().numpy(), ev.r[idx], wedge.core, inf
            )
            better = (q >= 0) & (p > best[idx])
            owner[idx[better]] = q[better] + next_id
            best[idx[better]] = p[better]
            next_id += self.tracker.n_queries
        # Hits taken by a better track of another wedge can leave a track too short.
        ids, inverse, counts = np.unique(owner, return_inverse=True, return_counts=True)
        short = (counts < inf.min_hits) | (ids < 0)
        dense = np.cumsum(~short) - 1
        return np.where(short[inverse], -1, dense[inverse])


def _no_truth(event: Event) -> Event:
    """The event without truth: the finder must not see it (and skips the labelling)."""
    return Event(event.event_id, event.hits, meta=event.meta)
