"""A study described by one file: what to train (tasks x models x heads x seeds), on what budget, with
which analyses, compared against which baseline, written where.

    # study.yaml                                  python run_bench.py --config study.yaml [--seeds 5 ...]
    out: results/my-study
    tasks: [sst2, rte]
    models: [minilm]
    heads: [native, mean, san-3, sla-3]
    seeds: 5
    data_dir: ../shared/data
    max_train_samples: 2000
    precision: bf16
    baseline: [native, mean]

Keys are the long command-line flags with ``_`` (or ``-``) between words; a list is a YAML/JSON list or
a comma-separated string. Command-line flags override the file. A study of several grids with
different settings in one folder lists them under ``parts``: each part is a mapping of keys that
override the top level for that grid (``out`` and ``baseline`` belong to the whole study).

Every run writes the resolved study to ``OUT/study.yaml`` before training: a folder carries the file
that made it, and ``run_bench.py --config OUT/study.yaml`` resumes (or re-renders) exactly that study.
A second command writing into the same folder adds its grid as a part (a part whose cells are all in
another part is dropped), so the file always describes every row the folder's ``runs.csv`` can hold.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

#: The key the parts of a study are listed under.
PARTS = "parts"
#: Keys that describe the whole study, not one of its grids.
STUDY_KEYS = ("out", "baseline")


class StudyError(ValueError):
    """A study that cannot run: a bad key or value in a study file or on the command line."""


def _list(value) -> tuple:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v).strip() for v in value)


@dataclass(frozen=True)
class Grid:
    """One grid of a study: every (task, model, head, seed) cell trained on one budget and recipe.

    ``seeds`` is the number of seeds (0 .. seeds-1). ``depths`` / ``widths`` are the sweeps of the
    ``depth`` / ``width`` analyses (``1-8`` or ``32,64``). ``lr`` None: 5e-5 for a pretrained
    backbone, 1e-3 for one trained from scratch.
    """

    tasks: tuple = ("toy-sentiment", "digits")
    models: tuple = ("tiny-bert", "tiny-vit")
    heads: tuple = ("native", "sla-2")
    seeds: int = 2
    data_dir: Optional[str] = None
    task_files: tuple = ()
    mode: str = "finetune"
    cache_dir: Optional[str] = None
    epochs: float = 3.0
    max_steps: Optional[int] = None
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    batch_size: int = 32
    lr: Optional[float] = None
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    precision: str = "no"
    compile: bool = False
    analyses: tuple = ()
    depths: str = "1-8"
    widths: str = "32,64,128,256,512"
    width_depth: int = 3

    def changed(self) -> dict:
        """The keys whose values differ from the defaults (what a study file needs to say)."""
        default = Grid()
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}


GRID_KEYS = tuple(f.name for f in fields(Grid))
KEYS = GRID_KEYS + STUDY_KEYS
_TYPES = {f.name: f.type for f in fields(Grid)}
_CHOICES = {"mode": ("finetune", "probe"), "precision": ("no", "bf16", "fp16")}


@dataclass
class StudyConfig:
    """A whole study: its grids, the folder it writes, the baseline(s) of its delta tables."""

    grids: list = field(default_factory=lambda: [Grid()])
    out: str = "results/default"
    baseline: tuple = ("native",)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_mapping(cls, data: Mapping, source: str = "the study", overrides: Optional[Mapping] = None) -> "StudyConfig":
        """Check every key and value of ``data`` (a parsed study file) and build the study.

        ``overrides`` (e.g. the flags given on the command line) win over the file's top level and
        over every part. Errors name the key and, for a misspelling, the nearest known key.
        """
        if not isinstance(data, Mapping):
            raise StudyError(f"{source}: expected a mapping of keys (tasks, models, heads, ...), got "
                             f"{type(data).__name__}")
        data = {_key(k, source): v for k, v in data.items()}
        overrides = {_key(k, COMMAND_LINE): v for k, v in (overrides or {}).items()}
        parts = data.pop(PARTS, None)
        top = {**data, **overrides}
        whole = {k: top.pop(k) for k in STUDY_KEYS if k in top}
        overrides = {k: v for k, v in overrides.items() if k not in STUDY_KEYS}
        if parts is None:
            parts = [{}]
        if not isinstance(parts, list) or not parts or not all(isinstance(p, Mapping) for p in parts):
            raise StudyError(f"{source}: '{PARTS}' must be a non-empty list of mappings (one per grid)")
        grids = []
        for i, part in enumerate(parts):
            where = f"{source}, {PARTS}[{i}]" if len(parts) > 1 else source
            part = {_key(k, where): v for k, v in part.items()}
            for k in STUDY_KEYS + (PARTS,):
                if k in part:
                    raise StudyError(f"{where}: '{k}' belongs to the whole study; move it to the top level")
            grids.append(_grid({**top, **part, **overrides}, where))
        study = cls(grids=grids)
        if "out" in whole:
            study.out = _value("out", whole["out"], source, str)
        if "baseline" in whole:
            study.baseline = _value("baseline", whole["baseline"], source, tuple)
            if not study.baseline:
                raise StudyError(f"{source}: {_named('baseline', source)} needs a head, e.g. native or mean")
        return study

    @classmethod
    def load(cls, path, overrides: Optional[Mapping] = None) -> "StudyConfig":
        """Read a study file (``.yaml``/``.yml`` or ``.json``; parsed without executing anything)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as error:
            raise StudyError(f"--config {path}: cannot read the study file ({error.strerror or error}); "
                             "give the path of a .yaml or .json study file") from None
        return cls.from_mapping(parse_study_text(text, str(path)), str(path), overrides)

    # ------------------------------------------------------------------ writing
    def to_mapping(self, full: bool = False) -> dict:
        """The study as a file would say it: keys equal in every grid at the top, the rest in parts.
        ``full``: every key, defaults included (a folder's study.yaml, so that it keeps its meaning
        whatever later defaults become); else only the keys that differ from the defaults."""
        changed = [dataclasses.asdict(g) if full else g.changed() for g in self.grids]
        # a key some part leaves at its default cannot be shared by the others
        shared = {k: v for k, v in changed[0].items() if all(k in c and c[k] == v for c in changed[1:])}
        out: dict = {"out": self.out}
        if full or tuple(self.baseline) != ("native",):
            out["baseline"] = list(self.baseline)
        out.update({k: _plain(v) for k, v in shared.items()})
        if len(self.grids) > 1:
            out[PARTS] = [{k: _plain(v) for k, v in c.items() if k not in shared} for c in changed]
        return out

    def to_yaml(self, full: bool = False) -> str:
        import yaml

        return yaml.safe_dump(self.to_mapping(full), sort_keys=False, default_flow_style=None, width=100)

    def merged_with(self, earlier: "StudyConfig", cells_of) -> "StudyConfig":
        """This study plus the grids of ``earlier`` (the folder's study file) that it does not cover.

        ``cells_of(grid) -> set of run_ids``. A grid whose cells are all in another grid is dropped,
        so resuming with more seeds replaces the grid of fewer seeds instead of listing both.
        """
        mine = [(g, cells_of(g)) for g in self.grids]
        kept = [(g, ids) for g, ids in ((g, cells_of(g)) for g in earlier.grids)
                if not any(ids <= other for _, other in mine)]
        grids = [g for g, _ in kept] + [g for g, ids in mine if not any(ids < other for _, other in kept)]
        return dataclasses.replace(self, grids=grids or self.grids)


def parse_study_text(text: str, source: str) -> Any:
    """YAML (``yaml.safe_load``: plain data only, no tags that build objects) or JSON."""
    import yaml

    try:
        if source.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        where = getattr(error, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise StudyError(f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}{at}: "
                         f"{getattr(error, 'problem', None) or error}") from None


def _key(key, source: str) -> str:
    name = str(key).strip().replace("-", "_")
    if name in KEYS or name == PARTS:
        return name
    near = difflib.get_close_matches(name, KEYS + (PARTS,), n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise StudyError(f"{source}: unknown key '{key}'; {hint}known keys: {', '.join(KEYS + (PARTS,))}")


COMMAND_LINE = "the command line"


def _named(key: str, source: str) -> str:
    """A key as its source spells it: ``--warmup-ratio`` on the command line, 'warmup_ratio' in a file."""
    if source == COMMAND_LINE:
        flag = next((f for f, k in FLAG_TO_KEY.items() if k == key), key)
        return "--" + flag.replace("_", "-")
    return f"'{key}'"


def _value(key: str, value, source: str, kind):
    """``value`` of ``key`` as ``kind`` (int, float, bool, str, tuple; Optional allowed as None)."""
    def bad(want: str):
        return StudyError(f"{source}: {_named(key, source)} must be {want}, got {value!r}")

    if value is None:
        return None
    if kind is tuple:
        if not isinstance(value, (str, list, tuple)):
            raise bad("a list or a comma-separated string")
        return _list(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise bad("true or false")
    if kind is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
            raise bad("a whole number")
        return int(value)
    if kind is float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise bad("a finite number")
        return number
    if isinstance(value, (list, dict)):
        raise bad("a single value")
    return str(value)


def _kind(annotation: str):
    for name, kind in (("tuple", tuple), ("bool", bool), ("int", int), ("float", float)):
        if name in str(annotation):
            return kind
    return str


def _grid(values: Mapping, source: str) -> Grid:
    checked = {}
    values = {k: ",".join(str(x) for x in v) if k in ("depths", "widths") and isinstance(v, (list, tuple)) else v
              for k, v in values.items()}  # a sweep given as a list, [1, 2, 4]
    for key, value in values.items():
        checked[key] = _value(key, value, source, _kind(_TYPES[key]))
        if key in _CHOICES and checked[key] not in _CHOICES[key]:
            raise StudyError(f"{source}: {_named(key, source)} must be one of {', '.join(_CHOICES[key])}, got {value!r}")
        if checked[key] is None and "Optional" not in str(_TYPES[key]):
            raise StudyError(f"{source}: {_named(key, source)} needs a value")
    return Grid(**checked)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


#: Command-line flags whose study-file key is spelled otherwise (a study lists its analyses and task files).
FLAG_TO_KEY = {"analysis": "analyses", "task_file": "task_files"}


def study_from_args(args, explicit: Sequence[str]) -> StudyConfig:
    """The study of a command line: the ``--config`` file (if any) with the ``explicit`` flags (keys)
    over it; without a file, every flag (given or default) describes the single grid."""
    values = {FLAG_TO_KEY.get(k, k): v for k, v in vars(args).items()}
    given = {k: values[k] for k in KEYS if k in values and (k in explicit or not args.config)}
    if args.config:
        return StudyConfig.load(args.config, overrides=given)
    return StudyConfig.from_mapping({}, COMMAND_LINE, overrides=given)
