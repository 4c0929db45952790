#!/usr/bin/env bash
# The exact commands that produced this folder (run from the repository root, ../shared/data beside it).
# Probe mode: MiniLM frozen, its features computed once per task and cached; only the heads train.
set -euo pipefail
export HF_HUB_OFFLINE=1
COMMON="--mode probe --models minilm --data-dir ../shared/data --max-train-samples 500 --max-eval-samples 500 --epochs 3 --precision bf16"
# Depth: san-K and sla-K for K = 1..8, 5 seeds, four GLUE tasks.
python run_bench.py $COMMON --tasks sst2,rte,mrpc,cola --heads san-1 --seeds 5 --analysis depth --depths 1-8 \
    --out results/paper-analyses/glue-probe
# Gradient flow and attention weights per layer, SAN against SLA at K = 4, on SST-2.
python run_bench.py $COMMON --tasks sst2 --heads san-4,sla-4 --seeds 5 --analysis gradients,attention \
    --out results/paper-analyses/sst2-internals
# Width: san-3 and sla-3 at d = 32..512 on SST-2.
python run_bench.py $COMMON --tasks sst2 --heads san-3 --seeds 5 --analysis width --widths 32,64,128,256,512 \
    --width-depth 3 --out results/paper-analyses/width-probe
