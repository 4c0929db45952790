"""How sla-bench reads a Hugging Face backbone: the heads' inputs from any base model's output.

The heads take (see ``heads.base``) ``states`` (B, N, D), ``mask`` (B, N) or None, ``first``
(B, D) or None (the summary token: what ``query=cls`` and the ``cls`` head read) and ``grid``
(H, W) or None. :func:`read_backbone` finds out, once per model, how a backbone provides them, by
running its base model on a small probe input and reading the shape of ``last_hidden_state``:

- rank 3 is token states (B, N, D); rank 4 a feature map (B, C, H, W), flattened to H*W positions
  of width C. D (or C) is the width the head is built for.
- text: the padding mask is ``attention_mask`` (N must equal the input length). The summary token
  is position 0 (CLS) for an encoder, and the last real token for a backbone whose states are
  causal (GPT-2, Llama, ...: changing the last input token leaves every earlier state unchanged),
  as their native heads read it; the padding may be on either side.
- image tokens: N = P + H*W, with the grid H x W the input size divided by the patch size (config
  ``patch_size``) or by a power of two (hierarchical models merge patches). The P prefix tokens (CLS,
  distillation, registers) are removed from the states; the first of them is the summary token.
  A model with P = 0 (Swin, LeViT) has no summary token.

What a probe cannot see is a quirk: one entry in :data:`QUIRKS`, each with a comment saying what the
quirk is. A backbone that cannot be read fails with :class:`UnsupportedArchitectureError`, whose
message says what was missing and where to add an entry. Nothing here knows about tasks or training.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn


class UnsupportedArchitectureError(ValueError):
    """A model that sla-bench cannot patch; the message says what was missing and what to do."""


#: The families the test suite patches and trains (``tests/tiny_models.py`` builds a tiny model of each,
#: and a test checks that the two lists are the same). ``run_bench.py --list`` prints them.
TESTED_FAMILIES: dict[str, tuple[str, ...]] = {
    "text encoders": ("albert", "bert", "big_bird", "camembert", "deberta", "deberta-v2", "distilbert", "electra",
                      "ernie", "funnel", "longformer", "megatron-bert", "mobilebert", "modernbert", "nystromformer",
                      "roberta", "roformer", "squeezebert", "xlm-roberta", "xlnet", "xmod"),
    "text decoders": ("gemma", "gpt2", "llama", "mistral", "mixtral", "phi3", "qwen2"),
    "text encoder-decoders": ("bart", "t5"),
    "vision": ("beit", "bit", "convnext", "cvt", "data2vec-vision", "deit", "dinov2", "dinov2_with_registers",
               "focalnet", "levit", "mobilenet_v2", "poolformer", "pvt", "resnet", "swin", "swinv2", "vit",
               "vit_msn"),
}


def supported_families() -> str:
    """The tested families, one line per group (for messages and ``--list``)."""
    return "; ".join(f"{group}: {', '.join(names)}" for group, names in TESTED_FAMILIES.items())


@dataclass(frozen=True)
class Quirk:
    """What the probe cannot see in one family. Every field left at its default means: inferred."""

    summary: Optional[str] = None  # where the summary token is: "first", "last", or an output field's name
    mask: Optional[Callable] = None  # (config, attention_mask (B, L)) -> (B, N): text backbones returning N != L states
    inputs: Optional[Callable] = None  # (config, inputs dict) -> inputs dict: what the native classifier adds
    drop: tuple = ()  # base-model submodules besides ``pooler`` that only feed the native pooled output
    unsupported: str = ""  # why this family cannot be patched at all


def _funnel_mask(config, mask: torch.Tensor) -> torch.Tensor:
    """Funnel's base model halves the sequence before every block after the first, pooling pairs of
    positions (the CLS kept apart); its attention mask is min-pooled the same way, so a pooled
    position is real only if everything it pools is: (B, L) -> (B, N)."""
    mask = mask.float()
    for _ in range(len(config.block_sizes) - 1):
        if config.separate_cls:
            mask = torch.cat([mask[:, :1], mask[:, :-1] if config.truncate_seq else mask], dim=1)
        mask = -F.max_pool1d(-mask[:, None], 2, 2, ceil_mode=True)[:, 0]
    return mask


def _global_first_token(config, inputs: dict) -> dict:
    """Longformer's classifier gives its first token global attention before calling the backbone
    (local attention alone never lets the CLS see the whole text); the patched model does the same
    unless the caller passes its own ``global_attention_mask``."""
    ids = inputs.get("input_ids")
    if inputs.get("global_attention_mask") is not None or ids is None:
        return inputs
    glob = torch.zeros_like(ids)
    glob[:, 0] = 1
    return {**inputs, "global_attention_mask": glob}


def _shifted_decoder_inputs(config, inputs: dict) -> dict:
    """T5's classifier feeds its decoder the input shifted one position right (after the decoder's
    start token), which its base model does not do by itself."""
    ids = inputs.get("input_ids")
    if ids is None or inputs.get("decoder_input_ids") is not None:
        return inputs
    shifted = ids.new_full(ids.shape, config.pad_token_id)
    shifted[:, 1:] = ids[:, :-1]
    start = getattr(config, "decoder_start_token_id", None)
    shifted[:, 0] = config.pad_token_id if start is None else start  # T5 starts its decoder with the pad token
    return {**inputs, "decoder_input_ids": shifted}


QUIRKS: dict[str, Quirk] = {
    # XLNet's tokenizer appends its <cls> summary token at the end (and pads on the left): its native
    # head reads the last token although the states are not causal.
    "xlnet": Quirk(summary="last"),
    # Encoder-decoders: last_hidden_state is the decoder's, and their classifiers read it at the final
    # <eos>, the last real token (the decoder sees the whole input through cross-attention, so the
    # probe finds the states not causal).
    "bart": Quirk(summary="last"),
    "mbart": Quirk(summary="last"),
    "t5": Quirk(summary="last", inputs=_shifted_decoder_inputs),
    "mt5": Quirk(summary="last", inputs=_shifted_decoder_inputs),
    "umt5": Quirk(summary="last", inputs=_shifted_decoder_inputs),
    # Funnel's base model returns a shorter sequence than its input (see _funnel_mask).
    "funnel": Quirk(mask=_funnel_mask),
    # Longformer's CLS needs global attention, which its classifier adds (see _global_first_token).
    "longformer": Quirk(inputs=_global_first_token),
    # CvT keeps its CLS token out of the final feature map, in the output field cls_token_value (B, 1, D).
    "cvt": Quirk(summary="cls_token_value"),
    # ConvNeXt's final LayerNorm normalises only its mean-pooled output, never last_hidden_state.
    "convnext": Quirk(drop=("layernorm",)),
    "convnextv2": Quirk(drop=("layernorm",)),
}

_NO_QUIRK = Quirk()


def quirk_of(model_type: Optional[str]) -> Quirk:
    return QUIRKS.get(model_type, _NO_QUIRK)


@dataclass(frozen=True)
class Reading:
    """How one backbone is read. JSON-serialisable: a patched model keeps it in its config
    (``sla_bench.reading``), so loading a checkpoint needs no probe."""

    model_type: str
    modality: str  # "text" | "image"
    layout: str  # "tokens": last_hidden_state is (B, N, D); "map": (B, C, H, W)
    hidden_size: int  # D (C for a map): the width of the head's input
    summary: str  # "first" (position 0), "last" (last real token), "none", or an output field (B, 1, D)
    n_prefix: int = 0  # image tokens: tokens before the patch grid (CLS, distillation, registers)
    backbone_class: str = ""  # the base model's class, rebuilt from the config when a checkpoint loads

    @property
    def spatial_dims(self) -> int:
        """1: positions along a sequence; 2: positions on an image grid (for kernel > 1)."""
        return 1 if self.modality == "text" else 2

    @property
    def has_summary(self) -> bool:
        return self.summary != "none"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, entry: dict) -> "Reading":
        return cls(**{k: v for k, v in entry.items() if k in {f.name for f in dataclasses.fields(cls)}})


def _cannot_read(model_type, what: str) -> UnsupportedArchitectureError:
    return UnsupportedArchitectureError(
        f"sla-bench cannot read model_type {model_type!r}: {what}. If the model keeps what a head needs elsewhere, "
        f"add an entry for {model_type!r} to QUIRKS in harness/families.py (docs/families.md says how); "
        f"head='native' works on any model. Families tested: {supported_families()}")


_INPUT_NAMES = {"text": "input_ids", "image": "pixel_values"}


def modality_of(model: nn.Module) -> str:
    """'text' or 'image' for a ``*ForSequenceClassification``, a ``*ForImageClassification`` or a
    base model (``AutoModel``); anything else raises with what is accepted."""
    kind = type(model).__name__
    if kind.endswith("ForSequenceClassification"):
        wanted = "text"
    elif kind.endswith("ForImageClassification"):
        wanted = "image"
    elif getattr(model, "base_model", None) is model:  # a bare backbone: its main input says which
        wanted = {v: k for k, v in _INPUT_NAMES.items()}.get(getattr(model, "main_input_name", None))
    else:
        wanted = None
    if wanted is None:
        raise UnsupportedArchitectureError(
            f"harness.patch takes a *ForSequenceClassification (text) or *ForImageClassification (vision) model, or a "
            f"base model loaded with AutoModel, got {kind}. Families tested: {supported_families()}")
    main_input = getattr(model, "main_input_name", None)
    if main_input != _INPUT_NAMES[wanted]:
        raise UnsupportedArchitectureError(
            f"{kind} reads {main_input!r}, and sla-bench patches text models that read input_ids and vision models "
            f"that read pixel_values; head='native' works on any model")
    return wanted


def check_config(config, modality: str) -> None:
    """What a config alone tells before any weights load: a refused family, or a model type that
    transformers has no classifier of this modality for. The probe (:func:`read_backbone`) checks the rest."""
    from transformers.models.auto import modeling_auto

    model_type = getattr(config, "model_type", None)
    if quirk_of(model_type).unsupported:
        raise _cannot_read(model_type, quirk_of(model_type).unsupported)
    mapping = (modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES if modality == "image"
               else modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)
    names = mapping.get(model_type)
    if names is None:
        kind = "ImageClassification" if modality == "image" else "SequenceClassification"
        raise UnsupportedArchitectureError(
            f"transformers has no *For{kind} class for model_type {model_type!r}, so it cannot be loaded as a "
            f"{modality} classifier: in Python, patch its base model instead (harness.patch(AutoModel.from_pretrained"
            f"(path, num_labels=...), head)). Families tested: {supported_families()}")
    import transformers

    for name in (names,) if isinstance(names, str) else names:
        main_input = getattr(getattr(transformers, name, None), "main_input_name", _INPUT_NAMES[modality])
        if main_input != _INPUT_NAMES[modality]:
            raise UnsupportedArchitectureError(
                f"{name} reads {main_input!r}, and sla-bench patches text models that read input_ids and vision "
                f"models that read pixel_values; head='native' works on any model")


# ---------------------------------------------------------------------------------------------------
# Dropping the native pooling


def drop_native_pooling(backbone: nn.Module) -> dict:
    """Replace the backbone's own pooling layers (their output is no longer used) by ``nn.Identity``,
    so that they hold no parameter that never receives a gradient. Identity rather than None: a
    backbone that calls its pooler unconditionally (SqueezeBERT) or feeds it on (ALBERT's tanh) still
    runs. Parameter-free pooling is left in place. Returns what was replaced, {name: module}, for
    :func:`restore_native_pooling`."""
    removed = {}
    names = ("pooler",) + quirk_of(getattr(backbone.config, "model_type", None)).drop
    for name in names:
        module = getattr(backbone, name, None)
        if isinstance(module, nn.Module) and any(True for _ in module.parameters()):
            removed[name] = module
            setattr(backbone, name, nn.Identity())
    return removed


def restore_native_pooling(backbone: nn.Module, removed: dict) -> None:
    for name, module in removed.items():
        setattr(backbone, name, module)


# ---------------------------------------------------------------------------------------------------
# The probe

_PROBE_LENGTH = 8


def _first_param(module: nn.Module) -> Optional[torch.Tensor]:
    return next((p for p in module.parameters() if p.is_floating_point()), None)


def _image_size(config) -> tuple[int, int]:
    size = getattr(config, "image_size", None) or 224
    if isinstance(size, dict):
        size = (size.get("height", 224), size.get("width", 224))
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))


def _probe_inputs(config, modality: str, device, dtype) -> dict:
    """Text: three rows of ``_PROBE_LENGTH`` token ids, the second differing from the first in its last
    token and the third in its first token (the states then tell a causal backbone, see
    :func:`_is_causal`). Image: one deterministic image at the config's input size."""
    if modality == "text":
        vocab = int(getattr(config, "vocab_size", None) or 100)
        low = 5 if vocab > 20 else 0  # past the usual special ids (pad, cls, sep, ...)
        span = vocab - low
        ids = low + (torch.arange(_PROBE_LENGTH) * 13) % span
        last, first = ids.clone(), ids.clone()
        last[-1] = low + (int(ids[-1]) - low + 1 + span // 2) % span
        first[0] = low + (int(ids[0]) - low + 1 + span // 2) % span
        ids = torch.stack([ids, last, first]).to(device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    h, w = _image_size(config)
    channels = int(getattr(config, "num_channels", None) or 3)
    pixels = torch.linspace(-1.0, 1.0, channels * h * w).reshape(1, channels, h, w)
    return {"pixel_values": pixels.to(device=device, dtype=dtype or torch.float32)}


def backbone_inputs(reading: Reading, config, inputs: dict) -> dict:
    """The keyword arguments of the base model's call: ``inputs`` without Nones, plus a quirk's extras."""
    inputs = {k: v for k, v in inputs.items() if v is not None}
    add = quirk_of(reading.model_type).inputs
    return add(config, inputs) if add else inputs


def read_backbone(backbone: nn.Module, modality: str) -> Reading:
    """Probe ``backbone`` (a base model) once and say how to read it; raises UnsupportedArchitectureError.

    The probe runs without gradients, in eval mode (restored afterwards), with the native pooling
    removed as the patched model runs, and leaves the global random state untouched: building a
    head after it draws the same numbers as without it.
    """
    config = backbone.config
    model_type = getattr(config, "model_type", None)
    quirk = quirk_of(model_type)
    if quirk.unsupported:
        raise _cannot_read(model_type, quirk.unsupported)
    if type(backbone).__name__.endswith(("ForSequenceClassification", "ForImageClassification")):
        raise _cannot_read(model_type, f"{type(backbone).__name__} has no separate base model (its base_model_prefix "
                                       f"{getattr(backbone, 'base_model_prefix', None)!r} names none of its submodules), "
                                       "so its backbone cannot be taken from under its head; patch its base model "
                                       "instead, loaded on its own (AutoModel, or a tower such as CLIPVisionModel)")
    param = _first_param(backbone)
    if param is None:
        raise _cannot_read(model_type, f"its base model {type(backbone).__name__} has no floating-point parameter")
    if param.device.type == "meta":
        raise _cannot_read(model_type, "its weights are on the meta device (not loaded yet), so it cannot be probed")
    inputs = _probe_inputs(config, modality, param.device, param.dtype)
    partial = Reading(model_type, modality, "tokens", 0, "none", backbone_class=type(backbone).__name__)
    training = {m: m.training for m in backbone.modules()}
    removed = drop_native_pooling(backbone)
    try:
        backbone.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            outputs = backbone(**backbone_inputs(partial, config, inputs))
    except Exception as error:  # any failure of a foreign model becomes one clear message
        line = (str(error).strip().splitlines() or [""])[0][:300]
        raise _cannot_read(model_type, f"its base model {type(backbone).__name__} failed on a probe input "
                                       f"({', '.join(inputs)}): {type(error).__name__}: {line}") from error
    finally:
        restore_native_pooling(backbone, removed)
        for module, flag in training.items():
            module.training = flag
    hidden = getattr(outputs, "last_hidden_state", None)
    if not isinstance(hidden, torch.Tensor):
        raise _cannot_read(model_type, f"its base model {type(backbone).__name__} returns no last_hidden_state "
                                       f"(its output has: {', '.join(getattr(outputs, 'keys', lambda: [])())})")
    if quirk.summary not in (None, "first", "last") and getattr(outputs, quirk.summary, None) is None:
        quirk = dataclasses.replace(quirk, summary="none")  # the field is filled only in some configurations
    if hidden.dim() == 4 and modality == "image":
        return dataclasses.replace(partial, layout="map", hidden_size=int(hidden.shape[1]),
                                   summary=quirk.summary or "none")
    if hidden.dim() != 3:
        raise _cannot_read(model_type, f"its last_hidden_state has shape {tuple(hidden.shape)}; a head reads "
                                       "token states (B, N, D) or, for images, a feature map (B, C, H, W)")
    n, width = int(hidden.shape[1]), int(hidden.shape[2])
    if modality == "image":
        prefix = _image_prefix(config, model_type, _image_size(config), n)
        return dataclasses.replace(partial, hidden_size=width, n_prefix=prefix,
                                   summary=quirk.summary or ("first" if prefix else "none"))
    length = inputs["input_ids"].shape[1]
    if n != length:
        if quirk.mask is None:
            raise _cannot_read(model_type, f"its base model returns {n} states for {length} input tokens, so "
                                           "attention_mask is not their padding mask; a quirk's mask function can "
                                           "say which states are real")
        got = quirk.mask(config, inputs["attention_mask"]).shape[1]
        if got != n:
            raise _cannot_read(model_type, f"its quirk's mask gives {got} positions for {n} states")
    causal = n == length and _is_causal(hidden)
    return dataclasses.replace(partial, hidden_size=width, summary=quirk.summary or ("last" if causal else "first"))


def _is_causal(hidden: torch.Tensor) -> bool:
    """Rows: a probe, its last token changed, its first token changed (see _probe_inputs). Causal: a
    later token changes no earlier state, and the last state does see the first token (a backbone
    whose positions never meet, such as a BERT with no layer, is not causal: its CLS stays first)."""
    def same(a, b):
        return torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)

    return same(hidden[0, :-1], hidden[1, :-1]) and not same(hidden[0, -1], hidden[2, -1])


def _image_prefix(config, model_type, size: tuple[int, int], n: int) -> int:
    """P in N = P + H*W: the smallest P for a grid the input size allows (side / patch size or a power
    of two, rounded either way); P must stay below the grid's size."""
    patch = getattr(config, "patch_size", None)
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    strides = {2 ** k for k in range(9)} | ({patch * 2 ** k for k in range(6)} if isinstance(patch, int) else set())
    sides = lambda side: {s for st in strides for s in (side // st, -(-side // st)) if s > 0}  # noqa: E731
    grids = {h * w for h in sides(size[0]) for w in sides(size[1])}
    fits = sorted(n - g for g in grids if 0 <= n - g < g)
    if not fits:
        raise _cannot_read(model_type, f"its {n} output tokens for a {size[0]}x{size[1]} input are not a patch grid "
                                       "(input size / patch size, or / a power of two) plus a few prefix tokens")
    return fits[0]


def read_classifier(model: nn.Module) -> Reading:
    """The reading of a classifier's backbone: a patched model's own, else a fresh probe."""
    reading = getattr(model, "reading", None)
    return reading if isinstance(reading, Reading) else read_backbone(model.base_model, modality_of(model))


def legacy_reading(config) -> Reading:
    """The reading of a checkpoint saved before readings were stored: the sixteen families of that time."""
    model_type = config.model_type
    maps, grids, prefix = {"convnext", "resnet"}, {"swin"}, {"vit": 1, "deit": 2, "beit": 1, "dinov2": 1}
    if model_type in maps:
        return Reading(model_type, "image", "map", config.hidden_sizes[-1], "none")
    if model_type in grids or model_type in prefix:
        return Reading(model_type, "image", "tokens", config.hidden_size, "first" if model_type in prefix else "none",
                       prefix.get(model_type, 0))
    width = getattr(config, "hidden_size", None) or getattr(config, "dim", None)
    return Reading(model_type, "text", "tokens", width, "first")


# ---------------------------------------------------------------------------------------------------
# Reading a forward pass


@lru_cache(maxsize=256)
def _token_grid(m: int, height: int, width: int) -> Optional[tuple[int, int]]:
    """(H, W) with H * W = m and H / W nearest the input's aspect ratio; None if none is within 2x."""
    side = math.isqrt(m)
    if side * side == m and height == width:
        return side, side
    pairs = [(h, m // h) for h in range(1, m + 1) if m % h == 0]
    h, w = min(pairs, key=lambda hw: abs(math.log(hw[0] * width / (hw[1] * height))))
    return (h, w) if abs(math.log(h * width / (w * height))) <= math.log(2) else None


def head_inputs(reading: Reading, config, outputs, inputs: dict
                ) -> tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], Optional[tuple[int, int]]]:
    """The base model's ``outputs`` and the call's ``inputs`` -> (states (B, N, D), mask (B, N) or None,
    first (B, D) or None: the summary token, grid (H, W) or None)."""
    hidden = outputs.last_hidden_state
    if reading.layout == "map":  # (B, C, H, W) -> (B, H*W, C)
        h, w = hidden.shape[-2:]
        states, mask, grid = hidden.flatten(2).transpose(1, 2), None, (h, w)
    elif reading.modality == "text":
        states, mask, grid = hidden, inputs.get("attention_mask"), None
        if mask is not None:
            to_states = quirk_of(reading.model_type).mask
            mask = (to_states(config, mask) if to_states else mask).bool()
            if mask.shape != states.shape[:2]:
                raise _cannot_read(reading.model_type, f"its {states.shape[1]} states do not match the "
                                                       f"{mask.shape[1]} positions of attention_mask")
    else:  # image tokens: prefix tokens, then the patch grid in row-major order
        states, mask = hidden[:, reading.n_prefix:], None
        pixels = inputs["pixel_values"]
        grid = _token_grid(states.shape[1], int(pixels.shape[-2]), int(pixels.shape[-1]))
        if grid is None:
            raise _cannot_read(reading.model_type, f"its {states.shape[1]} patch tokens (after {reading.n_prefix} "
                                                   f"prefix tokens) form no grid for a {tuple(pixels.shape[-2:])} input")
    return states, mask, _summary(reading, hidden, mask, outputs), grid


def _summary(reading: Reading, hidden, mask, outputs) -> Optional[torch.Tensor]:
    """The summary token (B, D) or None."""
    if reading.summary == "none":
        return None
    if reading.summary == "first":
        return hidden[:, 0]
    if reading.summary == "last":  # the last real position of each row, whichever side the padding is on
        if mask is None:
            return hidden[:, -1]
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (positions * mask).argmax(dim=1)  # (B,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    return getattr(outputs, reading.summary)[:, 0]  # an output field (B, 1, D)
