"""Probes: a model, a data set and a metric, in the form the explain tools take.

A :class:`Probe` holds the torch module (for hooks), ``score(table)`` (the metric of the
model run on the data set, optionally with its input table replaced by a permuted copy),
the input table and its variable names, more permutable inputs inside the model (a module
input's channels, e.g. the edge features the Interaction Network computes itself), and
per-row tables (physics variables and true track parameters) for the rows a module's
activations come in (hits, hit pairs, candidates, jets).

Shipped models (:func:`load_probe`): ``metric_learning`` and ``edge_classifier`` (the GNN
set), ``trackformer``, ``part`` (jets), or a path to a model file / folder of one of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lhcml.errors import InputError

MODELS: tuple[str, ...] = ("metric_learning", "edge_classifier", "trackformer", "part")
#: True track parameters each row table carries for the mutual-information study.
TRACK_PARAMS: tuple[str, ...] = ("qopt", "eta", "phi", "d0", "z0", "pt")


@dataclass
class RowTable:
    """Physics variables and true parameters of the rows of some activations.

    Attributes:
        kind: ``hit``, ``edge``, ``candidate`` or ``jet``.
        physics: variables the formulas may use (r, phi, z, eta, theta, rho, ...).
        targets: true parameters (NaN where the row has none, e.g. noise hits).
        r, z: per-row position [mm] for r-z activation maps (hits and edges), else None.
    """

    kind: str
    physics: pd.DataFrame
    targets: pd.DataFrame
    r: np.ndarray | None = None
    z: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.physics)


@dataclass
class Probe:
    """What :mod:`lhcml.explain` needs of a model (see the module docstring)."""

    name: str
    model: Any
    metric: str
    score: Callable[[np.ndarray | None], float]
    inputs: np.ndarray
    input_names: list[str]
    rows: list[RowTable]
    #: Model-internal inputs: ``{module target (":in"): channel names}``.
    internal_inputs: dict[str, list[str]] = field(default_factory=dict)
    valid_rows: Callable[[], Any] | None = None

    def run(self) -> float:
        return self.score(None)

    def rows_for(self, n_rows: int) -> RowTable | None:
        """The row table of activations with ``n_rows`` rows, if any."""
        for table in self.rows:
            if len(table) == n_rows:
                return table
        return None


# ---------------------------------------------------------------- shared pieces


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if labels.all() or not labels.any():
        raise InputError("the metric needs both true and false examples in the data set")
    return float(roc_auc_score(labels, scores))


def hit_physics(hits: pd.DataFrame) -> pd.DataFrame:
    """r, phi, z, eta, theta (polar angle) and rho (distance from the origin) of hits;
    lengths in metres (formulas need O(1) variables)."""
    x, y, z = (hits[c].to_numpy(np.float64) / 1000.0 for c in ("x", "y", "z"))
    r = np.hypot(x, y)
    theta = np.arctan2(r, z)
    return pd.DataFrame(
        {
            "r": r,
            "phi": np.arctan2(y, x),
            "z": z,
            "eta": -np.log(np.tan(theta / 2)),
            "theta": theta,
            "rho": np.hypot(r, z),
        }
    )


def edge_physics(hp: pd.DataFrame, edge_index: np.ndarray) -> pd.DataFrame:
    """Hit-pair variables (metres, radians): differences, mean position, slopes, the
    pair's z0."""
    a, b = hp.iloc[edge_index[0]].reset_index(drop=True), hp.iloc[edge_index[1]]
    b = b.reset_index(drop=True)
    dr = (b["r"] - a["r"]).to_numpy()
    dz = (b["z"] - a["z"]).to_numpy()
    dphi = np.remainder((b["phi"] - a["phi"]).to_numpy() + np.pi, 2 * np.pi) - np.pi
    safe = np.where(np.abs(dr) < 1e-6, 1e-6, dr)
    return pd.DataFrame(
        {
            "dr": dr,
            "dphi": dphi,
            "dz": dz,
            "deta": (b["eta"] - a["eta"]).to_numpy(),
            "r": 0.5 * (a["r"] + b["r"]).to_numpy(),
            "z": 0.5 * (a["z"] + b["z"]).to_numpy(),
            "theta": np.arctan2(dr, dz),
            "rho": 0.5 * (a["rho"] + b["rho"]).to_numpy(),
            "phi_slope": dphi / safe,
            "z0": a["z"].to_numpy() - a["r"].to_numpy() * dz / safe,
        }
    )


def particle_targets(event: Any, particle_id: np.ndarray) -> pd.DataFrame:
    """True :data:`TRACK_PARAMS` of each row's particle (NaN for noise / unknown)."""
    from lhcml.fitting.targets import truth_targets

    cols = list(TRACK_PARAMS)
    if event.particles is None:
        return pd.DataFrame(np.nan, index=range(len(particle_id)), columns=cols)
    t = truth_targets(event.particles).set_index("particle_id")
    return t.reindex(particle_id)[cols].reset_index(drop=True)


# ---------------------------------------------------------------- GNN models


@dataclass
class _GraphEvent:
    x: np.ndarray
    edge_index: np.ndarray
    target: np.ndarray
    hits: RowTable
    edges: RowTable
    #: Nodes on at least one edge (the Interaction Network sees only these, in order).
    used: np.ndarray


def _graph_events(events: Sequence[Any], detectors: pd.DataFrame | None) -> list[_GraphEvent]:
    """Node features, module-map edges (the shipped map) and row tables of each event."""
    from lhcml.gnn.features import edge_truth, event_nodes
    from lhcml.gnn.graph_construction.module_map import ModuleMap, translate_modules
    from lhcml.gnn.pipeline import default_model_dir

    model_dir = default_model_dir()
    mm = ModuleMap.load(model_dir / "module_map.parquet")
    centres = pd.read_parquet(model_dir / "module_centres.parquet")
    out = []
    for event in events:
        if not event.has_truth:
            raise InputError("explain needs events with truth (the metric compares to it)")
        nodes = event_nodes(event, detectors=detectors)
        hits = (
            event.hits if detectors is None else translate_modules(event.hits, detectors, centres)
        )
        edges = mm.build_edges(hits)
        assert nodes.truth_edge_index is not None and nodes.truth_target is not None
        y, target = edge_truth(edges, nodes.truth_edge_index, nodes.truth_target, nodes.n_nodes)
        hp = hit_physics(event.hits)
        assert nodes.particle_id is not None
        hit_t = particle_targets(event, np.where(nodes.particle_id > 0, nodes.particle_id, -1))
        edge_t = hit_t.iloc[edges[0]].reset_index(drop=True)
        edge_t[~y] = np.nan
        ep = edge_physics(hp, edges)
        out.append(
            _GraphEvent(
                nodes.x,
                edges,
                target,
                RowTable("hit", hp, hit_t, 1e3 * hp["r"].to_numpy(), 1e3 * hp["z"].to_numpy()),
                RowTable("edge", ep, edge_t, 1e3 * ep["r"].to_numpy(), 1e3 * ep["z"].to_numpy()),
                np.bincount(edges.reshape(-1), minlength=nodes.n_nodes) > 0,
            )
        )
    return out


def _concat(tables: list[RowTable]) -> RowTable:
    cat = pd.concat
    return RowTable(
        tables[0].kind,
        cat([t.physics for t in tables], ignore_index=True),
        cat([t.targets for t in tables], ignore_index=True),
        None if tables[0].r is None else np.concatenate([t.r for t in tables]),
        None if tables[0].z is None else np.concatenate([t.z for t in tables]),
    )


def _subset(table: RowTable, keep: np.ndarray) -> RowTable:
    return RowTable(
        table.kind,
        table.physics[keep].reset_index(drop=True),
        table.targets[keep].reset_index(drop=True),
        None if table.r is None else table.r[keep],
        None if table.z is None else table.z[keep],
    )


def _split_table(table: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(table, np.cumsum(sizes)[:-1])


def metric_learning_probe(model_file: Path, graphs: list[_GraphEvent]) -> Probe:
    """The embedding MLP; metric: ROC AUC of -|e_i - e_j| separating the target edges of
    the module-map graph from its other edges and from as many random hit pairs (how well
    distance in the embedding tells a true doublet; the random pairs are what the radius
    graph must reject, the module-map edges the hard cases)."""
    import torch

    from lhcml.gnn.features import feature_names
    from lhcml.gnn.files import load_model

    model, _ = load_model(model_file)
    sizes = [len(g.x) for g in graphs]
    rng = np.random.default_rng(0)
    pairs = [
        np.hstack([g.edge_index, rng.integers(0, len(g.x), (2, g.edge_index.shape[1]))])
        for g in graphs
    ]
    labels = np.concatenate(
        [np.r_[g.target, np.zeros(g.edge_index.shape[1], bool)] for g in graphs]
    )
    table = np.concatenate([g.x for g in graphs])

    def score(x: np.ndarray | None) -> float:
        parts = _split_table(table if x is None else x, sizes)
        dist = []
        with torch.no_grad():
            for p, xe in zip(pairs, parts, strict=True):
                e = model(torch.from_numpy(np.ascontiguousarray(xe, dtype=np.float32)))
                ei = torch.from_numpy(p)
                dist.append((e[ei[0]] - e[ei[1]]).norm(dim=1).numpy())
        return _auc(-np.concatenate(dist), labels)

    names = list(feature_names(model.mlp[0].in_features > 4))
    return Probe(
        "metric_learning",
        model,
        "edge AUC of -distance",
        score,
        table,
        names,
        [_concat([g.hits for g in graphs])],
    )


def edge_classifier_probe(model_file: Path, graphs: list[_GraphEvent], metric: str) -> Probe:
    """The Interaction Network; metric ``auc`` (ROC AUC of target edges), or at the
    shipped cut ``efficiency``, ``purity`` or ``f1``."""
    import torch

    from lhcml.gnn.features import EDGE_FEATURES, compact, feature_names
    from lhcml.gnn.files import load_model

    model, blob = load_model(model_file)
    model.fused = False  # the fused path skips the module calls the hooks need
    cut = float(blob.get("threshold", 0.5))
    sizes = [len(g.x) for g in graphs]
    labels = np.concatenate([g.target for g in graphs])
    table = np.concatenate([g.x for g in graphs])
    metrics = ("auc", "efficiency", "purity", "f1")
    if metric not in metrics:
        raise InputError(f"--metric '{metric}' unknown for the edge classifier; use {metrics}")

    def score(x: np.ndarray | None) -> float:
        parts = _split_table(table if x is None else x, sizes)
        s = []
        with torch.no_grad():
            for g, xe in zip(graphs, parts, strict=True):
                xt = torch.from_numpy(np.ascontiguousarray(xe, dtype=np.float32))
                s.append(torch.sigmoid(model(*compact(xt, torch.from_numpy(g.edge_index)))).numpy())
        scores = np.concatenate(s)
        if metric == "auc":
            return _auc(scores, labels)
        kept = scores >= cut
        eff = (kept & labels).sum() / max(labels.sum(), 1)
        pur = (kept & labels).sum() / max(kept.sum(), 1)
        if metric == "efficiency":
            return float(eff)
        if metric == "purity":
            return float(pur)
        return float(2 * eff * pur / max(eff + pur, 1e-12))

    names = list(feature_names(model.node_encoder[0].in_features > 4))
    name = "edge AUC" if metric == "auc" else f"edge {metric} at cut {cut}"
    return Probe(
        "edge_classifier",
        model,
        name,
        score,
        table,
        names,
        [_concat([_subset(g.hits, g.used) for g in graphs]), _concat([g.edges for g in graphs])],
        internal_inputs={"edge_norm:in": list(EDGE_FEATURES)},
    )


# ---------------------------------------------------------------- TrackFormer


def _trackformer_names(feat: Any) -> tuple[list[str], list[str]]:
    """Input names of :func:`lhcml.fitting.dataset.encode` (helix seed: its residuals and
    the seed parameters, :mod:`lhcml.fitting.features`)."""
    coords = {"xyz": ["x", "y", "z"], "rphiz": ["r", "phi", "z"], "rdphiz": ["r", "dphi", "z"]}
    hits = [*coords[feat.coords], "frame_sin"]
    if feat.seed == "helix":
        glob = [
            "seed_qopt",
            "cos_theta",
            "sin_theta",
            "asinh_d0",
            "seed_z0",
            "n_hits",
            "log_rms_xy",
            "log_rms_z",
        ]
        return [*hits, "resid_xy", "resid_z"], glob
    return hits, ["n_hits", "one"]


def trackformer_probe(model_dir: Path, events: Sequence[Any], metric: str) -> Probe:
    """TrackFormer on the events' truth candidates; metric ``resolution``: minus the mean,
    over the five parameters, of sigma68(residual) relative to the unpermuted model's
    (baseline -1; a drop of 0.3 = resolutions 30 % worse on average), or one parameter's
    ``-sigma68`` (``qopt``, ``theta``, ``phi``, ``d0``, ``z0``)."""
    from lhcml.fitting.candidates import Candidates, truth_candidates
    from lhcml.fitting.checkpoint import load_model
    from lhcml.fitting.dataset import encode, length_buckets
    from lhcml.fitting.evaluate import predict, residuals
    from lhcml.fitting.targets import PARAMS
    from lhcml.metrics.resolution import sigma68

    if metric not in ("resolution", *PARAMS):
        raise InputError(f"--metric '{metric}' unknown for TrackFormer; use resolution or {PARAMS}")
    model, feat, loss = load_model(model_dir)
    cands = Candidates.concat([truth_candidates(ev) for ev in events])
    if len(cands) < 10:
        raise InputError(f"{len(cands)} truth candidates in the events: too few to measure")

    def widths() -> np.ndarray:
        pred = predict(model, feat, loss, cands, quality=True)
        res = residuals(pred.params, cands.targets)
        ok = np.isfinite(res).all(1)
        return np.array([sigma68(res[ok, j]).width for j in range(len(PARAMS))])

    ref = widths()

    def score(x: np.ndarray | None) -> float:
        if x is not None:
            raise InputError("TrackFormer inputs are permuted inside the model (hit_in:in)")
        w = widths()
        if metric == "resolution":
            return float(-np.mean(w / ref))
        return float(-w[PARAMS.index(metric)])

    order = np.concatenate(
        [np.asarray(b["index"]) for b in length_buckets(encode(cands, feat), 512)]
    )
    targets = pd.DataFrame(cands.targets[order], columns=list(PARAMS))
    targets["eta"] = cands.eta[order]
    targets["pt"] = cands.pt[order]
    lengths = np.diff(cands.offsets)[order]
    # A candidate's physics variables are its true track parameters and its length.
    physics = targets[list(TRACK_PARAMS)].copy()
    physics["n_hits"] = lengths.astype(float)
    hit_names, glob = _trackformer_names(feat)
    return Probe(
        "trackformer",
        model,
        "-mean relative sigma68" if metric == "resolution" else f"-sigma68({metric})",
        score,
        np.zeros((0, 0)),
        [],
        [RowTable("candidate", physics, targets[list(TRACK_PARAMS)])],
        internal_inputs={"hit_in:in": hit_names, "global_in:in": glob},
    )


# ---------------------------------------------------------------- jets


def part_probe(model_dir: Path, samples: Sequence[Path]) -> Probe:
    """The jet tagger on weaver-layout samples; metric: ROC AUC of the last class."""
    from lhcml.jets.dataset import PARTICLE_FEATURES, read_jets
    from lhcml.jets.evaluation import predict
    from lhcml.jets.training import load_model

    model, cfg = load_model(model_dir)
    classes = tuple(cfg["data"]["classes"])
    data = read_jets(list(samples), classes, max_particles=int(cfg["data"]["max_particles"]))
    if len(data) < 10:
        raise InputError(f"{len(data)} jets of classes {classes} in the samples: too few")
    labels = data.labels == len(classes) - 1

    def score(x: np.ndarray | None) -> float:
        d = data if x is None else dataclasses.replace(data, features=x.astype(np.float32))
        probs, _ = predict(model, d)
        return _auc(probs[:, -1], labels)

    order = np.argsort(data.lengths, kind="stable")
    jets = pd.DataFrame({k: np.asarray(v, dtype=np.float64)[order] for k, v in data.jets.items()})
    physics = jets[[c for c in ("jet_pt", "jet_eta", "jet_mass", "jet_nparticles") if c in jets]]
    targets = physics.copy()
    targets["label"] = labels[order].astype(float)
    return Probe(
        "part",
        model,
        f"AUC {classes[-1]} vs rest",
        score,
        data.features,
        list(PARTICLE_FEATURES),
        [RowTable("jet", physics, targets)],
    )


# ---------------------------------------------------------------- loading


def _shipped(name: str) -> Path:
    if name in ("metric_learning", "edge_classifier"):
        from lhcml.gnn.pipeline import default_model_dir

        return default_model_dir() / f"{name}.pt"
    if name == "trackformer":
        import lhcml.fitting

        return Path(lhcml.fitting.__file__).parent / "models" / "default"
    from lhcml.jets.models import SHIPPED_MODEL_DIR

    return SHIPPED_MODEL_DIR


def model_kind(model: str) -> tuple[str, Path]:
    """``(kind, path)`` of a shipped model name or a model path.

    Raises:
        InputError: neither a shipped name nor a recognisable model file / folder.
    """
    if model in MODELS:
        return model, _shipped(model)
    path = Path(model)
    if path.is_file() and path.suffix == ".pt":
        import torch

        cls = torch.load(path, map_location="cpu", weights_only=True).get("class")
        kinds = {"MetricLearning": "metric_learning", "InteractionNetwork": "edge_classifier"}
        if cls in kinds:
            return kinds[cls], path
    if path.is_dir() and (path / "config.yaml").is_file():
        return ("part" if (path / "weights.pt").is_file() else "trackformer"), path
    raise InputError(f"not a model: use one of {list(MODELS)} or a model file / folder", path=path)


def load_probe(
    model: str,
    events: str | Path | Sequence[str | Path],
    *,
    event_ids: Sequence[int] | None = None,
    metric: str | None = None,
    max_events: int = 1,
) -> Probe:
    """The probe of ``model`` (shipped name or path) on events (or jet samples for ParT).

    Raises:
        InputError: unknown model, unreadable events, events without truth.
    """
    kind, path = model_kind(model)
    sources = [events] if isinstance(events, (str, Path)) else list(events)
    if kind == "part":
        return part_probe(path, [Path(s) for s in sources])
    from lhcml.gnn.files import event_sources, find_detectors, read_graph_event
    from lhcml.io import read_detectors

    evs, det = [], None
    for src in sources:
        for s, eid in event_sources(src, event_ids)[: max(max_events - len(evs), 0)]:
            evs.append(read_graph_event(s, eid))
            det_file = find_detectors(s)
            det = read_detectors(det_file) if det_file is not None else det
    if not evs:
        raise InputError("no events found", path=Path(str(sources[0])))
    if kind == "trackformer":
        return trackformer_probe(path, evs, metric or "resolution")
    graphs = _graph_events(evs, det)
    if kind == "metric_learning":
        if metric not in (None, "auc"):
            raise InputError(f"--metric '{metric}' unknown for metric learning; use auc")
        return metric_learning_probe(path, graphs)
    return edge_classifier_probe(path, graphs, metric or "auc")
