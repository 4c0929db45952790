"""What every section of the speed benchmark shares: the reference shapes and targets, the step
timer, interleaved rounds and their ratios, the environment record, and the sections' ``Context``."""
from __future__ import annotations

import copy
import gc
import platform
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import torch

if TYPE_CHECKING:
    from .text import TextData

SECTIONS = ("overhead", "glue", "heads")
DEFAULT_HEADS = ("native", "cls", "mean", "attn", "san-3", "sla-3", "mhap")
SHAPES = ("text", "vision")
BERT_BASE = (12, 768, 128, 32)  # layers, hidden, sequence length, batch
VIT_B16 = (12, 768, 224, 32)  # layers, hidden, image side, batch (patch 16)
PATCH = 16
TARGETS = {"overhead": 0.97, "glue": 4.0, "sla-3": 0.05}  # harness/bare >=, harness/Trainer >=, extra step <=
MiB = 2 ** 20


# ---------------------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepWindow:
    """Wall time of ``count`` whole iterations: from the start of iteration ``first`` to the start
    of iteration ``first + count``. Call :meth:`tick` once per iteration at the same point of the
    loop (a forward pre-hook does); the device is synchronised only at the two ends."""

    def __init__(self, device: torch.device, first: int, count: int):
        self.device, self.first, self.count = device, first, count
        self.iteration = -1
        self.start: Optional[float] = None
        self.stop: Optional[float] = None

    def tick(self, *_) -> None:
        self.iteration += 1
        if self.iteration in (self.first, self.first + self.count):
            synchronize(self.device)
            now = time.perf_counter()
            if self.iteration == self.first:
                self.start = now
            else:
                self.stop = now

    @property
    def seconds(self) -> float:
        if self.start is None or self.stop is None:
            raise RuntimeError(f"the loop ran {self.iteration + 1} iterations; the timing window needs "
                               f"{self.first + self.count + 1}")
        return self.stop - self.start


def interleave(variants: dict[str, Callable[[], dict]], repeats: int) -> dict[str, list[dict]]:
    """Call the variants in turn, A B C A B C ..., for ``repeats`` rounds; each call's result, per variant."""
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            results[name].append(run())
    return results


def spread(values) -> dict:
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def paired_ratio(numerators, denominators) -> dict:
    """A_i / B_i for each round (the two runs made side by side), with their median."""
    return spread([a / b for a, b in zip(numerators, denominators)])


# ----------------------------------------------------------------------------------- environment
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(args) -> dict:
    import accelerate
    import transformers

    device = torch.device(args.device)
    return {"device": args.device,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "cpu": cpu_name(), "cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "accelerate": accelerate.__version__, "precision": args.precision, "compile": args.compile}


def autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def fresh_copy(template: torch.nn.Module, compile_model: bool) -> torch.nn.Module:
    """A deep copy of ``template`` (identical weights), compiled from scratch with ``--compile``."""
    model = copy.deepcopy(template).train()
    if compile_model:
        torch._dynamo.reset()
        model = torch.compile(model)
    return model


class Context:
    """What the sections share: the arguments, the device, one Accelerator, the text data."""

    def __init__(self, args):
        self.args = args
        self.device = torch.device(args.device)
        self._accelerator = None
        self._text: Optional[TextData] = None
        self._verified: Optional[bool] = None

    @property
    def accelerator(self):
        if self._accelerator is None:
            from accelerate import Accelerator

            self._accelerator = Accelerator(mixed_precision=self.args.precision, cpu=self.device.type == "cpu")
        return self._accelerator

    def text(self) -> "TextData":
        if self._text is None:
            from .text import load_text

            self._text = load_text(self.args)
        return self._text
