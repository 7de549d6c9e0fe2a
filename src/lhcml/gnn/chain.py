"""The whole GNN chain from one config (``lhcml gnn chain train CONFIG``): simulate the
samples, then train / infer / evaluate every stage in turn on files, resuming finished
steps, and export a model set; :func:`evaluate_chain` runs an exported set in memory
(:class:`lhcml.gnn.pipeline.GNNChain`) on events with truth.

| stage | train writes | infer reads -> writes | module |
| --- | --- | --- | --- |
| module map | ``module_map.parquet`` (+ ``module_centres.parquet``) | events -> graphs | ``graph_construction`` |
| metric learning | ``metric_learning.pt`` | events -> graphs | ``graph_construction`` |
| edge filter | ``edge_filter.pt`` | graphs -> smaller graphs (with filter scores) | ``edge_classification`` |
| edge classifier | ``edge_classifier.pt`` | graphs -> graphs with GNN scores | ``edge_classification`` |
| track building | (no training) | scored graphs -> ``event*-submission.csv`` | ``track_building`` |

Every stage reads its input from disk and writes its output to disk, so any stage can be
rerun alone (``lhcml gnn <stage> train|infer|evaluate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import ConfigError
from lhcml.gnn.config import section, target_selection
from lhcml.gnn.edge_classification.evaluate import (
    edge_classifier_evaluate,
)
from lhcml.gnn.edge_classification.infer import edge_infer
from lhcml.gnn.edge_classification.train import (
    edge_classifier_train,
    edge_filter_train,
)
from lhcml.gnn.features import (
    DEFAULT_TARGET,
)
from lhcml.gnn.files import (
    event_sources,
    find_detectors,
    read_graph_event,
)
from lhcml.gnn.graph_construction.evaluate import evaluate_graphs
from lhcml.gnn.graph_construction.infer import metric_learning_infer, module_map_infer
from lhcml.gnn.graph_construction.train import (
    metric_learning_train,
    module_map_extend,
    module_map_train,
    write_node_graphs,
)
from lhcml.gnn.runtime import track_progress
from lhcml.gnn.track_building.evaluate import track_evaluate
from lhcml.gnn.track_building.infer import track_building_infer
from lhcml.io.atomic import write_json_atomic
from lhcml.metrics.tracking import FiducialSelection

#: Files of a model set (see :mod:`lhcml.gnn.pipeline`).
MODEL_FILES: tuple[str, ...] = (
    "module_map.parquet",
    "module_centres.parquet",
    "metric_learning.pt",
    "edge_filter.pt",
    "edge_classifier.pt",
)


def simulate_samples(
    config: dict[str, Any], data_dir: Path, *, jobs: int = 1, progress: bool = True
) -> dict[str, Path]:
    """Simulate the config's ``samples`` (resuming complete events); their folders by name.

    Each sample: ``simulation`` (:class:`lhcml.simulation.SimulationConfig` fields),
    ``events`` and ``first_event``; or ``from`` (an earlier sample) and ``subset``:
    reduced copies of that sample's events (:func:`lhcml.gnn.augment.derive_sample`).
    """
    from lhcml.gnn.augment import derive_sample
    from lhcml.simulation import SimulationConfig, simulate_events

    dirs: dict[str, Path] = {}
    for name, spec in section(config, "samples").items():
        if not isinstance(spec, dict):
            raise ConfigError(f"samples.{name} must be a mapping")
        out = data_dir / name
        first = int(spec.get("first_event", 0))
        if "from" in spec:
            source = spec["from"]
            if source not in dirs:
                raise ConfigError(
                    f"samples.{name}.from: '{source}' is not a sample listed before it"
                )
            if not isinstance(spec.get("subset"), dict):
                raise ConfigError(f"samples.{name}: a derived sample needs a 'subset' mapping")
            n = spec.get("events")
            derive_sample(
                dirs[source],
                out,
                spec["subset"],
                name=name,
                events=None if n is None else int(n),
                first_event=first,
                seed=int(spec.get("seed", 0)),
            )
        else:
            sim = SimulationConfig.from_dict(spec.get("simulation") or {})
            events = int(spec.get("events", 1))
            simulate_events(sim, out, events=events, first_event=first, jobs=jobs)
        dirs[name] = out
    return dirs


def _copy_trained(source: str | Path, names: Sequence[str], dest: Path) -> dict[str, Any]:
    """Take a stage's trained files from another model set (``from:`` in its section)."""
    import shutil

    src = Path(source)
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (src / name).is_file():
            raise ConfigError(f"from: {src} has no {name}")
        shutil.copyfile(src / name, dest / name)
    return {"from": str(src), "files": list(names)}


def _done(path: Path, resume: bool) -> bool:
    return resume and path.is_file()


def train_chain(
    config: dict[str, Any],
    work_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    export: str | Path | None = None,
    jobs: int = 1,
    resume: bool = True,
    progress: bool = True,
    until: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Simulate, train, infer and evaluate every stage of a chain config; export the set.

    Config sections: ``samples`` (simulated event samples), ``splits`` (which samples are
    ``train``, ``val``, ``test`` and ``module_map`` fit samples), ``target``,
    ``module_map`` (``params``: :class:`ModuleMap` args), ``metric_learning``,
    ``edge_filter``, ``edge_classifier`` (``model``/``training``/``trainer``),
    ``track_building`` (:func:`build_tracks` args), ``real_events`` (event prefixes
    evaluated without tuning).

    Every step writes a JSON summary into ``work_dir``; with ``resume`` a step whose
    summary exists is skipped, so an interrupted run continues. ``until`` stops after a
    stage (``module_map``, ``metric_learning``, ``edge_filter``, ``edge_classifier``).

    Returns:
        The metrics written to ``metrics.json``.
    """
    import json
    import shutil

    import yaml

    if until not in (None, "module_map", "metric_learning", "edge_filter", "edge_classifier"):
        raise ConfigError(f"--until: unknown stage '{until}'")
    work = Path(work_dir)
    data = Path(data_dir) if data_dir is not None else work / "events"
    work.mkdir(parents=True, exist_ok=True)
    target = target_selection(config)
    splits = section(config, "splits")
    samples = simulate_samples(config, data, jobs=jobs, progress=progress)

    def sample(name: str) -> Path:
        if name not in samples:
            raise ConfigError(f"splits: sample '{name}' is not in samples")
        return samples[name]

    train_names = splits["train"] if isinstance(splits["train"], list) else [splits["train"]]
    train_dirs = [sample(n) for n in train_names]
    train = train_dirs[0]
    val, test = (sample(splits[k]) for k in ("val", "test"))
    named = {"train": train, "val": val, "test": test}
    # Training labels may use a wider target than the reported one (``target_train``):
    # e.g. decay products, which real TrackML events count as primaries.
    train_target = (
        target_selection({"target": config["target_train"]})
        if config.get("target_train")
        else target
    )
    metrics: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        out = work / f"{name}.json"
        if _done(out, resume):
            log(f"{name}: done before, skipped")
            return json.loads(out.read_text())
        log(f"{name} ...")
        result = fn()
        result.pop("files", None)
        write_json_atomic(out, result)
        return result

    # 1. Module map.
    mm_dir = work / "module_map"
    mm_cfg = section(config, "module_map")
    if mm_cfg.get("from"):
        metrics["module_map_train"] = step(
            "module_map_train",
            lambda: _copy_trained(
                mm_cfg["from"], ["module_map.parquet", "module_centres.parquet"], mm_dir
            ),
        )
    else:
        fit_samples = [sample(s) for s in mm_cfg.get("fit_samples", [train_names[0]])]
        metrics["module_map_train"] = step(
            "module_map_train",
            lambda: module_map_train(fit_samples, mm_dir, mm_cfg.get("params"), progress=progress),
        )
    if mm_cfg.get("extend"):
        # More particles (e.g. displaced decays) added to a fitted map, without its fit
        # samples: ``{samples: [...], params: {primary_only: false, ...}}``.
        ext = mm_cfg["extend"]
        if not isinstance(ext, dict) or not ext.get("samples") or not ext.get("params"):
            raise ConfigError("module_map.extend needs 'samples' (a list) and 'params'")
        metrics["module_map_extend"] = step(
            "module_map_extend",
            lambda: module_map_extend(
                mm_dir,
                [sample(s) for s in ext["samples"]],
                dict(ext["params"]),
                progress=progress,
            ),
        )
    inputs = [("train", n, d) for n, d in zip(train_names, train_dirs, strict=True)]
    inputs += [("val", splits["val"], val), ("test", splits["test"], test)]
    for split, name, src in inputs:
        # One step per training sample; the first keeps the single-sample step name.
        label = split if name == train_names[0] or split != "train" else f"{split}_{name}"
        step(
            f"module_map_infer_{label}",
            lambda src=src, split=split: module_map_infer(
                mm_dir,
                src,
                mm_dir / "graphs" / split,
                target=train_target if split == "train" else target,
                # The windows the exported chain applies (``apply``, e.g. a margin), so
                # the classifier trains on the graphs it will see.
                overrides=mm_cfg.get("apply") or None,
                progress=progress,
            ),
        )
    metrics["module_map"] = step(
        "module_map_evaluate", lambda: evaluate_graphs(mm_dir / "graphs" / "test")
    )

    if until == "module_map":
        return metrics

    # 2. Metric learning (the alternative graph builder).
    ml_cfg = section(config, "metric_learning")
    ml_dir = work / "metric_learning"
    if ml_cfg.get("from"):
        step(
            "metric_learning_train",
            lambda: _copy_trained(ml_cfg["from"], ["metric_learning.pt"], ml_dir),
        )
    elif ml_cfg.get("enabled", True):
        for split in ("train", "val", "test"):
            ids = ml_cfg.get(f"{split}_events")
            step(
                f"metric_learning_nodes_{split}",
                lambda split=split, ids=ids: {
                    "files": write_node_graphs(
                        named[split],
                        ml_dir / "nodes" / split,
                        event_ids=_ids(named[split], ids),
                        target=target,
                        progress=progress,
                    )
                },
            )
        metrics["metric_learning_train"] = step(
            "metric_learning_train",
            lambda: metric_learning_train(
                ml_dir / "nodes" / "train",
                ml_dir / "nodes" / "val",
                ml_dir / "metric_learning.pt",
                ml_cfg,
                progress=progress,
            ),
        )
        ids = ml_cfg.get("test_events")
        infer = step(
            "metric_learning_infer_test",
            lambda: metric_learning_infer(
                ml_dir / "metric_learning.pt",
                test,
                ml_dir / "graphs" / "test",
                event_ids=_ids(test, ids),
                target=target,
                progress=progress,
            ),
        )
        metrics["metric_learning"] = step(
            "metric_learning_evaluate", lambda: evaluate_graphs(ml_dir / "graphs" / "test")
        )
        metrics["metric_learning"]["seconds_per_event"] = infer["seconds_per_event"]

    if until == "metric_learning":
        return metrics

    # 3. Edge filter (trained and evaluated; the GNN reads its graphs if ``use``).
    ef_cfg = section(config, "edge_filter")
    ef_dir = work / "edge_filter"
    gnn_input = mm_dir / "graphs"
    use_filter = bool(ef_cfg.get("enabled", True)) and bool(ef_cfg.get("use", True))
    if ef_cfg.get("enabled", True):
        metrics["edge_filter_train"] = step(
            "edge_filter_train",
            lambda: edge_filter_train(
                mm_dir / "graphs" / "train",
                mm_dir / "graphs" / "val",
                ef_dir / "edge_filter.pt",
                {k: v for k, v in ef_cfg.items() if k not in ("enabled", "use")},
                progress=progress,
            ),
        )
        for split in named if use_filter else ["test"]:
            step(
                f"edge_filter_infer_{split}",
                lambda split=split: edge_infer(
                    "edge_filter",
                    ef_dir / "edge_filter.pt",
                    mm_dir / "graphs" / split,
                    ef_dir / "graphs" / split,
                    progress=progress,
                ),
            )
        metrics["edge_filter"] = step(
            "edge_filter_evaluate", lambda: evaluate_graphs(ef_dir / "graphs" / "test")
        )
        if use_filter:
            gnn_input = ef_dir / "graphs"

    if until == "edge_filter":
        return metrics

    # 4. Edge classifier (Interaction Network).
    ec_cfg = section(config, "edge_classifier")
    ec_dir = work / "edge_classifier"
    metrics["edge_classifier_train"] = step(
        "edge_classifier_train",
        lambda: edge_classifier_train(
            gnn_input / "train",
            gnn_input / "val",
            ec_dir / "edge_classifier.pt",
            ec_cfg,
            progress=progress,
        ),
    )
    for split in ("val", "test"):
        step(
            f"edge_classifier_infer_{split}",
            lambda split=split: edge_infer(
                "edge_classifier",
                ec_dir / "edge_classifier.pt",
                gnn_input / split,
                ec_dir / "graphs" / split,
                progress=progress,
            ),
        )
    ec_eval = step(
        "edge_classifier_evaluate",
        lambda: edge_classifier_evaluate(ec_dir / "graphs" / "test", ec_dir / "evaluation"),
    )
    threshold = float(ec_cfg.get("threshold", 0.5))
    metrics["edge_classifier"] = {
        "threshold": threshold,
        "at_threshold": evaluate_graphs(ec_dir / "graphs" / "test", threshold=threshold),
        "vs_threshold": ec_eval["vs_threshold"],
        "at_purity": ec_eval.get("at_purity"),
        "roc_auc": ec_eval["roc_auc"],
    }

    if until == "edge_classifier":
        return metrics

    # 5. Track building (on disk), then the model set and the in-memory chain on test events.
    tb_cfg = {
        "cc_threshold": threshold,
        "walk_threshold": threshold,
        **section(config, "track_building"),
    }
    tb_dir = work / "track_building"
    step(
        "track_building_infer_test",
        lambda: track_building_infer(
            ec_dir / "graphs" / "test", tb_dir / "submissions", tb_cfg, progress=progress
        ),
    )
    metrics["tracks_test_stages"] = step(
        "track_building_evaluate_test",
        lambda: track_evaluate(test, tb_dir / "submissions", tb_dir / "evaluation", target=target),
    )

    set_dir = work / "model_set"
    set_dir.mkdir(parents=True, exist_ok=True)
    sources = {
        "module_map.parquet": mm_dir / "module_map.parquet",
        "module_centres.parquet": mm_dir / "module_centres.parquet",
        "metric_learning.pt": ml_dir / "metric_learning.pt",
        "edge_filter.pt": ef_dir / "edge_filter.pt",
        "edge_classifier.pt": ec_dir / "edge_classifier.pt",
    }
    for name, src in sources.items():
        if name == "edge_filter.pt" and not use_filter:
            (set_dir / name).unlink(missing_ok=True)
            continue
        if src.is_file():
            shutil.copyfile(src, set_dir / name)
    chain_cfg = {
        "graph_construction": "module_map",
        "module_map": section(config, "module_map").get("apply") or {},
        "edge_filter": use_filter,
        "threshold": threshold,
        "track_building": section(config, "track_building"),
        "target": target.to_dict(),
    }
    (set_dir / "chain.yaml").write_text(yaml.safe_dump(chain_cfg, sort_keys=False))
    metrics["chain_test"] = step(
        "chain_evaluate_test",
        lambda: evaluate_chain(
            set_dir, test, work / "chain" / "test", target=target, progress=progress
        ),
    )
    for i, prefix in enumerate(config.get("real_events") or []):
        if Path(f"{prefix}-hits.csv.gz").is_file() or Path(f"{prefix}-hits.csv").is_file():
            metrics[f"chain_real_{i}"] = step(
                f"chain_evaluate_real_{i}",
                lambda prefix=prefix, i=i: evaluate_chain(
                    set_dir, prefix, work / "chain" / f"real_{i}", target=target, progress=progress
                ),
            )
    metrics["config"] = config
    write_json_atomic(set_dir / "metrics.json", metrics)
    if export is not None:
        out = Path(export)
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(set_dir.iterdir()):
            if f.is_file():
                shutil.copyfile(f, out / f.name)
    return metrics


def _ids(directory: Path, count: int | None) -> list[int] | None:
    """The first ``count`` events of a directory (``None``: all)."""
    from lhcml.io import list_events

    return None if count is None else list_events(directory)[: int(count)]


def evaluate_chain(
    model_dir: str | Path,
    events: str | Path,
    out_dir: str | Path,
    *,
    event_ids: Sequence[int] | None = None,
    target: FiducialSelection = DEFAULT_TARGET,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the in-memory chain (:class:`lhcml.gnn.pipeline.GNNChain`) on events with truth,
    write submissions and evaluate them; with the time of each stage per event."""
    from lhcml.gnn.pipeline import GNNChain
    from lhcml.io import read_detectors
    from lhcml.io.submission import submission_path, write_submission

    chain = GNNChain(model_dir, device=device)
    out = Path(out_dir)
    timings: list[dict[str, float]] = []
    edges: list[dict[str, int]] = []
    ids = []
    for src, eid in track_progress(event_sources(events, event_ids), "chain", progress):
        event = read_graph_event(src, eid)
        det_file = find_detectors(src)
        det = read_detectors(det_file) if det_file is not None else None
        res = chain.reconstruct(event, detectors=det)
        timings.append(res.timings)
        edges.append(res.n_edges)
        ids.append(event.event_id)
        write_submission(res.tracks, submission_path(out / "submissions", event.event_id))
    result = track_evaluate(
        events, out / "submissions", out / "evaluation", event_ids=ids, target=target
    )
    keys = timings[0].keys()
    result["seconds_per_event"] = {k: float(np.mean([t[k] for t in timings])) for k in keys}
    result["seconds_per_event"]["total"] = float(np.mean([sum(t.values()) for t in timings]))
    result["edges_per_event"] = {k: float(np.mean([e[k] for e in edges])) for k in edges[0]}
    return result
