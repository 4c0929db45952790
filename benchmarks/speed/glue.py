"""Section ``glue``: the harness defaults (dynamic padding, length-grouped batches) against
``transformers.Trainer`` configured as HF's run_glue.py (every row padded to 128)."""
from __future__ import annotations

from .common import TARGETS, Context, StepWindow, interleave, paired_ratio, spread
from .text import (harness_batches, harness_config, harness_padding, padding_stats, run_glue_dataset, timed_harness,
                   trainer_batch_sizes, trainer_run, verify_batches)

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
