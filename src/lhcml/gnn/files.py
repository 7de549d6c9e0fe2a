"""Files the GNN stages exchange: graphs (one ``event000000042-graph.pt`` per event: a dict
of tensors, :meth:`lhcml.gnn.features.EventGraph.to_dict`, written atomically with
``torch.save`` and read with ``torch.load(..., weights_only=True)``), the events a stage
reads, and model files (dicts with the class name, its ``__init__`` arguments, the
``state_dict`` and stage settings such as thresholds).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lhcml.errors import InputError
from lhcml.gnn.features import (
    EventGraph,
)
from lhcml.io.atomic import write_atomic

_GRAPH_RE = re.compile(r"^event(\d+)-graph\.pt$")


def graph_path(directory: str | Path, event_id: int) -> Path:
    """``directory/event000000042-graph.pt``."""
    return Path(directory) / f"event{event_id:09d}-graph.pt"


def save_graph(graph: EventGraph, directory: str | Path) -> Path:
    """Write one event graph atomically."""
    import torch

    d = graph.to_dict()
    return write_atomic(graph_path(directory, graph.event_id), lambda p: torch.save(d, p))


def load_graph(path: str | Path) -> EventGraph:
    """Read one event graph (``weights_only=True``).

    Raises:
        InputError: missing or unreadable file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError("graph file not found", path=path)
    try:
        return EventGraph.from_dict(torch.load(path, weights_only=True))
    except Exception as e:
        raise InputError(f"not a graph file: {str(e).splitlines()[0]}", path=path) from e


def list_graphs(directory: str | Path) -> list[Path]:
    """Graph files of a directory, by event id.

    Raises:
        InputError: the directory does not exist or holds no graph.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("graph directory not found", path=directory)
    files = sorted(
        (int(m.group(1)), f) for f in directory.iterdir() if (m := _GRAPH_RE.match(f.name))
    )
    if not files:
        raise InputError("no event*-graph.pt files in this directory", path=directory)
    return [f for _, f in files]


def event_sources(
    events: str | Path, event_ids: Sequence[int] | None = None
) -> list[tuple[Path, int]]:
    """``(directory or prefix, event_id)`` of each event of a directory or one prefix."""
    from lhcml.io import list_events, resolve_prefix

    events = Path(events)
    if events.is_dir():
        ids = list(event_ids) if event_ids else list_events(events)
        if not ids:
            raise InputError("no events in this directory", path=events)
        return [(events, eid) for eid in ids]
    prefix, eid = resolve_prefix(events)
    return [(prefix, eid)]


def read_graph_event(source: Path, event_id: int, *, truth: bool = True) -> Any:
    """Read the tables the chain needs (hits, cells if any; truth and particles if any)."""
    from lhcml.io import read_event

    eid = event_id if source.is_dir() else None
    event = read_event(source, eid)
    if not truth:
        event.truth = event.particles = None
    return event


def find_detectors(source: Path) -> Path | None:
    """A TrackML ``detectors.csv(.gz)`` beside an event (its directory), if any."""
    directory = source if source.is_dir() else source.parent
    for name in ("detectors.csv", "detectors.csv.gz", "detectors.parquet"):
        if (directory / name).is_file():
            return directory / name
    return None


def save_model(path: str | Path, model: Any, config: dict[str, Any], **extra: Any) -> Path:
    """Write a model file: class name, ``__init__`` args, weights and stage settings."""
    import torch

    blob = {
        "class": type(model).__name__,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    return write_atomic(path, lambda p: torch.save(blob, p))


def load_model(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Read a model file written by :func:`save_model`.

    Returns:
        ``(model in eval mode on device, the whole blob)``.

    Raises:
        InputError: missing or unreadable file, unknown class.
    """
    import torch

    from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork
    from lhcml.gnn.edge_filter import EdgeFilter
    from lhcml.gnn.graph_construction.metric_learning import MetricLearning

    classes = {c.__name__: c for c in (InteractionNetwork, EdgeFilter, MetricLearning)}
    path = Path(path)
    if not path.is_file():
        raise InputError("model file not found", path=path)
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
        cls = classes[blob["class"]]
        model = cls(**blob["config"])
        model.load_state_dict(blob["state_dict"])
    except KeyError as e:
        raise InputError(f"not an lhcml GNN model file (missing {e})", path=path) from e
    except Exception as e:
        raise InputError(f"cannot read model: {str(e).splitlines()[0]}", path=path) from e
    return model.to(device).eval(), blob
