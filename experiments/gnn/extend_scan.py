"""Graph-level scan behind v12's map extension (docs/real-data.md, v12 section).

Extends the shipped map with the doublets of particles beyond its primaries (made within
``--max-prod-r``) from the first ``--n`` events of each training sample, then counts, on
the val events and on the shared real event, the truth edges of the classifier's target
(secondaries within 300 mm included) that the windows lose, and the edges per event::

    python experiments/gnn/extend_scan.py --n 160 --max-prod-r 300 \
        --samples data/gnn-v11/train data/gnn-v11/train_noisy --val data/gnn-v11/val \
        --models V11_MODEL_SET   # e.g. git archive ca275d8 src/lhcml/gnn/models/default
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lhcml.gnn.features import event_nodes, graph_metrics
from lhcml.gnn.files import find_detectors
from lhcml.gnn.graph_construction.infer import _detector_translation
from lhcml.gnn.graph_construction.module_map import ModuleMap
from lhcml.io import list_events, read_event
from lhcml.metrics.tracking import FiducialSelection

MODELS = Path("src/lhcml/gnn/models/default")
TARGET = FiducialSelection(
    pt_min=1.0, min_hits=3, primary_only=False, max_prod_r=300.0, exclude_electrons=True
)


def lost_and_edges(mm: ModuleMap, directory: Path, models: Path) -> tuple[int, int, float]:
    translate = _detector_translation(models, find_detectors(directory))
    graphs = []
    for eid in list_events(directory):
        event = read_event(directory, eid)
        graph = event_nodes(event, target=TARGET)
        graph.edge_index = mm.build_edges(translate(event.hits))
        graph.relabel()
        graphs.append(graph)
    m = graph_metrics(graphs)
    total = m["target_truth_edges"]
    return total - m["target_truth_edges_found"], total, m["edges_per_event"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=160, help="events per sample (0: no extension)")
    ap.add_argument("--max-prod-r", type=float, default=300.0)
    ap.add_argument("--samples", nargs="+", type=Path, default=[])
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--real", type=Path, default=Path("../shared/data/trackml"))
    ap.add_argument("--models", type=Path, default=MODELS, help="a v11 model set")
    args = ap.parse_args()
    # The map file as v11 ships it (v12's already holds the extension: run on v11's).
    mm = ModuleMap.load(args.models / "module_map.parquet", margin=0.4, margin_count=1.25)
    if args.n and mm.config["primary_only"]:
        events = (read_event(d, e) for d in args.samples for e in list_events(d)[: args.n])
        mm.extend(events, primary_only=False, max_prod_r=args.max_prod_r, exclude_electrons=True)
    for label, directory in (("val", args.val), ("real", args.real)):
        lost, total, edges = lost_and_edges(mm, directory, args.models)
        print(f"{label}: lost {lost} of {total} ({lost / total:.3%}), {edges:,.0f} edges/event")


if __name__ == "__main__":
    main()
