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
# The controlled task: pointer-1 and pointer-2 (3 chains of H one-token cells) on embed-bert (no transformer
# layer, trained from scratch with the head), depth K = 1..4, 3 seeds, 3000 steps, two shards run side by side (an earlier
# launch with --depths 1-8 was stopped for time; its finished runs, seed 0 of pointer-1 at K = 5..8 (SLA to 7), stay in runs.csv).
PTR="--tasks pointer-1,pointer-2 --models embed-bert --heads san-1 --seeds 3 --max-steps 3000 --max-eval-samples 1000 \
    --precision no --analysis depth,gradients,attention --depths 1-4 --out results/paper-analyses/pointer-depth"
OMP_NUM_THREADS=1 python run_bench.py $PTR --shard 0/2 & OMP_NUM_THREADS=1 python run_bench.py $PTR --shard 1/2; wait
python run_bench.py $PTR --report-only
