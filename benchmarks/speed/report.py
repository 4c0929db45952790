"""The speed benchmark's report: one markdown part per section, after a header naming the machine."""
from __future__ import annotations

import argparse
import math

from .common import SECTIONS, SHAPES

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


def markdown(results: dict) -> str:
    parts = [header_markdown(results["environment"], argparse.Namespace(**results["settings"]))]
    parts += [MARKDOWN[s](results[s]) for s in SECTIONS if s in results]
    return "\n".join(parts)
