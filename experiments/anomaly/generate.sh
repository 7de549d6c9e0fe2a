#!/usr/bin/env bash
# The jet samples of the DarkCLR study (docs/anomaly-detection.md): QCD background and a
# scan of semi-visible (Hidden Valley) signal points, all in one jet-pT window so a score
# cannot separate them by jet pT alone. Resumable: rerun to finish an interrupted sample.
# Usage: experiments/anomaly/generate.sh OUT_DIR [JOBS]   (~17 min on 2 cores)
set -euo pipefail
out=${1:?usage: generate.sh OUT_DIR [JOBS]}
jobs=${2:-2}
common=(--pt-min 450 --pt-max 650 --jobs "$jobs" --events-per-chunk 1000)
lhcml jets generate --process qcd --out "$out/qcd" --jets 40000 --seed 101 "${common[@]}"
# name zprime meson_mass r_inv: r_inv scan at (1500, 20); meson-mass and Z'-mass variations.
while read -r name mz mmeson rinv; do
  lhcml jets generate --process dark --out "$out/$name" --jets 6000 --seed 202 \
    --zprime-mass "$mz" --dark-meson-mass "$mmeson" --dark-lambda "$mmeson" --r-inv "$rinv" \
    "${common[@]}"
done <<'POINTS'
dark_m20_r0.1 1500 20 0.1
dark_m20_r0.3 1500 20 0.3
dark_m20_r0.5 1500 20 0.5
dark_m20_r0.75 1500 20 0.75
dark_m5_r0.3 1500 5 0.3
dark_m50_r0.3 1500 50 0.3
dark_z2000_m20_r0.3 2000 20 0.3
POINTS
