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

import time  # noqa: F401  (the step timer reads time.perf_counter; tests replace it there)

from .common import (BERT_BASE, DEFAULT_HEADS, MiB, PATCH, SECTIONS, SHAPES, TARGETS, VIT_B16, Context, StepWindow,
                     autocast, cpu_name, environment, fresh_copy, interleave, paired_ratio, release, spread,
                     synchronize, to_device)
from .text import (TextData, harness_batches, harness_config, harness_padding, harness_run, load_text, padding_stats,
                   run_glue_dataset, timed_harness, trainer_batch_sizes, trainer_run, verify_batches)
from .overhead import section_overhead
from .glue import section_glue
from .heads import (attention_heads, cpu_peak_rss, head_backbone, head_inputs, head_model, head_run, heads_at_shape,
                    section_heads)
from .report import MARKDOWN, glue_markdown, header_markdown, heads_markdown, markdown, overhead_markdown
from .cli import RUNNERS, default_model, main, parse_args, parser, run
