"""harness.patch on tiny random-init models of every supported family (no network)."""
import pytest
import torch
from torch.nn import functional as F
from transformers import (BertModel, GPT2Config, GPT2ForSequenceClassification, Trainer, TrainingArguments)
from transformers.modeling_outputs import ImageClassifierOutput, SequenceClassifierOutput

import harness
from tiny_models import FAMILIES, TEXT_CONFIGS, pad_more, tiny_inputs, tiny_model

HEADS = ["cls", "mean", "attn", "san-2", "sla-2", "sla-2:kernel=3", "mhap"]
NO_FIRST = {"swin", "convnext", "resnet"}


def heads_for(family):
    return [h for h in HEADS if not (h == "cls" and family in NO_FIRST)]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_head_forward_backward(family):
    labels = torch.tensor([0, 1, 2])
    inputs = tiny_inputs(family)
    for head in heads_for(family):
        model = harness.patch(tiny_model(family), head)
        out = model(**inputs, labels=labels)
        expected = SequenceClassifierOutput if family in TEXT_CONFIGS else ImageClassifierOutput
        assert type(out) is expected
        assert out.logits.shape == (3, 3) and torch.isfinite(out.loss)
        out.loss.backward()
        assert all(p.grad is not None for p in model.head.parameters()), head
        assert model.classifier.weight.grad.abs().sum() > 0
        # fine-tuning: the loss reaches the backbone's input embeddings through the head
        embed = [q.grad.abs().sum() for n, q in model.backbone.named_parameters() if "embed" in n and q.grad is not None]
        assert embed and sum(embed) > 0, (family, head)
        total = sum(q.numel() for q in model.parameters())
        assert harness.head_parameters(model) == total - sum(q.numel() for q in model.backbone.parameters()) > 0


@pytest.mark.parametrize("family", list(TEXT_CONFIGS))
def test_extra_padding_leaves_logits_unchanged(family):
    inputs = tiny_inputs(family)
    for head in heads_for(family) + ["native"]:
        model = harness.patch(tiny_model(family), head).eval()
        with torch.no_grad():
            reference = model(**inputs).logits
            padded = model(**pad_more(inputs, 5)).logits
        torch.testing.assert_close(padded, reference, rtol=1e-4, atol=1e-5, msg=f"{family} {head}")


@pytest.mark.parametrize("family", ["bert", "vit"])
def test_native_is_untouched(family):
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
    assert patched.backbone.pooler is None  # the native pooler's parameters are gone, not left unused
    assert patched.config.sla_bench["head"] == "sla-2"
    assert patched.config.sla_bench["base_architecture"] == "BertForSequenceClassification"


@pytest.mark.parametrize("family,head", [("bert", "sla-3:d=8,kernel=3"), ("distilbert", "mhap"),
                                         ("deberta-v2", "san-2"), ("vit", "sla-2"), ("swin", "sla-2:kernel=3"),
                                         ("convnext", "attn"), ("resnet", "mean")])
def test_save_and_load_give_identical_logits(tmp_path, family, head):
    model = harness.patch(tiny_model(family), head).eval()
    inputs = tiny_inputs(family)
    model.save_pretrained(tmp_path)
    loaded = harness.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    assert loaded.spec == model.spec
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)
    again = type(model).from_pretrained(tmp_path).eval()  # the class's own from_pretrained works too
    with torch.no_grad():
        assert torch.equal(again(**inputs).logits, model(**inputs).logits)


def test_native_save_and_load(tmp_path):
    model = tiny_model("bert")
    model.save_pretrained(tmp_path)
    inputs = tiny_inputs("bert")
    with torch.no_grad():
        assert torch.equal(harness.from_pretrained(tmp_path).eval()(**inputs).logits, model(**inputs).logits)


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


class _Rows(torch.utils.data.Dataset):
    def __init__(self, family, n=8):
        self.inputs = tiny_inputs(family, batch=n, length=12, seed=1)
        self.labels = torch.arange(n) % 3

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {**{k: v[i] for k, v in self.inputs.items()}, "labels": self.labels[i]}


@pytest.mark.parametrize("family", ["bert", "convnext"])
def test_two_trainer_steps(tmp_path, family):
    model = harness.patch(tiny_model(family), "sla-2:d=8")
    before = model.classifier.weight.detach().clone()
    head_before = [p.detach().clone() for p in model.head.parameters()]
    backbone_before = [p.detach().clone() for p in model.backbone.parameters()]
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, learning_rate=1e-2,
                             report_to=[], save_strategy="no", use_cpu=True, logging_steps=1, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=_Rows(family))
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(model.classifier.weight, before)
    assert any(not torch.equal(p, q) for p, q in zip(model.head.parameters(), head_before))
    assert any(not torch.equal(p, q) for p, q in zip(model.backbone.parameters(), backbone_before))  # fine-tuned


def test_unsupported_architecture_names_the_supported_ones():
    gpt2 = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, pad_token_id=0))
    with pytest.raises(harness.UnsupportedArchitectureError) as info:
        harness.patch(gpt2, "sla-2")
    message = str(info.value)
    assert "gpt2" in message and "bert" in message and "convnext" in message and "native" in message
    assert harness.patch(gpt2, "native") is gpt2  # native works on anything


def test_wrong_model_kind_is_refused():
    with pytest.raises(harness.UnsupportedArchitectureError, match="ForSequenceClassification"):
        harness.patch(BertModel(TEXT_CONFIGS["bert"]()), "sla-2")


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
    assert again.backbone is model.backbone
