"""Chapter 7's census of real architectures, checked against counts done by hand from the
architectures' published shapes."""

from __future__ import annotations

import pytest
import torch
import transformers

from actlab.chapters.ch07_scale.census import (
    ARCHITECTURES,
    build,
    census_records,
    census_table,
    run_census,
    where,
)
from actlab.engine.census import SOFTMAX, census

BY_NAME = {a.name: a for a in ARCHITECTURES}


def test_bert_base_census_matches_the_count_by_hand() -> None:
    # BERT-base: 12 layers, width 768, feed-forward 3072, 12 heads; 128 tokens.
    layers, tokens, width, ff, heads = 12, 128, 768, 3072, 12
    result, params = run_census(("BERT-base",))["BERT-base"]
    summary = result.summary()
    # GELU once per layer on the feed-forward's hidden layer: 12 x 128 x 3072
    assert (summary["GELU"].calls, summary["GELU"].elements) == (12, 12 * 128 * 3072)
    assert summary["GELU"].elements == layers * tokens * ff == 4_718_592
    # tanh once, in the pooler, on the first token's 768 features
    assert (summary["tanh"].calls, summary["tanh"].elements) == (1, width)
    # softmax: per layer, per head, a 128 x 128 table of attention weights
    assert summary[SOFTMAX].elements == layers * heads * tokens * tokens == 12 * 12 * 128 * 128
    assert set(summary) == {"GELU", "tanh", SOFTMAX}
    assert round(params / 1e6) == 109  # BERT-base without its task head


def test_resnet50_census_matches_the_count_by_hand() -> None:
    result, params = run_census(("ResNet-50",))["ResNet-50"]
    assert set(result.summary()) == {"ReLU"}
    # stem: a 7x7 stride-2 convolution, 64 channels at 112 x 112, then ReLU
    stem = 64 * 112 * 112
    # bottleneck blocks per stage, their inner width, output width and spatial size
    stages = [(3, 64, 256, 56), (4, 128, 512, 28), (6, 256, 1024, 14), (3, 512, 2048, 7)]
    inner = after_add = 0
    for i, (blocks, mid, out, side) in enumerate(stages):
        # the first block of stages 2-4 strides its 3x3 convolution, so its first ReLU
        # (after the 1x1 convolution) is still at the previous stage's size
        before = 2 * side if i > 0 else side
        inner += mid * before * before + mid * side * side  # ReLU after 1x1 and after 3x3
        inner += (blocks - 1) * 2 * mid * side * side
        after_add += blocks * out * side * side  # ReLU after the residual addition
    records = {r.path: (r.calls, r.elements) for r in result.records}
    assert records["embedder.embedder.activation"] == (1, stem)
    assert records["encoder.stages.*.layers.*.layer.*.activation"] == (2 * 16, inner)
    assert records["encoder.stages.*.layers.*.activation"] == (16, after_add)
    assert result.elements() == stem + inner + after_add
    assert round(params / 1e6, 1) == 23.5  # 25.6 M with the 2048 x 1000 classifier


def test_models_are_built_on_the_meta_device_at_their_named_sizes() -> None:
    model, args, kwargs = build(BY_NAME["LLaMA-2-7B"])
    assert all(p.is_meta for p in model.parameters())
    assert args[0].shape == (1, 128) and args[0].dtype == torch.long
    billions = sum(p.numel() for p in model.parameters()) / 1e9
    assert 6.5 < billions < 6.7  # 6.74 B with the untied 4096 x 32000 output layer
    model, args, _ = build(BY_NAME["EfficientNet-B0"])
    assert args[0].shape == (1, 3, 224, 224)
    assert 3.9e6 < sum(p.numel() for p in model.parameters()) < 4.1e6  # B0, not B7


def test_attention_counts_the_same_in_its_eager_and_fused_forms() -> None:
    counts = {}
    for attention in ("eager", "sdpa"):
        config = transformers.BertConfig(num_hidden_layers=2, attn_implementation=attention)
        with torch.device("meta"):
            model, ids = transformers.BertModel(config), torch.zeros(1, 128, dtype=torch.long)
        result = census(model, ids)
        counts[attention] = {k: (t.calls, t.elements) for k, t in result.summary().items()}
        via = {r.via for r in result.records if r.kind == SOFTMAX}
        assert via == {"F.softmax" if attention == "eager" else "F.scaled_dot_product_attention"}
    assert counts["eager"] == counts["sdpa"]
    assert counts["eager"][SOFTMAX] == (2, 2 * 12 * 128 * 128)


def test_where_names_the_places_in_readers_words() -> None:
    bert, llama, effnet = BY_NAME["BERT-base"], BY_NAME["LLaMA-2-7B"], BY_NAME["EfficientNet-B0"]
    assert where(bert, "encoder.layer.*.intermediate.intermediate_act_fn", "GELU") == "feed-forward"
    assert where(bert, "pooler.activation", "tanh") == "pooler"
    assert where(bert, "encoder.layer.*.attention.self", SOFTMAX) == "attention softmax"
    assert where(llama, "layers.*.mlp.act_fn", "SiLU") == "gated feed-forward (SwiGLU)"
    se = "encoder.blocks.*.squeeze_excite.act_expand"
    assert where(effnet, se, "sigmoid") == "squeeze-excite gate"
    assert where(effnet, "embeddings.activation", "SiLU") == "stem"


def test_the_tables_have_readers_columns_and_the_expected_activations() -> None:
    table = census_table()
    assert list(table["Architecture"]) == [a.name for a in ARCHITECTURES]
    assert all(c[0].isupper() and "_" not in c for c in table.columns)
    main = dict(zip(table["Architecture"], table["Main activation"], strict=True))
    assert main["ResNet-50"] == "ReLU" and main["MobileNetV2"] == "ReLU6"
    assert main["EfficientNet-B0"] == "SiLU" and main["ConvNeXt-T"] == "GELU"
    assert main["GPT-2"] == "GELU (tanh)" and main["BERT-base"] == "GELU"
    assert main["OPT-125M"] == main["T5-base"] == "ReLU"  # language models on ReLU
    assert main["T5 v1.1-base"] == main["Gemma-7B"] == "GELU (tanh)"
    assert main["LLaMA-2-7B"] == main["Mistral-7B"] == "SiLU"
    convs = table[table["Architecture"].isin(["ResNet-50", "MobileNetV2", "EfficientNet-B0"])]
    assert (convs["Softmax elements"] == 0).all()
    long = census_records()
    assert set(long.columns) >= {"Architecture", "Where", "Activation", "Calls", "Elements"}
    effnet = long[long["Architecture"] == "EfficientNet-B0"]
    assert set(effnet["Where"]) == {"stem", "blocks", "squeeze-excite", "squeeze-excite gate"}


@pytest.mark.parametrize("name", ["GPT-2", "T5 v1.1-base"])
def test_each_architecture_applies_its_feed_forward_activation_once_per_layer(name: str) -> None:
    result, _ = run_census((name,))[name]
    ff = [r for r in result.records if r.kind != SOFTMAX]
    assert sum(r.calls for r in ff) == (12 if name == "GPT-2" else 24)
    if name == "GPT-2":  # 12 layers x 128 tokens x 3072 (4 x 768)
        assert result.elements() == 12 * 128 * 3072
    else:  # T5 v1.1-base's GeGLU: 12 encoder + 12 decoder layers x 128 tokens x 2048
        assert result.elements() == 24 * 128 * 2048
