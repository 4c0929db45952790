"""Tiny random-init configs of every supported family (no network), shared by the tests."""
import torch
from transformers import (AlbertConfig, BeitConfig, BertConfig, ConvNextConfig, DebertaV2Config, DeiTConfig,
                          DistilBertConfig, Dinov2Config, ElectraConfig, ModernBertConfig, ResNetConfig, RobertaConfig,
                          SwinConfig, ViTConfig, XLMRobertaConfig, AutoModelForImageClassification,
                          AutoModelForSequenceClassification)

VOCAB, IMAGE = 100, 32
_BERTISH = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                max_position_embeddings=64)
_VITISH = dict(image_size=IMAGE, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
               num_attention_heads=2, intermediate_size=64)

TEXT_CONFIGS = {
    "bert": lambda: BertConfig(**_BERTISH),
    "roberta": lambda: RobertaConfig(**_BERTISH, pad_token_id=1),
    "xlm-roberta": lambda: XLMRobertaConfig(**_BERTISH, pad_token_id=1),
    "distilbert": lambda: DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                           max_position_embeddings=64),
    "albert": lambda: AlbertConfig(**_BERTISH, embedding_size=16),
    "electra": lambda: ElectraConfig(**_BERTISH, embedding_size=16),
    "deberta-v2": lambda: DebertaV2Config(**_BERTISH),
    "modernbert": lambda: ModernBertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                           pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1,
                                           sep_token_id=2),
}
VISION_CONFIGS = {
    "vit": lambda: ViTConfig(**_VITISH),
    "deit": lambda: DeiTConfig(**_VITISH),
    "beit": lambda: BeitConfig(**_VITISH),
    "dinov2": lambda: Dinov2Config(**_VITISH),
    "swin": lambda: SwinConfig(image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                               window_size=4),
    "convnext": lambda: ConvNextConfig(hidden_sizes=[8, 16, 32], depths=[1, 1, 1], num_stages=3),
    "resnet": lambda: ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"),
}
FAMILIES = {**TEXT_CONFIGS, **VISION_CONFIGS}


def tiny_model(family: str, num_labels: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    config = FAMILIES[family]()
    config.num_labels = num_labels
    if family == "deit":  # two classes map to DeiT; say which
        config.architectures = ["DeiTForImageClassification"]
    auto = AutoModelForSequenceClassification if family in TEXT_CONFIGS else AutoModelForImageClassification
    return auto.from_config(config).eval()


def tiny_inputs(family: str, batch: int = 3, length: int = 10, seed: int = 0) -> dict:
    """A batch: text with uneven lengths (right padding), or random images."""
    g = torch.Generator().manual_seed(seed)
    if family in VISION_CONFIGS:
        return {"pixel_values": torch.randn(batch, 3, IMAGE, IMAGE, generator=g)}
    ids = torch.randint(5, VOCAB, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, length - 2 * row:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def pad_more(inputs: dict, extra: int) -> dict:
    """The same text batch with ``extra`` more padding positions appended on the right."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    return {"input_ids": torch.cat([ids, ids.new_zeros(ids.shape[0], extra)], 1),
            "attention_mask": torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], 1)}
