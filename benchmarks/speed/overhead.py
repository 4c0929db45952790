"""Section ``overhead``: ``harness.train.fit`` with its data pipeline against a bare PyTorch loop over the
very same batches, already collated and on the device (forward + backward + the harness's AdamW step)."""
from __future__ import annotations

import statistics

from .common import (TARGETS, Context, StepWindow, autocast, fresh_copy, interleave, paired_ratio, release, spread,
                     to_device)
from .text import harness_batches, harness_config, timed_harness, verify_batches

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
