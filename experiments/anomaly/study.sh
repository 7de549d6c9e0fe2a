#!/usr/bin/env bash
# The DarkCLR study of docs/anomaly-detection.md: train the reference (CPU budget) and the
# variants, evaluate each on every signal point, train / test the supervised ParT, and
# print the tables. Samples first: experiments/anomaly/generate.sh data/anomaly.
# Usage: experiments/anomaly/study.sh [DATA_DIR] [RUNS_DIR]    (~1 h on 2 cores)
set -euo pipefail
data=${1:-data/anomaly}
runs=${2:-runs/anomaly}
here=$(dirname "$0")
signals=()
for s in dark_m20_r0.1 dark_m20_r0.3 dark_m20_r0.5 dark_m20_r0.75 dark_m5_r0.3 dark_m50_r0.3 \
  dark_z2000_m20_r0.3; do
  signals+=(--signal "$data/$s")
done
for cfg in darkclr_cpu darkclr_small darkclr_small_anomclr darkclr_small_n100; do
  [ -f "$runs/$cfg/weights.pt" ] || lhcml anomaly train "$here/$cfg.yaml" --out "$runs/$cfg" \
    --background "$data/qcd" -q
  lhcml anomaly evaluate "$runs/$cfg" --background "$data/qcd" "${signals[@]}" \
    --out "$runs/$cfg/eval"
done
[ -f "$runs/part_sup/weights.pt" ] || lhcml jets train "$here/part_supervised.yaml" \
  --out "$runs/part_sup" --data "$data/qcd" --data "$data/dark_m20_r0.3" -q
for s in "${signals[@]}"; do
  [ "$s" = --signal ] && continue
  lhcml jets evaluate "$runs/part_sup" --data "$data/qcd" --data "$s" \
    --out "$runs/part_sup/eval_$(basename "$s")" > /dev/null
done
python "$here/table.py" "$runs"
