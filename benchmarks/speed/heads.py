"""Section ``heads``: every head against ``native`` at a BERT-base and a ViT-B/16 shape: step time, peak
memory (CUDA allocator, or a fresh process's peak RSS on CPU), forward FLOPs (``harness.flops``) and
parameters."""
from __future__ import annotations

import copy
import statistics
import sys
from typing import Callable

import torch

from .common import (BERT_BASE, MiB, PATCH, TARGETS, VIT_B16, Context, StepWindow, autocast, interleave, paired_ratio,
                     release, spread, synchronize, to_device)

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
