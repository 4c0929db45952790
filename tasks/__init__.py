"""Benchmark tasks: GLUE, CIFAR, generated offline tasks (``toy-sentiment``, ``digits``, ``pointer-1..4``,
``multihop-1..4``), and user task files.

>>> from tasks import get_task
>>> task = get_task("sst2")
>>> data = task.load(data_dir="../shared/data")    # DatasetDict: train, validation
>>> task.compute_metrics([1, 0, 1], [1, 1, 1])["accuracy"]

See tasks/README.md for adding a task in one file (``--task-file my_task.py``).
"""

from .base import Task, TaskDataError
from .metrics import MetricLoadError
from .registry import (
    ENTRY_POINT_GROUP,
    TaskPluginError,
    UnknownTaskError,
    available_tasks,
    get_task,
    load_task_plugins,
    register_task,
    unregister_task,
)

# built-in tasks register themselves on import
from . import cifar, glue, toy  # noqa: E402,F401  (after the registry exists)
from . import multihop, pointer  # noqa: E402,F401

__all__ = [
    "Task",
    "TaskDataError",
    "MetricLoadError",
    "UnknownTaskError",
    "TaskPluginError",
    "register_task",
    "unregister_task",
    "get_task",
    "available_tasks",
    "load_task_plugins",
    "ENTRY_POINT_GROUP",
]
