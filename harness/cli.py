"""``run_bench.py``: parse the flags (and ``--config`` file) into a study and call ``pipeline.run_study``.

    python run_bench.py                                    # the embedded offline demo
    python run_bench.py --tasks sst2,rte --models minilm --heads native,san-3,sla-3 --seeds 3 \\
        --data-dir ../shared/data --max-train-samples 2000 --out results/my-study
    python run_bench.py merge results/a/runs.csv results/b/runs.csv --out results/all
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .pipeline import RunOptions, UsageError, _reason, prepare, run_study, user_errors
from .study import FLAG_TO_KEY, study_from_args

DEFAULTS = dict(tasks="toy-sentiment,digits", models="tiny-bert,tiny-vit", heads="native,sla-2", seeds=2)
EXIT_USAGE = 2
EXIT_WRITE = 3  # the study stopped on an error writing its results (disk full, read-only): rows written stay
log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_bench.py", description="Fine-tune every (task, model, head, seed) cell, write runs.csv, "
        "then the delta table against the native head. With no arguments: a small offline demo.")
    g = p.add_argument_group("grid")
    g.add_argument("--tasks", default=DEFAULTS["tasks"], help="comma-separated task names (--list shows them)")
    g.add_argument("--models", default=DEFAULTS["models"],
                   help="comma-separated: hub names, local directories, 'minilm', or named configs (--list)")
    g.add_argument("--heads", default=DEFAULTS["heads"], help="comma-separated head specs, e.g. native,san-3,sla-3:d=128")
    g.add_argument("--seeds", type=int, default=DEFAULTS["seeds"], help="number of seeds (0..N-1)")
    g.add_argument("--out", default="results/default", help="output directory (runs.csv, deltas.csv, summary.md)")
    g.add_argument("--data-dir", default=None, help="local parquet data: DIR/<local_subdir>/<split>.parquet, e.g. DIR/glue/sst2/train.parquet")
    g.add_argument("--task-file", action="append", default=[], help="a .py file or module that registers tasks (repeatable)")
    g.add_argument("--mode", choices=["finetune", "probe"], default="finetune",
                   help="probe: frozen backbone, computed once and cached; only the head and classifier train")
    g.add_argument("--cache-dir", default=None,
                   help="probe-mode feature cache (default $SLA_BENCH_CACHE or ~/.cache/sla-bench)")
    g.add_argument("--force", action="store_true", help="rerun cells already in runs.csv")
    g.add_argument("--shard", default="0/1", help="i/n: run only every n-th cell starting at i (0-based)")
    g.add_argument("--lease", type=float, default=300.0, metavar="SECONDS",
                   help="workers sharing --out claim each cell; a claim not renewed for this long (its worker "
                        "was killed) is taken again")
    b = p.add_argument_group("budget and recipe")
    b.add_argument("--epochs", type=float, default=3.0)
    b.add_argument("--max-steps", type=int, default=None, help="overrides --epochs")
    b.add_argument("--max-train-samples", type=int, default=None, help="a fixed random subset of train")
    b.add_argument("--max-eval-samples", type=int, default=None, help="a fixed random subset of each eval split")
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--lr", type=float, default=None, help="backbone learning rate (default 5e-5 pretrained, 1e-3 from scratch)")
    b.add_argument("--head-lr", type=float, default=1e-3, help="learning rate of the head and classifier")
    b.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay of weight matrices (not biases, norms)")
    b.add_argument("--warmup-ratio", type=float, default=0.1, help="share of the steps with a linear warm-up, in [0, 1)")
    b.add_argument("--max-length", type=int, default=128, help="text truncation length (padding is per batch)")
    b.add_argument("--precision", choices=["no", "bf16", "fp16"], default="no", help="autocast (bf16 helps on CPUs too)")
    b.add_argument("--compile", action="store_true", help="torch.compile each model (pays off on long GPU runs)")
    a = p.add_argument_group("the paper's analyses (harness/analyses/drivers.py)")
    a.add_argument("--analysis", default="", help="comma-separated: depth, gradients, attention, width")
    a.add_argument("--depths", default="1-8", help="depth sweep: san-K and sla-K for these K")
    a.add_argument("--widths", default="32,64,128,256,512", help="width sweep: these latent sizes d")
    a.add_argument("--width-depth", type=int, default=3, help="the K of the width sweep")
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="also debug messages (tracebacks of failed runs)")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only; no progress bars")
    p.add_argument("--report-to", default="", metavar="TRACKERS",
                   help="log each run to accelerate trackers, e.g. tensorboard (event files under OUT/tracking/)")
    p.add_argument("--config", default=None, metavar="STUDY.yaml",
                   help="a study file (YAML or JSON, keys as these flags: docs in harness/study.py); flags override it")
    p.add_argument("--list", action="store_true", help="list tasks, heads and named models, then exit")
    p.add_argument("--report-only", action="store_true", help="rewrite deltas.csv and summary.md from runs.csv")
    p.add_argument("--baseline", default="native",
                   help="head(s) the delta table compares against, comma-separated (e.g. native,mean); no retraining")
    return p


def list_everything(task_files=()) -> None:
    from tasks import available_tasks, get_task, load_task_plugins

    from .families import TESTED_FAMILIES
    from .heads import available_heads
    from .models import ALIASES, NAMED_CONFIGS

    added = set(load_task_plugins(task_files))  # the user's --task-file tasks are listed too
    print("tasks:")
    for name in available_tasks():
        t = get_task(name)
        print(f"  {name:16s} {t.modality:5s} {t.metric}" + ("  (from --task-file)" if name in added else ""))
    print("heads:", ", ".join(available_heads()), "(options: see docs/heads.md)")
    print("model families tested with every head (others are read the same way: docs/families.md):")
    for group, names in TESTED_FAMILIES.items():
        print(f"  {group}: {', '.join(names)}")
    print("models (named configs, trained from scratch):")
    for name, (modality, _, text) in NAMED_CONFIGS.items():
        print(f"  {name:14s} {modality:5s} {text}")
    print("aliases:", ", ".join(f"{k} ({v})" for k, v in ALIASES.items()), "; or any hub name / local directory")


def merge_main(argv) -> int:
    from .results import merge_results

    p = argparse.ArgumentParser(prog="run_bench.py merge", description="merge runs.csv files (e.g. from shards)")
    p.add_argument("sources", nargs="+")
    p.add_argument("--out", required=True, help="directory (or .csv path) of the merged runs.csv")
    args = p.parse_args(argv)
    dest = Path(args.out) if args.out.endswith(".csv") else Path(args.out) / "runs.csv"
    missing = [s for s in args.sources if not Path(s).is_file()]
    if missing:
        raise UsageError(f"no such results file: {', '.join(missing)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = merge_results(args.sources, dest)
    print(f"merged {len(args.sources)} files into {dest}: {n} rows")
    _copy_predictions(args.sources, dest.parent)
    return 0


def _copy_predictions(sources, out_dir: Path) -> None:
    import shutil

    for source in sources:
        folder = Path(source).parent / "predictions"
        if folder.is_dir() and folder.resolve() != (out_dir / "predictions").resolve():
            (out_dir / "predictions").mkdir(exist_ok=True)
            for f in folder.glob("*.npz"):
                if not (out_dir / "predictions" / f.name).exists():
                    shutil.copy2(f, out_dir / "predictions" / f.name)


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["merge"]:
            return merge_main(argv[1:])
        args = build_parser().parse_args(argv)
        _quiet()
        if args.list:
            list_everything(args.task_file)
            return 0
        study = study_from_args(args, _explicit(argv))
        options = RunOptions(force=args.force, shard=args.shard, report_only=args.report_only,
                             report_to=tuple(t.strip() for t in args.report_to.split(",") if t.strip()),
                             lease=args.lease)
        prepared = prepare(study, options)
    except user_errors() as error:
        print(f"run_bench.py: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    from .fileio import is_write_error

    _log_to_stderr(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    try:
        result = run_study(study, options, command="run_bench.py " + " ".join(argv), prepared=prepared)
    except OSError as error:  # disk full, a folder made read-only mid-study: stop cleanly, rows stay
        if not is_write_error(error):
            raise
        return _stopped(prepared[-1][0], error)
    if result.table is None:  # not the main process of a launcher
        return 0
    from .report import markdown

    for (grid, _), counts in zip(prepared, result.counts):
        print(f"grid: {counts['total']} cells, {counts['pending']} run now ({counts['ok']} ok, "
              f"{counts['failed']} failed), {counts['total'] - counts['pending']} already in {grid.out_dir}/runs.csv"
              + (f" ({counts['elsewhere']} of them run, or still running, in other workers)"
                 if counts.get("elsewhere") else ""))
    print(markdown(result.table))
    return 0


def _stopped(config, error: OSError) -> int:
    from .results import ResultsStore

    try:
        kept = f"the {len(ResultsStore(config.out_dir / 'runs.csv').rows())} rows already in runs.csv are intact"
    except (OSError, ValueError):
        kept = "runs.csv was not changed by the failed write"
    log.error("the study stopped: writing under %s failed: %s (%s). The run being written was not recorded; %s. "
              "Free some space (or fix the permissions), then rerun the same command: it resumes with the runs "
              "that are missing.", config.out_dir, _reason(error), getattr(error, "filename", None) or "", kept)
    return EXIT_WRITE


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (which tests and notebooks replace), not the one at setup."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def _log_to_stderr(level: int = logging.INFO) -> None:
    """The tool's own messages (``harness.*`` loggers) go to stderr, once per process."""
    logger = logging.getLogger("harness")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("run_bench.py: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


# ------------------------------------------------------------------------------ study files
def _explicit(argv) -> set:
    """The keys of the flags given on the command line (they override a study file)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return {FLAG_TO_KEY.get(k, k) for k in vars(parser.parse_args(argv))}



if __name__ == "__main__":
    sys.exit(main())
