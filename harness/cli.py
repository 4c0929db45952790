"""``run_bench.py``: parse, validate (every bad input fails here, before anything is written), run, report.

    python run_bench.py                                    # the embedded offline demo
    python run_bench.py --tasks sst2,rte --models minilm --heads native,san-3,sla-3 --seeds 3 \\
        --data-dir ../shared/data --max-train-samples 2000 --out results/my-study
    python run_bench.py merge results/a/runs.csv results/b/runs.csv --out results/all
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import sys
from pathlib import Path

DEFAULTS = dict(tasks="toy-sentiment,digits", models="tiny-bert,tiny-vit", heads="native,sla-2", seeds=2)
EXIT_USAGE = 2
EXIT_WRITE = 3  # the study stopped on an error writing its results (disk full, read-only): rows written stay
log = logging.getLogger(__name__)


class UsageError(ValueError):
    """Bad command-line input."""


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


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


def check_trackers(names: list[str]) -> list[str]:
    """``--report-to`` names: accelerate trackers that are installed."""
    if not names:
        return names
    import accelerate.utils
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise UsageError(f"--report-to {name}: not a tracker; choose from {', '.join(LOGGER_TYPE_TO_CLASS)}")
        available = getattr(accelerate.utils, f"is_{name}_available", None)
        if available is not None and not available():
            package = {"tensorboard": "tensorboard", "comet_ml": "comet-ml"}.get(name, name)
            raise UsageError(f"--report-to {name}: the tracker is not installed; pip install {package}"
                             + (" (or pip install -e .[tracking])" if name == "tensorboard" else ""))
    return names


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r} must look like i/n, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard {text!r}: need 0 <= i < n, e.g. 0/4 .. 3/4")
    return i, n


from .study import FLAG_TO_KEY, GRID_KEYS, StudyError, study_from_args  # noqa: E402  (the library's study file)


def validate(args):
    """Everything that can be checked before training, checked; returns the grid config and data."""
    from tasks import get_task, load_task_plugins

    from .analyses.drivers import ANALYSES, heads_for, parse_range
    from .heads import parse_head_spec
    from .models import NAMED_CONFIGS, model_modality
    from .results import ResultsStore
    from .runner import GridConfig, load_splits
    from .train import TrainConfig

    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: need at least 1 seed")
    for name in ("epochs", "batch_size", "max_length", "max_steps", "max_train_samples", "max_eval_samples",
                 "lr", "head_lr", "width_depth", "lease"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):  # nan <= 0 is False: test finiteness
            raise UsageError(f"--{name.replace('_', '-')} {value}: must be positive and finite")
    for name, value, low, high in (("weight-decay", args.weight_decay, 0.0, math.inf),
                                   ("warmup-ratio", args.warmup_ratio, 0.0, 1.0)):
        if not (math.isfinite(value) and low <= value and (value < high or high == math.inf)):
            raise UsageError(f"--{name} {value}: must be a finite number in [{low:g}, {high:g})")
    baselines = [parse_head_spec(b).label for b in _csv(args.baseline)]
    if not baselines:
        raise UsageError("--baseline needs a head, e.g. native or mean")
    report_to = check_trackers(_csv(args.report_to))
    shard = parse_shard(args.shard)
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir!r} does not exist; it should hold DIR/glue/<task>/<split>.parquet "
                         "and DIR/cifar10/<split>.parquet, or DIR/<local_subdir>/<split>.parquet for a task "
                         "of your own (or leave it out to load from the HF Hub)")
    load_task_plugins(args.task_file)
    tasks = [get_task(name) for name in _csv(args.tasks)]
    if not args.report_only:
        for task in tasks:
            task.load_metrics()  # an evaluate metric that cannot be loaded fails here, before training
    analyses = _csv(args.analysis)
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        raise UsageError(f"--analysis {','.join(unknown)}: unknown; choose from {', '.join(ANALYSES)}")
    try:
        depths = parse_range(args.depths)
    except ValueError:
        raise UsageError(f"--depths {args.depths!r}: expected positive integers like 1-8 or 1,2,4") from None
    try:
        widths = parse_range(args.widths)
    except ValueError:
        raise UsageError(f"--widths {args.widths!r}: expected positive integers like 32,64,128 or 32-64") from None
    heads = [parse_head_spec(h) for h in heads_for(analyses, _csv(args.heads), depths, widths, args.width_depth)]
    models = _csv(args.models)
    if not tasks or not heads or not models:
        raise UsageError("--tasks, --models and --heads each need at least one name")
    modality = {m: model_modality(m) for m in models}
    if any(not h.is_native for h in heads):
        for m in models:
            _check_patchable(m, NAMED_CONFIGS)
    for task in tasks:
        if task.modality not in modality.values():
            kind = [n for n, (mod, _, _) in NAMED_CONFIGS.items() if mod == task.modality]
            raise UsageError(f"task {task.name!r} is a {task.modality} task but no {task.modality} model was given; "
                             f"add one to --models (e.g. {', '.join(kind)})")
    out = Path(args.out)
    check_output_folder(out, "--out")
    try:
        ResultsStore(out / "runs.csv")  # an unreadable, foreign or incompatible results file fails here
    except OSError as error:
        raise UsageError(f"--out {out}: cannot read {out / 'runs.csv'} ({_reason(error)}); fix its permissions "
                         "or use another --out") from None
    train = TrainConfig(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
                        head_lr=args.head_lr, weight_decay=args.weight_decay,
                        warmup_ratio=args.warmup_ratio, compile=args.compile)
    config = GridConfig(tasks=tasks, models=models, heads=heads, seeds=list(range(args.seeds)), out_dir=out,
                        train=train, data_dir=args.data_dir, max_train_samples=args.max_train_samples,
                        max_eval_samples=args.max_eval_samples, max_length=args.max_length,
                        precision=args.precision, mode=args.mode, force=args.force, shard=shard, lease=args.lease,
                        analyses=tuple(analyses), baselines=tuple(baselines), report_to=tuple(report_to))
    if args.cache_dir:
        config.cache_dir = Path(args.cache_dir)
    if args.mode == "probe" and not args.report_only:
        check_output_folder(Path(config.cache_dir), "--cache-dir")
    # missing data / columns / labels fail here; a report is rewritten from runs.csv alone, without the data
    splits = {} if args.report_only else {task.name: load_splits(task, config) for task in tasks}
    if not args.report_only:
        check_disk_room(config, splits)
    return config, splits


def _reason(error: OSError) -> str:
    return f"{error.strerror or error}" + (f" [{errno.errorcode.get(error.errno, error.errno)}]" if error.errno else "")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_folder(folder: Path, flag: str) -> None:
    """``folder`` is a folder, or can be made, and files can be created, written and locked in it: a
    real write probe (a temporary file created, written, fsynced and removed), which also fails where
    permission bits do not (root on a read-only mount or an immutable folder). Nothing is left behind."""
    from . import fileio

    fix = f"choose another {flag}, or make it writable"
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {folder}: is a file, not a folder; give a folder ({flag} names the folder "
                         "the tool writes into), or move the file away")
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise UsageError(f"{flag} {folder}: cannot be made, {base} is a file; choose another {flag}")
    targets = [base] + [p for p in (folder / "predictions",) if p.is_dir()]
    try:
        for target in targets:
            fileio.probe_writable(target)
        for name in ("runs.csv.lock", "runs.csv.claims"):  # opened for writing by every worker
            if (folder / name).exists():
                os.close(os.open(folder / name, os.O_RDWR))
    except OSError as error:
        where = "" if base == folder.absolute() else f" (its nearest existing folder {base} is not writable)"
        raise UsageError(f"{flag} {folder}: cannot write there{where}: {_reason(error)}; {fix} "
                         f"(e.g. chmod u+w, or a folder on a writable disk)") from None


#: Rough bytes a run leaves on disk besides its predictions (its row, twice while runs.csv is rewritten).
ROW_BYTES = 8192


def check_disk_room(config, splits: dict) -> None:
    """The disk of ``--out`` has room for every run's predictions and rows (a rough estimate: 16 bytes
    per evaluation example, :data:`ROW_BYTES` per run, twice the current runs.csv, 1 MiB spare)."""
    import shutil

    from .runner import cells

    grid = cells(config)
    n_eval = {t.name: len(splits[t.name][t.primary_eval_split]) for t in config.tasks if t.name in splits}
    runs = config.out_dir / "runs.csv"
    current = runs.stat().st_size if runs.exists() else 0
    need = sum(16 * n_eval.get(c.task.name, 0) + ROW_BYTES for c in grid) + 2 * current + (1 << 20)
    free = shutil.disk_usage(_existing_ancestor(config.out_dir)).free
    if free < need:
        raise UsageError(f"--out {config.out_dir}: its disk has {_size(free)} free; the study needs about "
                         f"{_size(need)} (predictions and rows of {len(grid)} runs); free some space or choose "
                         "another --out")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _check_patchable(model: str, named: dict) -> None:
    if model in named:
        return
    from .families import check_config
    from .models import _load_config, model_modality

    check_config(_load_config(model), model_modality(model))  # the rest is checked by probing the built model


def _user_errors():
    from tasks import MetricLoadError, TaskDataError, TaskPluginError, UnknownTaskError

    from .families import UnsupportedArchitectureError
    from .heads import HeadOptionError, UnknownHeadError
    from .models import ModelLoadError
    from .results import ResultsFileError

    return (UsageError, StudyError, UnknownTaskError, TaskDataError, TaskPluginError, HeadOptionError, UnknownHeadError, ModelLoadError,
            ResultsFileError, UnsupportedArchitectureError, MetricLoadError)


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


def _report_tasks(config) -> list:
    """The tasks of this command plus any other registered task found in runs.csv (for metrics)."""
    from tasks import available_tasks, get_task

    return list({t.name: t for t in [get_task(n) for n in available_tasks()] + list(config.tasks)}.values())


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
        prepared = [validate(grid_args(args, study, grid)) for grid in study.grids]
        config, splits = prepared[-1]
    except _user_errors() as error:
        print(f"run_bench.py: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    from .fileio import is_write_error

    _log_to_stderr(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    try:
        return _run(args, argv, study, prepared)
    except OSError as error:  # disk full, a folder made read-only mid-study: stop cleanly, rows stay
        if not is_write_error(error):
            raise
        return _stopped(config, error)


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


@contextlib.contextmanager
def _folder_files(out_dir: Path):
    """Hold the lock of ``runs.csv`` while a worker writes the folder's other files (study.yaml, deltas.csv,
    summary.md): their writers then serialise too, so the temporary files a killed one left can go."""
    from .fileio import remove_stale_temps
    from .results import ResultsStore

    with ResultsStore(out_dir / "runs.csv")._lock():
        for name in ("study.yaml", "deltas.csv", "summary.md"):
            remove_stale_temps(out_dir / name)
        yield


def _run(args, argv, study, prepared) -> int:
    from accelerate import Accelerator

    from .report import markdown, write_report
    from .runner import cells, run_grid

    import torch

    config = prepared[-1][0]
    # cpu=True on machines without a GPU: otherwise accelerate ignores a torchrun environment there,
    # and every process would think it is the main one.
    trackers = _csv(args.report_to)
    accelerator = Accelerator(mixed_precision=config.precision, cpu=not torch.cuda.is_available(),
                              log_with=trackers or None, project_dir=str(config.out_dir / "tracking"))
    if accelerator.is_main_process:
        config.out_dir.mkdir(parents=True, exist_ok=True)
        with _folder_files(config.out_dir):
            write_study_file(study, prepared, args)
    accelerator.wait_for_everyone()
    if not args.report_only:
        for grid, splits in prepared:
            counts = run_grid(grid, accelerator, splits)
            if accelerator.is_main_process:
                print(f"grid: {counts['total']} cells, {counts['pending']} run now ({counts['ok']} ok, "
                      f"{counts['failed']} failed), {counts['total'] - counts['pending']} already in {grid.out_dir}/runs.csv"
                      + (f" ({counts['elsewhere']} of them run, or still running, in other workers)"
                         if counts.get("elsewhere") else ""))
    if accelerator.is_main_process:
        tasks = {t.name: t for grid, _ in prepared for t in _report_tasks(grid)}
        with _folder_files(config.out_dir):
            table = write_report(config.out_dir, list(tasks.values()), command="run_bench.py " + " ".join(argv),
                                 baselines=config.baselines)
        print(markdown(table))
        log.info("wrote %s/runs.csv, deltas.csv, summary.md, study.yaml", config.out_dir)
        analyses = tuple(dict.fromkeys(a for grid, _ in prepared for a in grid.analyses))
        if analyses:
            from .analyses.drivers import finalize
            from .results import ResultsStore

            ids = {c.run_id for grid, _ in prepared if grid.analyses for c in cells(grid)}
            frame = ResultsStore(config.out_dir / "runs.csv").read_frame(dedupe=True)
            width_depth = [g.width_depth for g, (c, _) in zip(study.grids, prepared) if c.analyses][-1]
            for path in finalize(analyses, config.out_dir, frame[frame["run_id"].isin(ids)], width_depth):
                log.info("wrote %s", path)
    return 0


# ------------------------------------------------------------------------------ study files
def _explicit(argv) -> set:
    """The keys of the flags given on the command line (they override a study file)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return {FLAG_TO_KEY.get(k, k) for k in vars(parser.parse_args(argv))}


def grid_args(args, study, grid) -> argparse.Namespace:
    """The flags of one grid of ``study``, as ``validate`` reads them."""
    values = {k: getattr(grid, k) for k in GRID_KEYS}
    values = {next((f for f, k in FLAG_TO_KEY.items() if k == key), key): value for key, value in values.items()}
    for key in ("tasks", "models", "heads", "analysis"):
        values[key] = ",".join(values[key])
    values["task_file"] = list(values["task_file"])
    return argparse.Namespace(**{**vars(args), **values, "out": study.out, "baseline": ",".join(study.baseline)})


def write_study_file(study, prepared, args) -> None:
    """``OUT/study.yaml``: this study, plus the grids of the folder's earlier study file it does not cover."""
    from .fileio import atomic_write
    from .runner import cells
    from .study import StudyConfig

    path = Path(study.out) / "study.yaml"
    configs = {id(g): cfg for g, (cfg, _) in zip(study.grids, prepared)}

    def ids(grid) -> frozenset:  # an earlier grid is checked like a new one, without loading its data
        config = configs.get(id(grid)) or validate(
            argparse.Namespace(**{**vars(grid_args(args, study, grid)), "report_only": True}))[0]
        return frozenset(c.run_id for c in cells(config))

    if path.is_file():
        study = study.merged_with(StudyConfig.load(path), ids)
    atomic_write(path, study.to_yaml(full=True))


if __name__ == "__main__":
    sys.exit(main())
