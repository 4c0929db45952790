#!/usr/bin/env bash
# The exact commands that produced this folder (run from the repository root, ../shared/data beside it).
set -euo pipefail
export HF_HUB_OFFLINE=1
OUT=results/glue-cifar-minilm
python run_bench.py --tasks rte,mrpc,cola,stsb,sst2 --models minilm --heads native,san-3,sla-3,mhap --seeds 3 \
    --data-dir ../shared/data --max-train-samples 800 --epochs 2 --precision bf16 --out $OUT
python run_bench.py --tasks cifar10 --models vit-small-p4 --heads native,san-3,sla-3,mhap --seeds 3 \
    --data-dir ../shared/data --max-train-samples 4000 --max-eval-samples 5000 --epochs 2 --precision bf16 --out $OUT
