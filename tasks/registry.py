"""Task registry: built-in tasks, user task files, and installed plugins.

* ``register_task(task)`` or ``@register_task`` on a zero-argument factory (function or
  ``Task`` subclass) adds a task; ``@register_task(replace=True)`` overrides one.
* ``load_task_plugins(["my_task.py", "my_pkg.tasks"])`` imports user files / modules, which
  register their tasks when imported (the runner's ``--task-file``).
* Packages can also expose tasks with an entry point of group ``sla_bench.tasks``
  (``[project.entry-points."sla_bench.tasks"] my_tasks = "my_pkg.tasks"``); its target may be a
  module (importing it registers), a ``Task``, a list of them, or a zero-argument factory.
  Entry points are loaded on the first ``get_task``/``available_tasks`` call.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar, overload

from .base import Task

__all__ = [
    "UnknownTaskError",
    "TaskPluginError",
    "register_task",
    "unregister_task",
    "get_task",
    "available_tasks",
    "load_task_plugins",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "sla_bench.tasks"

_REGISTRY: dict[str, Task] = {}
_LOADED_FILES: dict[Path, str] = {}  # resolved task file -> module name
_entry_points_loaded = False

T = TypeVar("T")

HOW_TO_ADD = (
    "To add a task, write a Python file that calls tasks.register_task(Task(...)) and pass it with "
    "--task-file my_task.py (see tasks/README.md)."
)


class UnknownTaskError(KeyError, ValueError):
    """No task of that name is registered (a ``KeyError`` and a ``ValueError``)."""

    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = available
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        self.message = (
            f"Unknown task {name!r}.{hint} Available tasks: {', '.join(available) or '(none)'}. {HOW_TO_ADD}"
        )
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message

    def __reduce__(self):  # picklable (e.g. across worker processes)
        return (type(self), (self.name, self.available))


class TaskPluginError(ImportError):
    """A task file or module given to ``load_task_plugins`` is missing or fails to import."""


# ---------------------------------------------------------------------------- registration
def _add(task: Task, replace: bool) -> Task:
    if not isinstance(task, Task):
        raise TypeError(f"register_task expects a Task (or a factory returning one), got {type(task).__name__}")
    old = _REGISTRY.get(task.name)
    if old is not None and old != task and not replace:
        raise ValueError(
            f"a different task named {task.name!r} is already registered "
            f"(existing: {old!r}; new: {task!r}). Use another name, or register_task(..., replace=True) "
            f"to override it."
        )
    if old is not None and old == task and not replace:
        return old  # same definition again (e.g. a module imported twice): keep the first
    _REGISTRY[task.name] = task
    return task


@overload
def register_task(task_or_factory: T, *, replace: bool = False) -> T: ...
@overload
def register_task(task_or_factory: None = None, *, replace: bool = False) -> Callable[[T], T]: ...


def register_task(task_or_factory: Any = None, *, replace: bool = False) -> Any:
    """Register a task. Returns its argument, so it works as a decorator.

    ``task_or_factory`` is a :class:`Task`, or a zero-argument callable returning a Task (a
    function, or a ``Task`` subclass whose fields all have defaults); the factory is called once,
    now. Forms::

        register_task(Task(name="my-task", ...))
        @register_task
        def my_task(): return Task(name="my-task", ...)
        @register_task(replace=True)          # override a task of the same name
        def sst2(): return Task(...)

    Registering an equal definition again is a no-op; a different one under an existing name
    raises ``ValueError`` unless ``replace=True``.
    """
    if task_or_factory is None:
        return lambda obj: register_task(obj, replace=replace)
    if isinstance(task_or_factory, Task):
        _add(task_or_factory, replace)
    elif callable(task_or_factory):
        made = task_or_factory()
        _add(made, replace)
    else:
        raise TypeError(f"register_task expects a Task or a factory, got {type(task_or_factory).__name__}")
    return task_or_factory


def unregister_task(name: str) -> Task | None:
    """Remove a task (mostly for tests); returns it, or None if it was not registered."""
    return _REGISTRY.pop(name, None)


# ---------------------------------------------------------------------------- lookup
def _ensure_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as e:  # broken metadata of some installed distribution
        warnings.warn(f"could not list '{ENTRY_POINT_GROUP}' entry points: {e}", stacklevel=3)
        return
    for ep in eps:
        try:
            obj = ep.load()
            if isinstance(obj, types.ModuleType):
                continue  # importing it registered its tasks
            if not isinstance(obj, Task) and callable(obj):
                obj = obj()
            items = [obj] if isinstance(obj, Task) else list(obj or [])
            for task in items:
                _add(task, replace=False)
        except Exception as e:
            warnings.warn(
                f"ignoring task plugin entry point {ep.name!r} ({ep.value}) of group "
                f"'{ENTRY_POINT_GROUP}': {type(e).__name__}: {e}",
                stacklevel=3,
            )


def available_tasks(modality: str | None = None) -> list[str]:
    """Sorted names of the registered tasks (optionally only ``"text"`` or ``"image"`` ones)."""
    _ensure_entry_points()
    return sorted(n for n, t in _REGISTRY.items() if modality is None or t.modality == modality)


def get_task(name: str | Task) -> Task:
    """The task registered under ``name`` (exact, else case-insensitive); a Task is returned as is."""
    if isinstance(name, Task):
        return name
    _ensure_entry_points()
    if name in _REGISTRY:
        return _REGISTRY[name]
    folded = {n.lower(): t for n, t in _REGISTRY.items()}
    if isinstance(name, str) and name.lower() in folded:
        return folded[name.lower()]
    raise UnknownTaskError(str(name), available_tasks())


# ---------------------------------------------------------------------------- plugins
def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec) or Path(
        spec
    ).is_file()


def _import_file(path: Path) -> str:
    resolved = path.expanduser().resolve()
    if resolved in _LOADED_FILES:
        return _LOADED_FILES[resolved]
    if not resolved.is_file():
        raise TaskPluginError(f"task file not found: {path} (resolved to {resolved})")
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    stem = "".join(ch if ch.isalnum() else "_" for ch in resolved.stem)
    mod_name = f"sla_bench_task_file_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, resolved)
    if spec is None or spec.loader is None:
        raise TaskPluginError(f"cannot import task file {resolved}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses / pickling look the module up here
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(mod_name, None)
        if isinstance(e, Exception):
            raise TaskPluginError(f"error while importing task file {resolved}: {type(e).__name__}: {e}") from e
        raise
    _LOADED_FILES[resolved] = mod_name
    return mod_name


def load_task_plugins(specs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None) -> list[str]:
    """Import task files / modules so that they register their tasks.

    Each spec is a path to a ``.py`` file (imported by path under a unique module name; the
    same file is imported only once) or a dotted module name (``importlib.import_module``).
    Returns the names of the tasks that were newly registered or replaced, sorted. Any failure
    (file not found, error while importing) raises :class:`TaskPluginError` (an ``ImportError``).
    """
    if specs is None:
        return []
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    _ensure_entry_points()
    before = dict(_REGISTRY)
    for spec in specs:
        spec_str = os.fspath(spec)
        if isinstance(spec, os.PathLike) or _is_file_spec(spec_str):
            _import_file(Path(spec_str))
        else:
            try:
                importlib.import_module(spec_str)
            except Exception as e:
                hint = (" Pass a path to a .py file, or a module importable from sys.path."
                        if isinstance(e, ImportError) else "")
                raise TaskPluginError(
                    f"cannot import task module {spec_str!r}: {type(e).__name__}: {e}.{hint}"
                ) from e
    return sorted(n for n, t in _REGISTRY.items() if before.get(n) is not t)
