"""Shared helpers for the tests that drive run_bench.py: a tiny offline grid and its command line."""
from pathlib import Path

import pandas as pd

TINY = ["--max-train-samples", "64", "--max-eval-samples", "40", "--max-steps", "2", "--batch-size", "16"]


def tiny_args(out, tasks="toy-sentiment", models="tiny-bert", heads="native,sla-2:d=16", seeds=2, extra=()):
    return ["--tasks", tasks, "--models", models, "--heads", heads, "--seeds", str(seeds), "--out", str(out),
            *TINY, *extra]


def runs(out) -> pd.DataFrame:
    return pd.read_csv(Path(out) / "runs.csv")
