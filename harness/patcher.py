"""``patch``: put any sla-bench head into a Hugging Face classifier in place of its own pooling.

    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=2)
    model = harness.patch(model, head="sla-3", d=128)     # same backbone weights, new head + classifier
    out = model(**batch, labels=labels)                  # SequenceClassifierOutput, HF loss semantics
    model.save_pretrained("ckpt"); again = harness.from_pretrained("ckpt")   # identical logits

The patched model is an ordinary ``PreTrainedModel``: it returns the same output class as the
original, computes HF's loss (regression for num_labels == 1, single- or multi-label
classification), trains in ``transformers.Trainer``, and its config carries an ``sla_bench``
entry from which ``from_pretrained`` rebuilds the same head.
"""
from __future__ import annotations

import copy
from typing import Optional

from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput, SequenceClassifierOutput

from .families import (Reading, backbone_inputs, drop_native_pooling, head_inputs, legacy_reading, modality_of,
                       read_backbone)
from .heads import HeadOutput, build_head, parse_head_spec

CONFIG_KEY = "sla_bench"


class _Patched(PreTrainedModel):
    """Backbone (the original model's base model) -> head -> dropout -> fresh linear classifier.

    ``self.reading`` (``families.Reading``) says how the backbone's output becomes the head's input;
    it is kept in the config, so a checkpoint loads without probing the backbone again.
    """

    base_model_prefix = "backbone"
    output_class = SequenceClassifierOutput
    # The backbone chose its own attention kernel; the wrapper adds none, so it accepts them all.
    _supports_sdpa = _supports_flash_attn = _supports_flex_attn = _supports_attention_backend = True

    def __init__(self, config, backbone: Optional[nn.Module] = None):
        # The backbone keeps the mixture-of-experts kernels it chose (Mixtral: grouped_mm); the wrapper has
        # no experts, and transformers refuses a model that cannot set the kernel its config names.
        config._experts_implementation_internal = None
        super().__init__(config)
        entry = getattr(config, CONFIG_KEY, None)
        if not entry:
            raise ValueError(f"config has no {CONFIG_KEY!r} entry: build patched models with harness.patch(model, head)")
        self.spec = parse_head_spec(entry["head"], **entry["options"])
        self.reading = Reading.from_dict(entry["reading"]) if entry.get("reading") else legacy_reading(config)
        self.backbone = backbone if backbone is not None else _backbone_from_config(config, self.reading)
        drop_native_pooling(self.backbone)
        self.head = build_head(self.spec, self.reading.hidden_size, self.reading.spatial_dims)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(self.head.out_dim, config.num_labels)
        # Set True to keep the head's per-layer attention weights and latent maps of the last call.
        self.capture_internals = False
        self.last_head_output: Optional[HeadOutput] = None
        self.post_init()

    def _init_weights(self, module):
        # Only the new classifier is initialised here; the backbone keeps its weights, and the head
        # keeps PyTorch's default initialisation of its layers.
        if module is getattr(self, "classifier", None):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, path, *args, **kwargs):
        kwargs.setdefault("config", AutoConfig.from_pretrained(path))
        return super().from_pretrained(path, *args, **kwargs)

    def head_parameters(self) -> int:
        """Parameters the head and the fresh classifier add to the backbone."""
        return sum(p.numel() for m in (self.head, self.classifier) for p in m.parameters())

    def classify_states(self, states, mask=None, first=None, grid=None, labels=None, **outputs):
        """The classify step on the head's inputs: head -> dropout -> classifier -> loss.

        states (B, N, D) backbone states at the head's positions, mask (B, N) bool, first (B, D) the
        summary token or None, grid (H, W) for feature maps. Returns ``output_class`` (sequence or
        image classifier output) with ``outputs`` (the backbone's hidden states, attentions) passed on.
        Probe mode calls this on cached states, so a probed head is the patched model's own.
        """
        pooled = self.head(states, mask, first, grid, return_internals=self.capture_internals)
        self.last_head_output = pooled if self.capture_internals else None
        logits = self.classifier(self.dropout(pooled.pooled))  # (B, num_labels)
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        return self.output_class(loss=loss, logits=logits, **outputs)

    def _classify(self, inputs: dict, labels, backbone_kwargs: dict):
        outputs = self.backbone(**backbone_inputs(self.reading, self.config, {**inputs, **backbone_kwargs}))
        states, mask, first, grid = head_inputs(self.reading, self.config, outputs, inputs)
        return self.classify_states(states, mask, first, grid, labels,
                                    hidden_states=getattr(outputs, "hidden_states", None),
                                    attentions=getattr(outputs, "attentions", None))


class PatchedModelForSequenceClassification(_Patched):
    main_input_name = "input_ids"

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_attentions=None, output_hidden_states=None, **kwargs) -> SequenceClassifierOutput:
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                      position_ids=position_ids, inputs_embeds=inputs_embeds)
        return self._classify(inputs, labels, dict(output_attentions=output_attentions,
                                                   output_hidden_states=output_hidden_states, **kwargs))


class PatchedModelForImageClassification(_Patched):
    main_input_name = "pixel_values"
    output_class = ImageClassifierOutput

    def forward(self, pixel_values=None, labels=None, output_attentions=None, output_hidden_states=None,
                **kwargs) -> ImageClassifierOutput:
        return self._classify(dict(pixel_values=pixel_values), labels,
                              dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states, **kwargs))


def _backbone_from_config(config, reading: Reading) -> nn.Module:
    """The same base-model class as the patched model had (Funnel's classifier holds a FunnelBaseModel,
    not the FunnelModel that AutoModel builds); AutoModel for classes outside transformers."""
    import transformers

    config = copy.deepcopy(config)
    config._attn_implementation_internal = None  # let the backbone choose the kernels it supports (DeBERTa: eager)
    cls = getattr(transformers, reading.backbone_class, None) if reading.backbone_class else None
    return cls._from_config(config) if cls is not None else AutoModel.from_config(config)


def _classifier_dropout(config) -> float:
    for name in ("classifier_dropout", "seq_classif_dropout", "classifier_dropout_prob", "hidden_dropout_prob"):
        value = getattr(config, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return 0.0


def patch(model: PreTrainedModel, head: str = "sla-2", **options) -> PreTrainedModel:
    """Replace ``model``'s pooling and classifier with ``head`` and a fresh linear classifier.

    ``model``: an HF ``*ForSequenceClassification`` or ``*ForImageClassification``, or a base model
    (``AutoModel``; its ``config.num_labels`` sets the classes), whose base model returns
    ``last_hidden_state`` (docs/families.md says how it is read). ``head``: a head spec (``"sla-3"``,
    ``"san-2:query_update=residual"``); ``options`` override the spec's options. ``head="native"``
    returns ``model`` untouched, for any model.

    The returned model shares the backbone modules (the same tensors) with ``model``, whose own
    pooling layer is removed: use the returned model from then on. A backbone that cannot be read
    raises ``UnsupportedArchitectureError`` (and ``model`` is left as it was).
    """
    spec = parse_head_spec(head, **options)
    if spec.is_native:
        return model
    kind = type(model).__name__
    task = modality_of(model)
    # The probe leaves the random state alone: the head below draws the same numbers as without it.
    reading = model.reading if isinstance(model, _Patched) else read_backbone(model.base_model, task)
    config = copy.deepcopy(model.config)
    previous = getattr(config, CONFIG_KEY, None)
    base_architecture = previous["base_architecture"] if previous else kind
    setattr(config, CONFIG_KEY, {"head": spec.label, "options": spec.options, "base_architecture": base_architecture,
                                 "reading": reading.to_dict()})
    cls = PatchedModelForImageClassification if task == "image" else PatchedModelForSequenceClassification
    patched = cls(config, backbone=model.base_model)
    return patched.to(device=next(model.parameters()).device)


def from_pretrained(path, **kwargs) -> PreTrainedModel:
    """Load a classifier saved with ``save_pretrained``, patched or not."""
    config = AutoConfig.from_pretrained(path)
    entry = getattr(config, CONFIG_KEY, None)
    if entry:
        modality = (Reading.from_dict(entry["reading"]) if entry.get("reading") else legacy_reading(config)).modality
        cls = PatchedModelForImageClassification if modality == "image" else PatchedModelForSequenceClassification
        return cls.from_pretrained(path, config=config, **kwargs)
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    is_image = "ForImageClassification" in (config.architectures or [""])[0]
    auto = AutoModelForImageClassification if is_image else AutoModelForSequenceClassification
    return auto.from_pretrained(path, config=config, **kwargs)


def head_parameters(model: nn.Module) -> int:
    """Parameters outside the backbone: the head and classifier (for ``native``, the model's own)."""
    if isinstance(model, _Patched):
        return model.head_parameters()
    total = sum(p.numel() for p in model.parameters())
    return total - sum(p.numel() for p in model.base_model.parameters())
