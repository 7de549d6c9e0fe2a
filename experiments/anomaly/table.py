"""Markdown tables of the DarkCLR study from the metrics.json files of study.sh.

Usage: python experiments/anomaly/table.py RUNS_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCORES = ("clr", "nae", "knn", "norm")


def main(runs: Path) -> None:
    evals = sorted(p for p in runs.glob("*/eval/metrics.json"))
    if not evals:
        sys.exit(f"no */eval/metrics.json under {runs}")
    signals = list(json.loads(evals[0].read_text())["signals"])
    print("AUC (+- stat.) per signal point and score; last column: mean over the points\n")
    print("| model | score | " + " | ".join(signals) + " | mean |")
    print("|" + " --- |" * (len(signals) + 3))
    for path in evals:
        m = json.loads(path.read_text())
        for s in SCORES:
            cells = [
                f"{m['signals'][k][s]['auc']:.3f} +- {m['signals'][k][s]['auc_unc']:.3f}"
                for k in signals
            ]
            print(
                f"| {path.parent.parent.name} | {s} | "
                + " | ".join(cells)
                + f" | {m['mean_auc'][s]:.3f} |"
            )
    sup = {
        p.parent.name.removeprefix("eval_"): json.loads(p.read_text())
        for p in runs.glob("part_sup/eval_*/metrics.json")
    }
    if sup:
        cells = [f"{sup[k]['auc']:.3f}" if k in sup else "-" for k in signals]
        mean = sum(sup[k]["auc"] for k in signals if k in sup) / max(
            1, sum(k in sup for k in signals)
        )
        print("| ParT supervised (m20 r0.3) | p(dark) | " + " | ".join(cells) + f" | {mean:.3f} |")
    print(
        "\nBackground rejection 1/eps_B at 20 % / 50 % signal efficiency (+- stat.), the score of the best mean AUC per model\n"
    )
    print("| model | score | " + " | ".join(signals) + " |")
    print("|" + " --- |" * (len(signals) + 2))
    for path in evals:
        m = json.loads(path.read_text())
        best = max(SCORES, key=lambda s: m["mean_auc"][s])
        cells = []
        for k in signals:
            r = m["signals"][k][best]
            cells.append(
                f"{r['rejection_20']:.2f}+-{r['rejection_20_unc']:.2f} / {r['rejection_50']:.2f}+-{r['rejection_50_unc']:.2f}"
            )
        print(f"| {path.parent.parent.name} | {best} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/anomaly"))
