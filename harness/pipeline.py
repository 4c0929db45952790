"""From a checked study to its results: every check that can run before training, then the grids,
the report and the analyses. ``run_bench.py`` parses its flags into a ``StudyConfig`` and calls
:func:`run_study`; a notebook or a script does the same.

    from harness.study import StudyConfig
    from harness.pipeline import run_study
    run_study(StudyConfig.load("study.yaml"))
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from .study import FLAG_TO_KEY, GRID_KEYS, StudyError

log = logging.getLogger(__name__)


class UsageError(StudyError):
    """Bad input: a flag, a study key or value, a folder the study cannot write."""


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


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


def check_grid(args):
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


def user_errors() -> tuple:
    """The errors that mean bad input (exit 2, nothing written), not a bug."""
    from tasks import MetricLoadError, TaskDataError, TaskPluginError, UnknownTaskError

    from .families import UnsupportedArchitectureError
    from .heads import HeadOptionError, UnknownHeadError
    from .models import ModelLoadError
    from .results import ResultsFileError

    return (UsageError, StudyError, UnknownTaskError, TaskDataError, TaskPluginError, HeadOptionError, UnknownHeadError, ModelLoadError,
            ResultsFileError, UnsupportedArchitectureError, MetricLoadError)


def _report_tasks(config) -> list:
    """The tasks of this command plus any other registered task found in runs.csv (for metrics)."""
    from tasks import available_tasks, get_task

    return list({t.name: t for t in [get_task(n) for n in available_tasks()] + list(config.tasks)}.values())


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


@dataclass
class RunOptions:
    """How a study is run, as opposed to what it is (``StudyConfig``): none of these enters a run_id."""

    force: bool = False  # rerun cells already in runs.csv
    shard: str = "0/1"  # i/n: this process runs cells i, i+n, ...
    report_only: bool = False  # rewrite the report from runs.csv; no data, no training
    report_to: tuple = ()  # accelerate trackers ("tensorboard", ...)
    lease: float = 300.0  # seconds a claimed cell stays reserved without renewal (claims.py)


@dataclass
class StudyResult:
    counts: list  # per grid: {"total", "pending", "ok", "failed", "elsewhere"} (empty with report_only)
    table: object  # the delta table (pandas DataFrame), as written to deltas.csv
    written: list  # paths of the analysis figures and CSVs


def flags(study, grid, options: RunOptions) -> argparse.Namespace:
    """One grid of ``study`` as the flat namespace the checks read (the long flags' names)."""
    values = {k: getattr(grid, k) for k in GRID_KEYS}
    values = {next((f for f, k in FLAG_TO_KEY.items() if k == key), key): value for key, value in values.items()}
    for key in ("tasks", "models", "heads", "analysis"):
        values[key] = ",".join(values[key])
    values["task_file"] = list(values["task_file"])
    return argparse.Namespace(**values, out=study.out, baseline=",".join(study.baseline), force=options.force,
                              shard=options.shard, report_only=options.report_only,
                              report_to=",".join(options.report_to), lease=options.lease)


def prepare(study, options: RunOptions = RunOptions()) -> list:
    """Every grid of ``study`` checked (and, unless ``report_only``, its data loaded):
    ``[(GridConfig, splits)]``. Raises the user errors of :func:`user_errors` before anything is written."""
    return [check_grid(flags(study, grid, options)) for grid in study.grids]


def run_study(study, options: RunOptions = RunOptions(), command: str = "", prepared=None) -> StudyResult:
    """Run ``study``: write ``OUT/study.yaml``, train every pending cell of every grid (resuming; several
    workers split the cells), then write ``deltas.csv`` and ``summary.md`` against ``study.baseline``
    and the figures of the study's analyses. ``prepared``: the result of :func:`prepare`, if already made.
    A failed write (disk full, a folder made read-only) raises the ``OSError``; rows already written stay."""
    from accelerate import Accelerator

    from .report import write_report
    from .runner import cells, run_grid

    import torch

    prepared = prepare(study, options) if prepared is None else prepared
    config = prepared[-1][0]
    # cpu=True on machines without a GPU: otherwise accelerate ignores a torchrun environment there,
    # and every process would think it is the main one.
    accelerator = Accelerator(mixed_precision=config.precision, cpu=not torch.cuda.is_available(),
                              log_with=list(options.report_to) or None, project_dir=str(config.out_dir / "tracking"))
    if accelerator.is_main_process:
        config.out_dir.mkdir(parents=True, exist_ok=True)
        with _folder_files(config.out_dir):
            write_study_file(study, prepared, options)
    accelerator.wait_for_everyone()
    counts = [] if options.report_only else [run_grid(grid, accelerator, splits) for grid, splits in prepared]
    result = StudyResult(counts, None, [])
    if accelerator.is_main_process:
        tasks = {t.name: t for grid, _ in prepared for t in _report_tasks(grid)}
        with _folder_files(config.out_dir):
            result.table = write_report(config.out_dir, list(tasks.values()), command=command,
                                        baselines=config.baselines)
        log.info("wrote %s/runs.csv, deltas.csv, summary.md, study.yaml", config.out_dir)
        analyses = tuple(dict.fromkeys(a for grid, _ in prepared for a in grid.analyses))
        if analyses:
            from .analyses.drivers import finalize
            from .results import ResultsStore

            ids = {c.run_id for grid, _ in prepared if grid.analyses for c in cells(grid)}
            frame = ResultsStore(config.out_dir / "runs.csv").read_frame(dedupe=True)
            width_depth = [g.width_depth for g, (c, _) in zip(study.grids, prepared) if c.analyses][-1]
            for path in finalize(analyses, config.out_dir, frame[frame["run_id"].isin(ids)], width_depth):
                result.written.append(path)
                log.info("wrote %s", path)
    return result


def write_study_file(study, prepared, options: RunOptions) -> None:
    """``OUT/study.yaml``: this study, plus the grids of the folder's earlier study file it does not cover."""
    from .fileio import atomic_write
    from .runner import cells
    from .study import StudyConfig

    path = Path(study.out) / "study.yaml"
    configs = {id(g): cfg for g, (cfg, _) in zip(study.grids, prepared)}

    def ids(grid) -> frozenset:  # an earlier grid is checked like a new one, without loading its data
        config = configs.get(id(grid)) or check_grid(flags(study, grid, replace(options, report_only=True)))[0]
        return frozenset(c.run_id for c in cells(config))

    if path.is_file():
        study = study.merged_with(StudyConfig.load(path), ids)
    atomic_write(path, study.to_yaml(full=True))
