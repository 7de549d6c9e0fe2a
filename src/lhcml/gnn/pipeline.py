"""The whole GNN chain on one event, in memory: what ``lhcml reconstruct`` runs.

A *model set* is a folder (the default one ships in ``lhcml/gnn/models/default``)::

    chain.yaml               which graph builder, stage settings, track building
    module_map.parquet       graph construction (module map), module_centres.parquet
    metric_learning.pt       graph construction (metric learning), optional
    edge_filter.pt           optional
    edge_classifier.pt       the Interaction Network (with its score cut)
    metrics.json             what the set reached on held-out events

:class:`GNNChain` loads it once and reconstructs events: hits -> graph -> filter -> GNN
scores -> tracks, timing each stage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml._device import check_device
from lhcml.errors import ConfigError, InputError

#: The model set shipped with the package.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"


def default_model_dir() -> Path:
    """The shipped model set's folder.

    Raises:
        InputError: the package was installed without it.
    """
    if not (DEFAULT_MODEL_DIR / "chain.yaml").is_file():
        raise InputError(
            "the default GNN model set is missing (train one with `lhcml gnn chain train`)",
            path=DEFAULT_MODEL_DIR,
        )
    return DEFAULT_MODEL_DIR


#: Inference backends of :class:`GNNChain`.
BACKENDS: tuple[str, ...] = ("torch", "onnx")


@dataclass
class ChainResult:
    """Tracks of one event, the time of each stage [s], and each stage's edges (rows into
    the event's hits; ``scores`` are the classifier's, one per edge of the last stage) so
    that an edge lost on the way can be traced to the stage that lost it."""

    tracks: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    n_edges: dict[str, int] = field(default_factory=dict)
    edges: dict[str, np.ndarray] = field(default_factory=dict)
    scores: np.ndarray | None = None
    #: Hits in modules the module map never saw (they get no edge, so no track).
    unknown_hits: int = 0


class GNNChain:
    """A loaded model set.

    Args:
        model_dir: model-set folder (default: the shipped one).
        device: ``cpu`` or ``cuda``.
        graph_construction: override the set's graph builder (``module_map`` or
            ``metric_learning``).
        threads: torch CPU threads (``None``: leave as is).
        backend: ``torch`` or ``onnx`` (the networks run by ONNX Runtime,
            :mod:`lhcml.gnn.onnx`; CPU only).
        precision: the Interaction Network's CPU products (torch backend): ``float32``
            (the training arithmetic), ``bfloat16`` (inputs rounded to bfloat16,
            float32 sums; ~3x faster products on AMX CPUs) or ``auto`` (bfloat16 where
            the CPU has AMX).

    Raises:
        InputError: missing files; ConfigError: bad settings.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        device: str = "cpu",
        graph_construction: str | None = None,
        threads: int | None = None,
        backend: str = "torch",
        precision: str = "auto",
    ) -> None:
        import yaml

        from lhcml.gnn.files import load_model
        from lhcml.gnn.runtime import set_threads

        set_threads(threads)
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        cfg_file = self.model_dir / "chain.yaml"
        if not cfg_file.is_file():
            raise InputError("no chain.yaml in the model folder", path=self.model_dir)
        self.config: dict[str, Any] = yaml.safe_load(cfg_file.read_text()) or {}
        self.device = check_device(device)
        self.method = graph_construction or self.config.get("graph_construction", "module_map")
        if self.method == "module_map":
            from lhcml.gnn.graph_construction.module_map import ModuleMap

            self.module_map = ModuleMap.load(
                self.model_dir / "module_map.parquet", **(self.config.get("module_map") or {})
            )
            self.centres = pd.read_parquet(self.model_dir / "module_centres.parquet")
            self.embedding = None
        elif self.method == "metric_learning":
            self.embedding, blob = load_model(self.model_dir / "metric_learning.pt")
            self.graph_cfg = {**blob.get("graph", {}), **(self.config.get("metric_learning") or {})}
        else:
            raise ConfigError(
                f"graph construction '{self.method}' unknown; use module_map or metric_learning"
            )
        self.filter = None
        if self.config.get("edge_filter", True) and (self.model_dir / "edge_filter.pt").is_file():
            self.filter, fblob = load_model(self.model_dir / "edge_filter.pt", self.device)
            self.filter_threshold = float(fblob.get("threshold", 0.0))
        self.gnn, gblob = load_model(self.model_dir / "edge_classifier.pt", self.device)
        from lhcml.gnn.edge_classification.fused import check_precision

        try:
            self.gnn.precision = check_precision(precision)
        except ValueError as e:
            raise ConfigError(f"--precision: {e}") from None
        self.use_cells = self.gnn.node_encoder[0].in_features > 4
        if backend not in BACKENDS:
            raise ConfigError(f"--backend: unknown '{backend}'; choose from {list(BACKENDS)}")
        self.backend = backend
        if backend == "onnx":
            self._to_onnx(threads)
        #: Module map loop: ``numba`` or ``numpy`` (the reference; same edges).
        self.graph_engine = "numba"
        self.threshold = float(self.config.get("threshold", gblob.get("threshold", 0.5)))
        self.track_building: dict[str, Any] = dict(self.config.get("track_building") or {})
        _check_track_building(self.track_building, cfg_file)

    def _to_onnx(self, threads: int | None) -> None:
        """Swap the torch networks for ONNX Runtime sessions of the same weights."""
        from lhcml.gnn.onnx import onnx_model

        if self.device != "cpu":
            raise ConfigError("--backend onnx runs on the CPU; use --device cpu")
        self.gnn = onnx_model(self.gnn, self.model_dir / "edge_classifier.pt", threads=threads)
        if self.filter is not None:
            self.filter = onnx_model(
                self.filter, self.model_dir / "edge_filter.pt", threads=threads
            )
        if self.embedding is not None:
            self.embedding = onnx_model(
                self.embedding, self.model_dir / "metric_learning.pt", threads=threads
            )

    def reconstruct(self, event: Any, *, detectors: pd.DataFrame | None = None) -> ChainResult:
        """Tracks of one event (``hit_id, track_id``; -1 for hits on no track).

        Args:
            event: a :class:`lhcml.data.Event` (truth not needed).
            detectors: the event's detector table if its module numbering differs from the
                ACTS Generic detector's (TrackML); module ids are translated with it.
        """
        import torch

        from lhcml.gnn.features import distance_key, event_nodes
        from lhcml.gnn.track_building import build_tracks

        timings: dict[str, float] = {}
        n_edges: dict[str, int] = {}
        t0 = time.perf_counter()
        nodes = event_nodes(_without_truth(event), use_cells=self.use_cells, detectors=detectors)
        timings["features"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        unknown = 0
        if self.method == "module_map":
            hits = event.hits
            if detectors is not None:
                from lhcml.gnn.graph_construction.module_map import translate_modules

                hits = translate_modules(hits, detectors, self.centres)
            edge_index = self.module_map.build_edges(hits, engine=self.graph_engine)
            unknown = int((~self.module_map.known_hits(hits)).sum())
        else:
            from lhcml.gnn.graph_construction.metric_learning import embed, radius_graph

            assert self.embedding is not None
            emb = embed(self.embedding, nodes.x)
            edge_index = radius_graph(
                emb,
                float(self.graph_cfg["r"]),
                int(self.graph_cfg["k_max"]),
                distance_key(nodes.x),
                index=self.graph_cfg.get("index", "ivf"),
            )
        timings["graph_construction"] = time.perf_counter() - t0
        n_edges["graph_construction"] = edge_index.shape[1]
        stage_edges = {"graph_construction": edge_index}

        x = torch.from_numpy(nodes.x).to(self.device)
        ei = torch.from_numpy(edge_index).to(self.device)
        with torch.no_grad():
            if self.filter is not None:
                t0 = time.perf_counter()
                keep = self.filter.scores(x, ei) >= self.filter_threshold
                ei = ei[:, keep]
                _sync(self.device)
                timings["edge_filter"] = time.perf_counter() - t0
                n_edges["edge_filter"] = int(ei.shape[1])
                stage_edges["edge_filter"] = ei.cpu().numpy()
            t0 = time.perf_counter()
            from lhcml.gnn.features import compact

            scores = torch.sigmoid(self.gnn(*compact(x, ei))) if ei.shape[1] else torch.zeros(0)
            _sync(self.device)
            timings["edge_classifier"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        edge_np, score_np = ei.cpu().numpy(), scores.float().cpu().numpy()
        tid = build_tracks(
            nodes.n_nodes,
            edge_np,
            score_np,
            distance_key(nodes.x),
            **{
                "cc_threshold": self.threshold,
                "walk_threshold": self.threshold,
                **self.track_building,
            },
        )
        timings["track_building"] = time.perf_counter() - t0
        tracks = pd.DataFrame({"hit_id": nodes.hit_id, "track_id": tid})
        return ChainResult(tracks, timings, n_edges, stage_edges, score_np, unknown)


def _without_truth(event: Any) -> Any:
    """A shallow copy without truth (inference must not see it)."""
    import dataclasses

    return dataclasses.replace(event, truth=None, particles=None)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def tracks_summary(tracks: pd.DataFrame) -> dict[str, Any]:
    """Number of tracks and of assigned hits."""
    tid = tracks["track_id"].to_numpy()
    return {"tracks": len(np.unique(tid[tid >= 0])), "assigned_hits": int((tid >= 0).sum())}


def _check_track_building(settings: dict[str, Any], path: Path) -> None:
    """Refuse keys of the ``track_building`` section that
    :func:`~lhcml.gnn.track_building.build_tracks` does not take (at load time, not as a
    ``TypeError`` in the first event)."""
    import inspect

    from lhcml.gnn.track_building import build_tracks

    known = set(inspect.signature(build_tracks).parameters) - {
        "n_nodes",
        "edge_index",
        "scores",
        "order_key",
    }
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"{path}: track_building: unknown key(s) {unknown}; known: {sorted(known)}"
        )
