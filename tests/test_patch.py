"""harness.patch on tiny random-init models of every tested family (no network)."""
import dataclasses

import pytest
import torch
from torch.nn import functional as F
from transformers import (BertForMaskedLM, BertModel, GPT2ForSequenceClassification, LlamaForSequenceClassification,
                          Trainer, TrainingArguments, Wav2Vec2Config, Wav2Vec2ForSequenceClassification)
from transformers.modeling_outputs import ImageClassifierOutput, SequenceClassifierOutput

import harness
from harness import families, patcher
from harness.heads import build_head
from tiny_models import (DECODER_CONFIGS, FAMILIES, LEFT_PADDED, PADDING, TEXT_CONFIGS, VISION_CONFIGS, pad_more,
                         tiny_config, tiny_inputs, tiny_model)

# Every head, read from every family's backbone; the whole patched model is checked with MAIN.
HEADS = ["cls", "mean", "attn:d=8", "san-2:d=8", "sla-2:d=8", "sla-2:d=8,kernel=3", "sla-2:d=8,query=cls", "mhap:heads=4"]
MAIN = "sla-2:d=8,kernel=3"
LABELS = torch.tensor([0, 1, 2])


def _trained(model, inputs) -> set:
    """Names of the base model's parameters that one training step's loss reaches."""
    model.zero_grad()
    model.train()(**inputs, labels=LABELS).loss.backward()
    return {n for n, p in model.base_model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.fixture(scope="module")
def trainer_args(tmp_path_factory):
    return TrainingArguments(output_dir=str(tmp_path_factory.mktemp("trainer")), max_steps=2,
                             per_device_train_batch_size=4, learning_rate=1e-2, report_to=[], save_strategy="no",
                             use_cpu=True, logging_steps=1, disable_tqdm=True)


class _Rows(torch.utils.data.Dataset):
    def __init__(self, family, n=8):
        self.inputs = tiny_inputs(family, batch=n, length=12, seed=1)
        self.labels = torch.arange(n) % 3

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {**{k: v[i] for k, v in self.inputs.items()}, "labels": self.labels[i]}


def test_the_tested_list_is_the_families_built_here():
    listed = families.TESTED_FAMILIES
    assert sorted(n for names in listed.values() for n in names) == sorted(FAMILIES)
    assert sorted(listed["text decoders"]) == sorted(DECODER_CONFIGS)
    assert sorted(listed["vision"]) == sorted(VISION_CONFIGS)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family(family, tmp_path, trainer_args):
    """One family end to end: every head reads its backbone; the patched model trains the backbone as
    its native head does, ignores extra padding, saves and loads, and trains in Trainer."""
    inputs = tiny_inputs(family)
    is_text = family in TEXT_CONFIGS
    native = tiny_model(family)
    native_trained = _trained(native, inputs)

    # Every head on the heads' inputs of this backbone, and (text) on the same batch padded further.
    native.eval()
    reading = families.read_classifier(native)
    length, extra = PADDING.get(family, (10, 5))
    batches = [tiny_inputs(family, length=length)]
    if is_text:
        batches.append(pad_more(batches[0], extra, left=family in LEFT_PADDED))
        with torch.no_grad():
            logits = [native(**b).logits for b in batches]
        torch.testing.assert_close(logits[1], logits[0], rtol=1e-4, atol=1e-5, msg=f"{family} native")
    with torch.no_grad():
        read = [families.head_inputs(reading, native.config,
                                     native.base_model(**families.backbone_inputs(reading, native.config, b)), b)
                for b in batches]
    states, mask, first, grid = read[0]
    assert states.shape[0] == 3 and states.shape[2] == reading.hidden_size
    assert (mask is not None) == is_text and (grid is not None) == (not is_text)
    assert (first is not None) == reading.has_summary
    for spec in HEADS:
        if "cls" in spec and not reading.has_summary:
            continue
        torch.manual_seed(0)
        head = build_head(spec, reading.hidden_size, reading.spatial_dims).eval()
        pooled = [head(*r).pooled for r in read]
        assert pooled[0].shape == (3, head.out_dim) and torch.isfinite(pooled[0]).all(), spec
        if is_text:
            torch.testing.assert_close(pooled[1], pooled[0], rtol=1e-4, atol=1e-5, msg=f"{family} {spec}")

    # The whole patched model: HF output, loss, gradients into the head and the backbone.
    model = harness.patch(tiny_model(family), MAIN)
    out = model.train()(**inputs, labels=LABELS)
    assert type(out) is (SequenceClassifierOutput if is_text else ImageClassifierOutput)
    assert out.logits.shape == (3, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.parameters())
    assert model.classifier.weight.grad.abs().sum() > 0
    trained = {n for n, p in model.backbone.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    kept = {n for n, _ in model.backbone.named_parameters()}
    assert trained and native_trained & kept <= trained, sorted(native_trained & kept - trained)[:5]
    total = sum(q.numel() for q in model.parameters())
    assert harness.head_parameters(model) == total - sum(q.numel() for q in model.backbone.parameters()) > 0

    # Save and load: identical logits, through harness.from_pretrained and the class's own.
    model.eval().save_pretrained(tmp_path)
    loaded = harness.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model) and loaded.spec == model.spec and loaded.reading == model.reading
    with torch.no_grad():
        reference = model(**inputs).logits
        # equal to float tolerance: a mixture-of-experts backbone may sum its experts in another order
        torch.testing.assert_close(loaded(**inputs).logits, reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(type(model).from_pretrained(tmp_path).eval()(**inputs).logits, reference,
                                   rtol=1e-5, atol=1e-6)

    # Two Trainer steps move the classifier, the head and the backbone.
    before = [p.detach().clone() for p in (model.classifier.weight, *model.head.parameters())]
    backbone_before = [p.detach().clone() for p in model.backbone.parameters()]
    trainer = Trainer(model=model, args=trainer_args, train_dataset=_Rows(family))
    # Trainer starts by freeing memory with a full gc.collect, which in a process holding ~50 model
    # families costs ten times the two steps; nothing here needs it.
    trainer.accelerator.free_memory = lambda *objects: objects
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(model.classifier.weight, before[0])
    assert any(not torch.equal(p, q) for p, q in zip(model.head.parameters(), before[1:]))
    assert any(not torch.equal(p, q) for p, q in zip(model.backbone.parameters(), backbone_before))


@pytest.mark.parametrize("family,layout,summary,prefix", [
    ("bert", "tokens", "first", 0), ("xlnet", "tokens", "last", 0), ("gpt2", "tokens", "last", 0),
    ("llama", "tokens", "last", 0), ("funnel", "tokens", "first", 0), ("t5", "tokens", "last", 0),
    ("vit", "tokens", "first", 1), ("deit", "tokens", "first", 2), ("dinov2_with_registers", "tokens", "first", 5),
    ("pvt", "tokens", "first", 1), ("swin", "tokens", "none", 0), ("levit", "tokens", "none", 0),
    ("convnext", "map", "none", 0), ("mobilenet_v2", "map", "none", 0), ("cvt", "map", "cls_token_value", 0)])
def test_what_the_probe_infers(family, layout, summary, prefix):
    reading = families.read_classifier(tiny_model(family))
    assert (reading.layout, reading.summary, reading.n_prefix) == (layout, summary, prefix)


def test_a_bert_is_read_as_before():
    """The reading of the families patched before inference existed is what their table said: the
    same states, mask and first token (BERT) and the same grid (Swin: from the input size)."""
    model = tiny_model("bert")
    inputs = tiny_inputs("bert")
    reading = families.read_classifier(model)
    hidden = model.base_model(**inputs).last_hidden_state
    states, mask, first, grid = families.head_inputs(reading, model.config, model.base_model(**inputs), inputs)
    assert torch.equal(states, hidden) and torch.equal(mask, inputs["attention_mask"].bool())
    assert torch.equal(first, hidden[:, 0]) and grid is None
    assert reading == dataclasses.replace(families.legacy_reading(model.config), backbone_class="BertModel")
    # a BERT with no layer (the embed-bert named config): its positions never meet, so no state depends
    # on a later token, yet it is no decoder; its summary stays the CLS
    config = tiny_config("bert")
    config.num_hidden_layers = 0
    embed_only = type(model)(config).eval()
    assert families.read_classifier(embed_only).summary == "first"
    swin = tiny_model("swin")
    pixels = torch.randn(2, 3, 32, 48)  # not square: (32/4, 48/4) halved once by patch merging
    out = swin.base_model(pixel_values=pixels)
    _, _, first, grid = families.head_inputs(families.read_classifier(swin), swin.config, out, {"pixel_values": pixels})
    assert grid == (4, 6) and first is None


def test_the_probe_leaves_the_random_state_alone(monkeypatch):
    """The head and classifier built after the probe draw what they would draw without one, and so
    does everything after them (a study's numbers do not move); the backbone's modes are restored."""
    def patch_once(**kwargs):
        model = tiny_model("bert").train()
        torch.manual_seed(7)
        patched = harness.patch(model, "sla-3:d=8")
        assert model.bert.training and all(m.training for m in model.bert.modules())
        return [p.detach().clone() for p in (*patched.head.parameters(), patched.classifier.weight)], torch.rand(3)

    params, after = patch_once()
    reading = families.read_classifier(tiny_model("bert"))
    monkeypatch.setattr(patcher, "read_backbone", lambda backbone, modality: reading)  # no probe at all
    unprobed, unprobed_after = patch_once()
    assert all(torch.equal(p, q) for p, q in zip(params, unprobed)) and torch.equal(after, unprobed_after)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize("left", [False, True])
def test_decoder_summary_is_the_last_real_token(family, left):
    """query=cls and the cls head read the token a decoder's native head reads: the last real one,
    whichever side the padding is on."""
    inputs = tiny_inputs(family)
    if left:
        inputs = {k: v.flip(1) for k, v in inputs.items()}  # padding on the left
    model = harness.patch(tiny_model(family), "cls").eval()
    model.capture_internals = True
    with torch.no_grad():
        model(**inputs)
        hidden = model.backbone(**inputs).last_hidden_state
    real = inputs["attention_mask"].bool()
    last = [int(torch.nonzero(row).max()) for row in real]
    assert last == ([9, 9, 9] if left else [9, 7, 5])
    torch.testing.assert_close(model.last_head_output.pooled, hidden[torch.arange(3), last])
    # the native head picks the same positions (the last token that is not padding)
    native = tiny_model(family).eval()
    with torch.no_grad():
        scores = native.score(native.base_model(**inputs).last_hidden_state)
        torch.testing.assert_close(native(**inputs).logits, scores[torch.arange(3), last])


def test_native_is_untouched():
    for family in ("bert", "vit", "gpt2"):
        model = tiny_model(family)
        inputs = tiny_inputs(family)
        with torch.no_grad():
            before = model(**inputs).logits
        patched = harness.patch(model, "native")
        assert patched is model
        with torch.no_grad():
            assert torch.equal(patched(**inputs).logits, before)


def test_backbone_weights_are_kept():
    model = tiny_model("bert")
    reference = {k: v.clone() for k, v in model.bert.encoder.state_dict().items()}
    patched = harness.patch(model, "sla-2")
    for key, value in patched.backbone.encoder.state_dict().items():
        assert torch.equal(value, reference[key])
    # the native pooler's parameters are gone, not left unused
    assert not [n for n, _ in patched.backbone.named_parameters() if "pooler" in n]
    assert patched.config.sla_bench["head"] == "sla-2"
    assert patched.config.sla_bench["base_architecture"] == "BertForSequenceClassification"
    assert patched.config.sla_bench["reading"]["hidden_size"] == 32


def test_a_base_model_is_patched_too(tmp_path):
    torch.manual_seed(0)
    config = tiny_config("bert", num_labels=4)
    model = harness.patch(BertModel(config), "mean")
    inputs = tiny_inputs("bert")
    out = model(**inputs, labels=torch.tensor([0, 1, 3]))
    assert out.logits.shape == (3, 4) and torch.isfinite(out.loss)
    model.eval().save_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(harness.from_pretrained(tmp_path).eval()(**inputs).logits, model(**inputs).logits)


def test_native_save_and_load(tmp_path):
    model = tiny_model("bert")
    model.save_pretrained(tmp_path)
    inputs = tiny_inputs("bert")
    with torch.no_grad():
        assert torch.equal(harness.from_pretrained(tmp_path).eval()(**inputs).logits, model(**inputs).logits)


def test_a_checkpoint_without_a_reading_loads(tmp_path):
    """Checkpoints saved before readings were stored rebuild theirs from the config."""
    model = harness.patch(tiny_model("deit"), "sla-2:d=8").eval()
    model.config.sla_bench = {k: v for k, v in model.config.sla_bench.items() if k != "reading"}
    model.save_pretrained(tmp_path)
    inputs = tiny_inputs("deit")
    loaded = harness.from_pretrained(tmp_path).eval()
    assert (loaded.reading.n_prefix, loaded.reading.summary) == (2, "first")
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)


def test_hf_loss_semantics():
    inputs = tiny_inputs("bert")
    # regression: num_labels == 1 -> MSE
    model = harness.patch(tiny_model("bert", num_labels=1), "sla-2").eval()
    target = torch.tensor([0.5, 1.5, 2.5])
    out = model(**inputs, labels=target)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), target))
    assert model.config.problem_type == "regression"
    # single-label: integer labels -> cross-entropy
    model = harness.patch(tiny_model("bert", num_labels=3), "san-2").eval()
    target = torch.tensor([0, 2, 1])
    out = model(**inputs, labels=target)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, target))
    # multi-label: float multi-hot labels -> BCE with logits
    model = harness.patch(tiny_model("bert", num_labels=3), "mhap").eval()
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    out = model(**inputs, labels=target)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, target))


def test_internals_are_captured_on_request_only():
    model = harness.patch(tiny_model("bert"), "sla-3:d=8").eval()
    inputs = tiny_inputs("bert")
    model(**inputs)
    assert model.last_head_output is None
    model.capture_internals = True
    model(**inputs)
    attentions = model.last_head_output.attentions
    assert len(attentions) == 3 and attentions[0].shape == inputs["input_ids"].shape
    assert torch.all(attentions[0][inputs["attention_mask"] == 0] == 0)


def _clear(error, *words):
    message = str(error.value)
    for word in words:
        assert word in message, (word, message)


def test_an_output_without_hidden_states_is_refused_clearly():
    """A base model whose output has no last_hidden_state (here: its pooled vector only)."""
    model = tiny_model("bert")

    def pooled_only(*args, **kwargs):
        return {"pooler_output": torch.zeros(3, 32)}

    model.bert.forward = pooled_only
    with pytest.raises(harness.UnsupportedArchitectureError) as info:
        harness.patch(model, "sla-2")
    _clear(info, "'bert'", "no last_hidden_state", "pooler_output", "QUIRKS", "docs/families.md", "native")
    assert harness.patch(model, "native") is model  # native works on anything


def test_a_classifier_without_a_separate_base_model_is_refused_clearly():
    """As CLIPForImageClassification: its vision tower sits under no base_model_prefix."""
    model = tiny_model("vit")
    model.base_model_prefix = "clip"
    with pytest.raises(harness.UnsupportedArchitectureError) as info:
        harness.patch(model, "mean")
    _clear(info, "'vit'", "no separate base model", "'clip'", "patch its base model")


def test_a_text_backbone_that_shortens_the_sequence_needs_its_quirk(monkeypatch):
    monkeypatch.delitem(families.QUIRKS, "funnel")
    with pytest.raises(harness.UnsupportedArchitectureError) as info:
        harness.patch(tiny_model("funnel"), "mean")
    _clear(info, "'funnel'", "returns 5 states for 8 input tokens", "QUIRKS", "native")


def test_a_failing_backbone_is_refused_clearly_and_left_intact():
    model = tiny_model("bert")
    pooler = model.bert.pooler

    def broken(*args, **kwargs):
        raise RuntimeError("needs bbox")

    model.bert.forward = broken
    with pytest.raises(harness.UnsupportedArchitectureError) as info:
        harness.patch(model, "mean")
    _clear(info, "'bert'", "failed on a probe input", "RuntimeError: needs bbox", "QUIRKS")
    assert model.bert.pooler is pooler


def test_wrong_model_kinds_are_refused():
    with pytest.raises(harness.UnsupportedArchitectureError, match="ForSequenceClassification"):
        harness.patch(BertForMaskedLM(tiny_config("bert")), "sla-2")
    audio = Wav2Vec2ForSequenceClassification(Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                              intermediate_size=32, conv_dim=(8,), conv_stride=(5,),
                                                              conv_kernel=(10,), num_feat_extract_layers=1))
    with pytest.raises(harness.UnsupportedArchitectureError) as info:
        harness.patch(audio, "sla-2")
    _clear(info, "input_values", "input_ids", "pixel_values", "native")
    with pytest.raises(harness.UnsupportedArchitectureError) as info:  # what run_bench.py checks from a config
        families.check_config(audio.config, "text")
    _clear(info, "no *ForSequenceClassification class for model_type 'wav2vec2'", "AutoModel")


def test_bad_head_and_option_errors():
    with pytest.raises(harness.UnknownHeadError, match="available heads"):
        harness.patch(tiny_model("bert"), "slaa-2")
    with pytest.raises(harness.HeadOptionError, match="no option 'dd'"):
        harness.patch(tiny_model("bert"), "sla-2", dd=3)
    with pytest.raises(ValueError, match="first token"):
        harness.patch(tiny_model("resnet"), "cls")(**tiny_inputs("resnet"))


def test_patch_options_and_repatch():
    model = harness.patch(tiny_model("vit"), "sla-2:d=16", phi="tanh")
    assert model.spec.options["d"] == 16 and model.spec.options["phi"] == "tanh"
    assert isinstance(model.head.stack.proj_v.proj, torch.nn.Linear)
    again = harness.patch(model, "mhap")  # a patched model can be patched again
    assert again.config.sla_bench["base_architecture"] == "ViTForImageClassification"
    assert again.backbone is model.backbone and again.reading == model.reading


def test_list_names_the_tested_families(capsys):
    from harness.cli import main

    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for names in families.TESTED_FAMILIES.values():
        for name in names:
            assert name in out


def test_a_decoder_checkpoint_gets_a_pad_token(tmp_path):
    """A decoder saved without a pad token (as GPT-2 ships) loads for run_bench.py with one, so that its
    native head can find the last real token of a padded batch, and the patched model reads the same."""
    from transformers import PreTrainedTokenizerFast

    from harness.models import load_model, word_level_tokenizer

    words = word_level_tokenizer(["a b c d e f g"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words.backend_tokenizer, eos_token="[SEP]", unk_token="[UNK]")
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(tmp_path)
    config = tiny_config("gpt2")
    config.pad_token_id = None
    GPT2ForSequenceClassification(config).save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), num_labels=2)
    eos = loaded.tokenizer.eos_token_id
    assert loaded.tokenizer.pad_token_id == eos
    native = loaded.build().eval()
    assert native.config.pad_token_id == eos
    batch = {"input_ids": torch.tensor([[5, 6, 7, eos], [5, 6, eos, eos]]),
             "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])}
    with torch.no_grad():
        assert native(**batch).logits.shape == (2, 2)
        assert harness.patch(native, "sla-2:d=8").eval()(**batch).logits.shape == (2, 2)


def test_the_docs_list_every_quirk():
    """docs/families.md's quirk table names exactly the model types in QUIRKS."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "families.md").read_text()
    table = text[text.index("## Quirks"):text.index("### Adding a quirk")]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    assert sorted(t for row in rows for t in re.findall(r"`([^`]+)`", row)) == sorted(families.QUIRKS)


def _native_summary(family, native, inputs):
    """The vector the native classifier's head reads, computed from its own base model by hand."""
    ids = inputs.get("input_ids")
    if family == "longformer":  # its classifier adds global attention on the first token
        glob = torch.zeros_like(ids)
        glob[:, 0] = 1
        return native.longformer(**inputs, global_attention_mask=glob).last_hidden_state[:, 0]
    if family == "cvt":
        return native.cvt(**inputs).cls_token_value[:, 0]
    if family == "xlnet":  # left-padded: the last position
        return native.transformer(**inputs).last_hidden_state[:, -1]
    if family == "t5":
        hidden = native.transformer(**inputs, decoder_input_ids=native._shift_right(ids)).last_hidden_state
    else:  # bart
        hidden = native.model(**inputs).last_hidden_state
    return hidden[ids == native.config.eos_token_id]  # one <eos> per row, at its end


@pytest.mark.parametrize("family", ["longformer", "cvt", "xlnet", "t5", "bart"])
def test_a_quirk_reads_the_summary_the_native_head_reads(family):
    inputs = tiny_inputs(family)
    model = harness.patch(tiny_model(family), "cls").eval()
    model.capture_internals = True
    with torch.no_grad():
        model(**inputs)
        expected = _native_summary(family, tiny_model(family).eval(), inputs)
    torch.testing.assert_close(model.last_head_output.pooled, expected)


def test_the_funnel_mask_is_pooled_as_funnel_pools_its_own():
    model = tiny_model("funnel")
    structure = model.funnel.encoder.attention_structure
    for truncate in (False, True):
        model.config.truncate_seq = truncate
        for length in (7, 8, 11):
            mask = torch.ones(4, length)
            for row, real in enumerate((length, length - 1, length - 2, 1)):
                mask[row, real:] = 0
            expected = structure.pool_tensor(mask, mode="min")
            assert torch.equal(families.QUIRKS["funnel"].mask(model.config, mask), expected), (truncate, length)


def test_run_bench_takes_a_decoder_from_a_local_directory(tmp_path, capsys):
    """A family outside the named configs, by local directory: native and a patched head both train."""
    from transformers import PreTrainedTokenizerFast

    from bench_helpers import runs, tiny_args
    from harness.cli import main
    from harness.models import word_level_tokenizer

    model_dir = tmp_path / "tiny-llama"
    words = word_level_tokenizer(["a good fine great movie film bad awful boring plot"])
    PreTrainedTokenizerFast(tokenizer_object=words.backend_tokenizer, eos_token="[SEP]",
                            unk_token="[UNK]").save_pretrained(model_dir)  # no pad token, as decoders ship
    config = tiny_config("llama", num_labels=2)
    config.vocab_size, config.pad_token_id = len(words), None
    LlamaForSequenceClassification(config).save_pretrained(model_dir)
    assert main(tiny_args(tmp_path / "out", models=str(model_dir), heads="native,sla-2:d=8", seeds=1)) == 0
    rows = runs(tmp_path / "out")
    assert sorted(rows["head"]) == ["native", "sla-2:d=8"] and (rows["status"] == "ok").all(), rows["error"].tolist()
