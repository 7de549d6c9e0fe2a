"""Target-edge efficiency at a purity, split by the particle's pT and vertex |z|.

    python experiments/gnn/edge_breakdown.py runs/gnn-v7/edge_classifier/graphs/test

Reads the scored graphs of the edge classifier stage (they carry ``particle_pt`` and
``particle_vz``), takes the loosest cut reaching ``--purity`` over all of them
(:func:`lhcml.gnn.edge_classification.evaluate.efficiency_at_purity`), and prints the
share of target edges kept in pT and |vz| bins: the numbers behind the model README's "why the weights" table. Last,
each event at its own cut reaching the purity: the mean efficiency, its standard error and
the lowest event (the event-to-event spread of the pooled number).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from lhcml.gnn.edge_classification.evaluate import efficiency_at_purity
from lhcml.gnn.files import list_graphs, load_graph

PT_BINS = (1.0, 2.0, 5.0, 10.0, np.inf)
VZ_BINS = (0.0, 25.0, 50.0, 75.0, 100.0, 150.0, np.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graphs", help="folder of scored graph files")
    parser.add_argument("--purity", type=float, default=0.9)
    args = parser.parse_args()
    scores, y, target, pt, vz, per_event = [], [], [], [], [], []
    for f in list_graphs(args.graphs):
        g = load_graph(f)
        if g.scores is None or g.particle_pt is None or g.particle_vz is None:
            raise SystemExit(f"{f}: needs scores and particle_pt / particle_vz")
        src = g.edge_index[0]
        scores.append(g.scores)
        y.append(g.y)
        target.append(g.target)
        pt.append(g.particle_pt[src])
        vz.append(np.abs(g.particle_vz[src]))
        per_event.append(efficiency_at_purity(g.scores, g.y, g.target, args.purity)[1])
    s, yy, t = (np.concatenate(a) for a in (scores, y, target))
    cut, eff, pur = efficiency_at_purity(s, yy, t, args.purity)
    print(
        f"{args.graphs}: efficiency {100 * eff:.2f} % at purity {100 * pur:.2f} % (cut {cut:.3f})"
    )
    kept = s[t] >= cut
    for name, values, edges in (("pT [GeV]", pt, PT_BINS), ("|vz| [mm]", vz, VZ_BINS)):
        v = np.concatenate(values)[t]
        cells = []
        for lo, hi in itertools.pairwise(edges):
            m = (v >= lo) & (v < hi)
            cells.append(f"{lo:g}-{hi:g}: {100 * kept[m].mean():.1f} % ({m.sum()})")
        print(f"  {name}: " + ", ".join(cells))
    e = 100 * np.array(per_event)
    err = e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else float("nan")
    print(
        f"  per event (own cut): mean {e.mean():.2f} +- {err:.2f} %, lowest {e.min():.2f} %,"
        f" {int((e >= 99.0).sum())} of {len(e)} events >= 99 %"
    )


if __name__ == "__main__":
    main()
