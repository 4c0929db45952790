"""Tiny random-init configs of every tested family (no network), shared by the tests.

Each config is the smallest that builds: 1-2 layers, widths 16-64. ``FAMILIES`` must list exactly
``harness.families.TESTED_FAMILIES`` (a test checks it), so ``run_bench.py --list`` names what is tested.
"""
import torch
import transformers as tf
from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

VOCAB, IMAGE = 100, 32
_BERTISH = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                max_position_embeddings=64)
_VITISH = dict(image_size=IMAGE, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
               num_attention_heads=2, intermediate_size=64)
_DECODER = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                num_key_value_heads=1, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)

TEXT_CONFIGS = {
    "bert": lambda: tf.BertConfig(**_BERTISH),
    "roberta": lambda: tf.RobertaConfig(**_BERTISH, pad_token_id=1),
    "xlm-roberta": lambda: tf.XLMRobertaConfig(**_BERTISH, pad_token_id=1),
    "camembert": lambda: tf.CamembertConfig(**_BERTISH, pad_token_id=1),
    "distilbert": lambda: tf.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                              max_position_embeddings=64),
    "albert": lambda: tf.AlbertConfig(**_BERTISH, embedding_size=16),
    "electra": lambda: tf.ElectraConfig(**_BERTISH, embedding_size=16),
    "deberta": lambda: tf.DebertaConfig(**_BERTISH),
    "deberta-v2": lambda: tf.DebertaV2Config(**_BERTISH),
    "modernbert": lambda: tf.ModernBertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                              num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                              pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1,
                                              sep_token_id=2),
    "mobilebert": lambda: tf.MobileBertConfig(**_BERTISH, embedding_size=16, intra_bottleneck_size=16,
                                              true_hidden_size=16, num_feedforward_networks=1),
    "squeezebert": lambda: tf.SqueezeBertConfig(**_BERTISH, embedding_size=32),
    "roformer": lambda: tf.RoFormerConfig(**_BERTISH),
    "megatron-bert": lambda: tf.MegatronBertConfig(**_BERTISH),
    "ernie": lambda: tf.ErnieConfig(**_BERTISH),
    # block-sparse attention needs sequences of several blocks; these are shorter, so it would fall back anyway
    "big_bird": lambda: tf.BigBirdConfig(**_BERTISH, attention_type="original_full"),
    "longformer": lambda: tf.LongformerConfig(**_BERTISH, attention_window=4, pad_token_id=1),
    # truncate_seq=False: pooling keeps every token (see PADDING)
    "funnel": lambda: tf.FunnelConfig(vocab_size=VOCAB, block_sizes=[1, 1], d_model=32, n_head=2, d_head=16, d_inner=64,
                                      num_decoder_layers=1, truncate_seq=False),
    # num_landmarks == segment length: exact attention. Its convolution over the values mixes padding into
    # the real positions beside it (the native model too): kernel 1 keeps every position to itself.
    "nystromformer": lambda: tf.NystromformerConfig(**_BERTISH, conv_kernel_size=1),
    "xmod": lambda: tf.XmodConfig(**_BERTISH, pad_token_id=1, languages=["en_XX"], default_language="en_XX"),
    "xlnet": lambda: tf.XLNetConfig(vocab_size=VOCAB, d_model=32, n_layer=2, n_head=2, d_inner=64, pad_token_id=0),
}
DECODER_CONFIGS = {
    "gpt2": lambda: tf.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=64, pad_token_id=0,
                                  bos_token_id=1, eos_token_id=2),
    "llama": lambda: tf.LlamaConfig(**_DECODER),
    "qwen2": lambda: tf.Qwen2Config(**_DECODER),
    "mistral": lambda: tf.MistralConfig(**_DECODER),
    "mixtral": lambda: tf.MixtralConfig(**_DECODER, num_local_experts=2, num_experts_per_tok=1),  # mixture of experts
    "phi3": lambda: tf.Phi3Config(**_DECODER),
    "gemma": lambda: tf.GemmaConfig(**_DECODER, head_dim=16),
}
SEQ2SEQ_CONFIGS = {
    "bart": lambda: tf.BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=1, decoder_layers=1,
                                  encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                                  decoder_ffn_dim=64, max_position_embeddings=64),
    "t5": lambda: tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1,
                              num_heads=2, decoder_start_token_id=0),  # as T5's checkpoints say (their pad id)
}
VISION_CONFIGS = {
    "vit": lambda: tf.ViTConfig(**_VITISH),
    "deit": lambda: tf.DeiTConfig(**_VITISH),
    "beit": lambda: tf.BeitConfig(**_VITISH),
    "dinov2": lambda: tf.Dinov2Config(**_VITISH),
    "dinov2_with_registers": lambda: tf.Dinov2WithRegistersConfig(**_VITISH, num_register_tokens=4),
    "data2vec-vision": lambda: tf.Data2VecVisionConfig(**_VITISH),
    "vit_msn": lambda: tf.ViTMSNConfig(**_VITISH),
    "swin": lambda: tf.SwinConfig(image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                  window_size=4),
    "swinv2": lambda: tf.Swinv2Config(image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                      window_size=4),
    "focalnet": lambda: tf.FocalNetConfig(image_size=IMAGE, patch_size=4, embed_dim=16, depths=[1, 1],
                                          focal_levels=[2, 2], focal_windows=[3, 3]),
    "pvt": lambda: tf.PvtConfig(image_size=IMAGE, num_encoder_blocks=2, depths=[1, 1], sequence_reduction_ratios=[2, 1],
                                hidden_sizes=[16, 32], patch_sizes=[4, 2], strides=[4, 2], num_attention_heads=[1, 2],
                                mlp_ratios=[2, 2]),
    # LeViT divides its input by 16, then by 2 per stage; 128 pixels leave a 2x2 grid
    "levit": lambda: tf.LevitConfig(image_size=128, hidden_sizes=[16, 32, 48], num_attention_heads=[1, 2, 3],
                                    depths=[1, 1, 1], key_dim=[8, 8, 8], mlp_ratio=[2, 2, 2], attention_ratio=[2, 2, 2]),
    # CvT's stage i needs depth > i (transformers indexes its drop-path rates by the stage)
    "cvt": lambda: tf.CvtConfig(embed_dim=[8, 16, 32], num_heads=[1, 1, 2], depth=[1, 2, 3], image_size=IMAGE),
    "convnext": lambda: tf.ConvNextConfig(hidden_sizes=[8, 16, 32], depths=[1, 1, 1], num_stages=3),
    "resnet": lambda: tf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"),
    "bit": lambda: tf.BitConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_groups=4),
    "poolformer": lambda: tf.PoolFormerConfig(hidden_sizes=[8, 16], depths=[1, 1], num_encoder_blocks=2,
                                              patch_sizes=[7, 3], strides=[4, 2], padding=[2, 1], pool_size=3),
    # MobileNetV2 divides its input by 32: 64 pixels leave a 2x2 grid
    "mobilenet_v2": lambda: tf.MobileNetV2Config(image_size=64, depth_multiplier=0.25, finegrained_output=False),
}
TEXT_CONFIGS = {**TEXT_CONFIGS, **DECODER_CONFIGS, **SEQ2SEQ_CONFIGS}
FAMILIES = {**TEXT_CONFIGS, **VISION_CONFIGS}
# Two image classes map to these model types (one with a distillation head): name the plain one.
ARCHITECTURES = {"deit": "DeiTForImageClassification", "levit": "LevitForImageClassification"}
# XLNet pads on the left (its summary token is the last one); the others on the right.
LEFT_PADDED = {"xlnet"}
# Encoder-decoder classifiers read the state at <eos> and want one per row: each row ends with it.
EOS_ENDED = {"bart": 2, "t5": 1}
# (length, extra padding) of the padding-invariance test, where the default (10, 5) does not fit: Funnel
# pools pairs of positions, so only an odd length padded by an even number keeps every pair as it was.
PADDING = {"funnel": (11, 4)}


def tiny_config(family: str, num_labels: int = 3):
    config = FAMILIES[family]()
    config.num_labels = num_labels
    if family in ARCHITECTURES:
        config.architectures = [ARCHITECTURES[family]]
    return config


def tiny_model(family: str, num_labels: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    auto = AutoModelForSequenceClassification if family in TEXT_CONFIGS else AutoModelForImageClassification
    return auto.from_config(tiny_config(family, num_labels)).eval()


def image_size(family: str) -> int:
    return getattr(FAMILIES[family](), "image_size", IMAGE) or IMAGE


def tiny_inputs(family: str, batch: int = 3, length: int = 10, seed: int = 0) -> dict:
    """A batch: text with uneven lengths (padded on the family's side), or random images."""
    g = torch.Generator().manual_seed(seed)
    if family in VISION_CONFIGS:
        side = image_size(family)
        return {"pixel_values": torch.randn(batch, 3, side, side, generator=g)}
    ids = torch.randint(5, VOCAB, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, length - 2 * row:] = 0
    if family in EOS_ENDED:
        ids[torch.arange(batch), mask.sum(1) - 1] = EOS_ENDED[family]
    if family in LEFT_PADDED:
        mask = mask.flip(1)
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def pad_more(inputs: dict, extra: int, left: bool = False) -> dict:
    """The same text batch with ``extra`` more padding positions, on the right (or the left)."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    pad_ids, pad_mask = ids.new_zeros(ids.shape[0], extra), mask.new_zeros(mask.shape[0], extra)
    if left:
        return {"input_ids": torch.cat([pad_ids, ids], 1), "attention_mask": torch.cat([pad_mask, mask], 1)}
    return {"input_ids": torch.cat([ids, pad_ids], 1), "attention_mask": torch.cat([mask, pad_mask], 1)}
