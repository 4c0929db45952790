"""Parity with Hugging Face's own pipeline: the same model, examples and recipe, trained twice.

    python benchmarks/parity.py --task sst2 --model minilm --seeds 5 --max-train-samples 2000 \\
        --epochs 1 --precision bf16 --data-dir ../shared/data --out results/parity

Side A is ``run_bench.py --heads native`` (the harness's loop, in a subprocess, exactly as a user
runs it; it resumes from its own ``runs.csv``). Side B is ``transformers.Trainer`` on the stock HF
model: ``DataCollatorWithPadding``, Trainer's own length-grouped sampler, and the harness's recipe
passed explicitly: its AdamW and parameter groups (backbone ``lr``, classifier ``head_lr``, weight
decay on matrices only), its linear warm-up/decay schedule, clipping at ``max_grad_norm`` and the
same autocast precision. Both sides build the classifier under ``torch.manual_seed(seed)``, so seed
*s* starts from the same weights on both; data order and dropout masks are each side's own.

Written under ``OUT/<task>/``: ``harness/`` (the run_bench.py study), ``parity.csv`` (per seed:
both scores, their difference, both throughputs) and ``summary.md``: the mean paired difference
with a Student-t 95% CI over seeds, a per-example test pooled over seeds (McNemar for
classification, paired bootstrap for regression; from ``harness.stats``), and samples/s of both.
Target: the CI contains 0 and ``|mean difference| <= 1`` point (0.01).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("parity")
TARGET = 0.01  # one point of the task metric


# ------------------------------------------------------------------------------ the Trainer side
def harness_optimizer(model, recipe, total_steps: int):
    """The harness's AdamW, parameter groups and schedule for ``model`` (a stock HF classifier)."""
    from transformers import get_linear_schedule_with_warmup

    from harness.train import adamw, param_groups

    optimizer = adamw(param_groups(model, recipe))
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(recipe.warmup_ratio * total_steps), total_steps)


def trainer_for(model, train_dataset, tokenizer, recipe, seed: int, total_steps: int, output_dir: str,
                precision: str = "no", sampling: str = "group_by_length"):
    """A ``transformers.Trainer`` set up with the harness's recipe (``harness.train.TrainConfig``).

    ``train_dataset``: rows of ``input_ids`` (unpadded lists), ``attention_mask``, optional
    ``token_type_ids`` and ``labels``; ``DataCollatorWithPadding`` pads each batch to its longest row.
    ``sampling``: Trainer's ``train_sampling_strategy`` (``"sequential"`` in the loss-parity test).
    """
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=recipe.batch_size, max_steps=total_steps,
        max_grad_norm=recipe.max_grad_norm, bf16=precision == "bf16", fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(), seed=seed, data_seed=seed, train_sampling_strategy=sampling,
        report_to=[], save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0)
    class InOrderTrainer(Trainer):
        # Under train_sampling_strategy="group_by_length" Trainer also batches evaluation by length,
        # so predict() returns rows in that order, not the dataset's: pairing them with the dataset's
        # labels scores chance. Evaluation here reads rows in order, as the harness does.
        def _get_eval_sampler(self, eval_dataset):
            return torch.utils.data.SequentialSampler(eval_dataset)

    return InOrderTrainer(model=model, args=args, train_dataset=train_dataset,
                          data_collator=DataCollatorWithPadding(tokenizer),
                          optimizers=harness_optimizer(model, recipe, total_steps))


def _rows_as_records(rows) -> list[dict]:
    """``harness.data.TextRows`` as the per-example dicts a Trainer dataset yields."""
    keys = list(rows.features)
    return [{**{k: rows.features[k][i] for k in keys}, "labels": rows.labels[i]} for i in range(len(rows))]


def train_with_trainer(task, loaded, train_rows, eval_rows, recipe, seed: int, precision: str) -> dict:
    """One seed through Trainer: score on ``eval_rows``, predictions and samples/s of the training."""
    import torch

    torch.manual_seed(seed)  # as the runner does before it builds a model: the same classifier init
    model = loaded.build()
    total = max(1, math.ceil(recipe.epochs * math.ceil(len(train_rows) / recipe.batch_size)))
    with tempfile.TemporaryDirectory() as scratch:
        trainer = trainer_for(model, _rows_as_records(train_rows), loaded.tokenizer, recipe, seed, total, scratch,
                              precision)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        output = trainer.predict(_rows_as_records(eval_rows))
    logits = np.asarray(output.predictions, dtype=np.float64)
    predictions = logits.squeeze(-1) if task.is_regression else logits.argmax(-1)
    labels = np.asarray(output.label_ids)
    if not np.array_equal(labels, eval_rows.labels.numpy()):
        raise RuntimeError("Trainer returned the evaluation rows out of order")
    scores = task.compute_metrics(predictions, labels)
    return dict(score=scores[task.metric], predictions=predictions, labels=labels,
                samples_per_second=len(train_rows) * total / math.ceil(len(train_rows) / recipe.batch_size) / seconds,
                steps=total)


# ------------------------------------------------------------------------------ the harness side
def run_harness(args, task_name: str, out: Path) -> None:
    command = [sys.executable, str(ROOT / "run_bench.py"), "--tasks", task_name, "--models", args.model,
               "--heads", "native", "--seeds", str(args.seeds), "--epochs", str(args.epochs),
               "--precision", args.precision, "--out", str(out)]
    if args.max_train_samples:
        command += ["--max-train-samples", str(args.max_train_samples)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    log.info("harness side: %s", " ".join(command))
    subprocess.run(command, check=True, cwd=ROOT)


# ------------------------------------------------------------------------------ statistics
def t_interval(deltas: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of paired per-seed differences (NaN with fewer than 2)."""
    from scipy import stats as st

    if len(deltas) < 2:
        return math.nan, math.nan
    half = st.t.ppf(0.5 + confidence / 2, len(deltas) - 1) * np.std(deltas, ddof=1) / math.sqrt(len(deltas))
    return float(np.mean(deltas) - half), float(np.mean(deltas) + half)


def summarize(task, frame) -> dict:
    """The parity verdict of one task from its per-seed frame (columns of ``parity.csv``)."""
    deltas = (frame["harness"] - frame["trainer"]).to_numpy(dtype=np.float64)
    low, high = t_interval(deltas)
    return dict(task=task.name, metric=task.metric, seeds=len(frame), harness=float(frame["harness"].mean()),
                trainer=float(frame["trainer"].mean()), delta=float(deltas.mean()), ci_low=low, ci_high=high,
                meets=bool(low <= 0 <= high and abs(deltas.mean()) <= TARGET),
                harness_sps=float(frame["harness_sps"].median()), trainer_sps=float(frame["trainer_sps"].median()))


def example_test(task, harness_predictions: list, trainer_predictions: list, labels: np.ndarray):
    """Per-example paired test pooled over seeds: McNemar (classification) or a paired bootstrap."""
    from harness import stats

    if task.is_regression:
        result = stats._pooled_paired_bootstrap(task.metric, trainer_predictions, harness_predictions,
                                                [labels] * len(harness_predictions), 2000, 0, 0.95)
        return "paired-bootstrap", result["p_value"]
    right_h = np.concatenate([p == labels for p in harness_predictions])
    right_t = np.concatenate([p == labels for p in trainer_predictions])
    return "mcnemar", stats.mcnemar(right_t, right_h)["p_value"]


def markdown(rows: list[dict], env: str) -> str:
    lines = [f"Environment: {env}", "",
             "| task | metric | seeds | run_bench.py (native) | Trainer | Δ harness − Trainer (95% t-CI) | "
             "per-example test p | target met | samples/s harness | samples/s Trainer |",
             "|" + "|".join(["---"] * 10) + "|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['metric']} | {r['seeds']} | {r['harness']:.4f} | {r['trainer']:.4f} | "
                     f"{r['delta']:+.4f} ({r['ci_low']:+.4f}, {r['ci_high']:+.4f}) | {r['p_value']:.3f} ({r['test']}) | "
                     f"{'yes' if r['meets'] else 'no'} | {r['harness_sps']:.1f} | {r['trainer_sps']:.1f} |")
    lines += ["", f"Target: the CI of the mean paired difference contains 0 and |Δ| <= {TARGET}. "
              "Samples/s are medians over seeds of each side's training loop."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ driver
def parity_task(args, task_name: str, out: Path) -> dict:
    import pandas as pd
    import torch

    from harness import data, results
    from harness.models import load_model
    from harness.runner import GridConfig, load_splits
    from harness.train import TrainConfig, backbone_lr
    from tasks import get_task

    task = get_task(task_name)
    folder = out / task_name
    run_harness(args, task_name, folder / "harness")
    frame = results.ResultsStore(folder / "harness" / "runs.csv").read_frame(dedupe=True)
    frame = frame[(frame["status"] == "ok") & (frame["head"] == "native")].set_index("seed")

    config = GridConfig(tasks=[task], models=[args.model], heads=[], seeds=[], out_dir=folder,
                        data_dir=args.data_dir, max_train_samples=args.max_train_samples)
    splits = load_splits(task, config)
    train = splits[task.train_split]
    loaded = load_model(args.model, task.num_labels, label_names=task.label_names)
    train_rows = data.encode(train, task, loaded, config.max_length)
    eval_rows = data.encode(splits[task.primary_eval_split], task, loaded, config.max_length)
    recipe = TrainConfig(epochs=args.epochs, lr=backbone_lr(None, loaded.pretrained))
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))))

    per_seed, harness_preds, trainer_preds = [], [], []
    for seed in range(args.seeds):
        mine = frame.loc[seed]
        theirs = train_with_trainer(task, loaded, train_rows, eval_rows, recipe, seed, args.precision)
        predictions, labels = results.load_predictions(folder / "harness", mine["run_id"])
        if not np.array_equal(labels, theirs["labels"]):
            raise RuntimeError("the two sides were evaluated on different examples")
        harness_preds.append(predictions)
        trainer_preds.append(theirs["predictions"])
        per_seed.append(dict(task=task_name, seed=seed, harness=float(mine["score"]), trainer=theirs["score"],
                             delta=float(mine["score"]) - theirs["score"], harness_sps=float(mine["samples_per_second"]),
                             trainer_sps=theirs["samples_per_second"], harness_steps=int(mine["steps"]),
                             trainer_steps=theirs["steps"]))
        log.info("%s seed %d: harness %.4f, Trainer %.4f", task_name, seed, per_seed[-1]["harness"], theirs["score"])
    table = pd.DataFrame(per_seed)
    row = summarize(task, table)
    row["test"], row["p_value"] = example_test(task, harness_preds, trainer_preds, labels)
    return dict(summary=row, seeds=table)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="sst2,stsb", help="comma-separated tasks")
    p.add_argument("--model", default="minilm")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--max-train-samples", type=int, default=2000)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--precision", choices=["no", "bf16", "fp16"], default="bf16")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="results/parity")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import pandas as pd
    import torch
    import transformers

    from harness.results import utc_now

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    found = [parity_task(args, name.strip(), out) for name in args.task.split(",") if name.strip()]
    env = (f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
           f"{args.precision}, {args.max_train_samples} train examples, {args.epochs:g} epoch(s), {utc_now()[:10]}")
    text = markdown([f["summary"] for f in found], env)
    pd.concat([f["seeds"] for f in found]).to_csv(out / "parity.csv", index=False, float_format="%.6g")
    (out / "summary.md").write_text("# Parity: run_bench.py against transformers.Trainer\n\n"
                                    f"Written by `python benchmarks/parity.py {' '.join(argv or sys.argv[1:])}`.\n\n" + text)
    print(text)
    return 0 if all(f["summary"]["meets"] for f in found) else 1


if __name__ == "__main__":
    sys.exit(main())
