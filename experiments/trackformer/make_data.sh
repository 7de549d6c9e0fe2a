#!/usr/bin/env bash
# Simulated data for the track-fitting stage (lhcml fit). Run from the repository root.
# Training: particle-gun muons and pions (clean coverage of 0.5-10 GeV) and ttbar with
# pile-up mu=50 (realistic mix); validation: separate seeds; benchmark: ttbar mu=200.
# About 10 minutes on 2 cores.
set -euo pipefail
OUT=${1:-data/fitting}
J=${JOBS:-1}
gun() { lhcml simulate -o "$OUT/$1" --process gun --gun-pdg "$2" --seed "$3" -n "$4" \
          --gun-multiplicity 20 --gun-pt-min 0.5 --gun-pt-max 10 -j "$J"; }
gun gun_mu 13 101 1500
gun gun_pi 211 102 750
lhcml simulate -o "$OUT/ttbar_mu50" --process ttbar --mu 50 --seed 103 -n 120 -j "$J"
# Validation (never trained on) and the benchmark sample.
gun gun_mu_val 13 201 200
lhcml simulate -o "$OUT/ttbar_mu50_val" --process ttbar --mu 50 --seed 203 -n 10 -j "$J"
lhcml simulate -o "$OUT/ttbar_mu200_bench" --process ttbar --mu 200 --seed 301 -n 20 -j "$J"
