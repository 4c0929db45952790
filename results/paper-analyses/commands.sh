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
# One row per run_id (idempotent): '--heads san-3' and the sweep's 'san-3:d=256' name one head.
python run_bench.py merge results/paper-analyses/width-probe/runs.csv --out results/paper-analyses/width-probe
# The controlled task: pointer-1..4 (3 chains of H one-token cells) on embed-bert (no transformer layer, trained from
# scratch with the head), depth K = 1..8, 5 seeds, 3000 steps, two shards side by side. Seeds 0-2 first, then 3-4, so
# that a stopped study leaves whole seeds of every task. The folder was filled in two passes of this loop, first with
# --depths 1-6 and then with --depths 1-8; a pass skips the cells already in runs.csv, so one pass gives the same rows.
PTR="--tasks pointer-1,pointer-2,pointer-3,pointer-4 --models embed-bert --heads san-1 --max-steps 3000 \
    --max-eval-samples 1000 --precision no --analysis depth,gradients,attention --depths 1-8 \
    --out results/paper-analyses/pointer-depth"
for S in 3 5; do
    OMP_NUM_THREADS=1 python run_bench.py $PTR --seeds $S --shard 0/2 & OMP_NUM_THREADS=1 python run_bench.py $PTR --seeds $S --shard 1/2; wait
done
python run_bench.py $PTR --seeds 5 --report-only
# Width on the controlled task: san-2 and sla-2 at d = 32..512 on pointer-1 (the depth a 1-hop task needs, plus one).
WID="--tasks pointer-1 --models embed-bert --heads san-2 --seeds 5 --max-steps 3000 --max-eval-samples 1000 --precision no \
    --analysis width --widths 32,64,128,256,512 --width-depth 2 --out results/paper-analyses/pointer-width"
OMP_NUM_THREADS=1 python run_bench.py $WID --shard 0/2 & OMP_NUM_THREADS=1 python run_bench.py $WID --shard 1/2; wait
python run_bench.py merge results/paper-analyses/pointer-width/runs.csv --out results/paper-analyses/pointer-width
python run_bench.py $WID --report-only
# Budget check on two hops: san-2 and sla-2 on pointer-2 at 20,000 steps (6.7x the sweep's), one seed, with the final
# training loss in each row's metrics: does a longer run learn the hops, or memorise the 20,000 training lines?
OMP_NUM_THREADS=1 python run_bench.py --tasks pointer-2 --models embed-bert --heads san-2,sla-2 --seeds 1 --max-steps 20000 \
    --max-eval-samples 1000 --precision no --out results/paper-analyses/pointer-budget
