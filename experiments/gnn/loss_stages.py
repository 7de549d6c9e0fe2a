"""Where the particles a model set misses are lost: graph, classifier or building.

For each fiducial particle (pT > 1 GeV, |eta| < 4, >= 5 hits, no electrons) that no
track of >= 5 hits matches (double majority), primary or displaced (made within 300 mm,
not primary), the share of its truth edges the graph keeps and the classifier passes:
graph (< 80 % kept), classifier (< 80 % pass), else building (docs/real-data.md)::

    python experiments/gnn/loss_stages.py data/gnn/test10 --models runs/gnn-v12/model_set
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from lhcml.gnn.features import truth_edges, truth_edges_found
from lhcml.gnn.pipeline import GNNChain
from lhcml.io import list_events, read_event
from lhcml.metrics.tracking import FiducialSelection, match_tracks, particle_table

#: pT > 1 GeV, |eta| < 4, >= 5 hits, no electrons; primaries and displaced within 300 mm.
FIDUCIAL = FiducialSelection(
    pt_min=1.0, min_hits=5, primary_only=False, max_prod_r=300.0, exclude_electrons=True
)


def stage(graph_share: float, pass_share: float) -> str:
    if graph_share < 0.8:
        return "graph"
    return "classifier" if pass_share < 0.8 else "building"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("events", type=Path)
    ap.add_argument("--models", type=Path, default=None, help="model set (default: shipped)")
    ap.add_argument("--n", type=int, default=10, help="events")
    ap.add_argument("--threshold", type=float, default=None, help="default: the set's")
    args = ap.parse_args()
    chain = GNNChain(args.models) if args.models else GNNChain()
    threshold = args.threshold if args.threshold is not None else chain.threshold
    rows = []
    for eid in list_events(args.events)[: args.n]:
        event = read_event(args.events, eid)
        res = chain.reconstruct(event)
        m = match_tracks(res.tracks, event.truth, "double_majority")
        found = set(m.loc[m.matched & (m.nhits >= 5), "particle_id"])
        kin = particle_table(event.particles)
        nh = event.truth.groupby("particle_id").size().reindex(kin.particle_id).fillna(0)
        base = FIDUCIAL.select(event.particles, nh.to_numpy())
        edges, epid = truth_edges(event)
        final = res.edges[list(res.edges)[-1]]
        kept = truth_edges_found(res.edges["graph_construction"], edges, len(event.hits))
        passed = truth_edges_found(final[:, res.scores >= threshold], edges, len(event.hits))
        kinds = (("primary", kin.primary), ("displaced", ~kin.primary))
        for kind, mask in kinds:
            for pid in kin.particle_id[base & mask]:
                if pid in found:
                    continue
                s = epid == pid
                n = max(int(s.sum()), 1)
                rows.append((kind, stage(kept[s].sum() / n, passed[s].sum() / n)))
    table = pd.DataFrame(rows, columns=["particles", "lost in"])
    print(table.value_counts().sort_index().to_string())


if __name__ == "__main__":
    main()
