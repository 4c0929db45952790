"""The text pipeline the overhead and glue sections time: SST-2 or toy-sentiment through the harness
(its tokenizer, dynamic padding, length-grouped batches, ``harness.train.fit``), and the same data as
HF's run_glue.py prepares it for ``transformers.Trainer`` (every row padded to ``max_seq_length``)."""
from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from dataclasses import dataclass

import torch

from .common import Context, StepWindow, fresh_copy, release

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
