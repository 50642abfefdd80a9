#!/usr/bin/env bash
# One paper-length run (89 outer epochs, the official schedule's length for n=9000, b=32) of
# Baseline CN and of GAMO (conv, LS) on Fashion-MNIST with the paper profile, then the curves.
#   bash bench/paper_run.sh [seed] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-0}; threads=${2:-2}
for method in baseline gamo; do
  out=bench/out/fmnist-paper-$method-seed$seed
  if [ -f "$out/final.json" ] && grep -q '"complete": true' "$out/final.json"; then continue; fi
  if [ -f "$out/checkpoint.pt" ]; then
    python -m gamo train --resume "$out"
  else
    rm -rf "$out"
    python -m gamo train --dataset fashion-mnist --profile paper --method $method --loss ls --epochs 89 \
      --seed "$seed" --threads "$threads" --snapshot-every 0 --out "$out"
  fi
done
python bench/curves.py bench/out/fmnist-paper-baseline-seed$seed bench/out/fmnist-paper-gamo-seed$seed \
  --out bench/results/fmnist_paper_curves
