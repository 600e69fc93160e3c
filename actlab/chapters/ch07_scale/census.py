"""Chapter 7's census: every activation that real architectures apply, from their model
definitions in Hugging Face ``transformers``, built without weights.

Each architecture is built from its ``transformers`` configuration class on the meta device
(shapes, no numbers: no download, no memory, no compute, even for a 7-billion-parameter
model) and run once by :func:`actlab.engine.census.census` on one input: an image of
1 x 3 x 224 x 224 for vision, 128 token ids for language (and 128 decoder ids for the
encoder-decoder T5). Each configuration is set to the named model's sizes where the class's
defaults are another model (EfficientNet's are B7's, T5's are T5-small's); the parameter
count in the table checks it.

MobileNetV3 is not in ``transformers`` (its MobileNet classes are V1 and V2), so MobileNetV2
stands for the MobileNets; and torchvision, which has it, cannot be installed beside the
course's CPU build of PyTorch (DESIGN.md). Attention runs in its "eager" form, an explicit
softmax (:data:`ATTENTION`); ``transformers``' default, ``scaled_dot_product_attention``,
applies the same softmax inside one call, and the census counts it the same. The
models are the bare networks without their task heads (``ViTModel`` keeps its pooler, a tanh
layer on the class token, as ``BertModel`` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pandas as pd
import torch

from actlab.engine.census import SOFTMAX, Census, census
from actlab.presentation.prose import listing

#: How attention runs: an explicit softmax, faster on the meta device than
#: ``scaled_dot_product_attention`` and counted the same (the tests compare them).
ATTENTION = "eager"
IMAGE = (1, 3, 224, 224)  #: the vision input: one RGB image at 224 x 224
TOKENS = 128  #: the language input: this many token ids


@dataclass(frozen=True)
class Architecture:
    """One model definition of the census.

    Attributes:
        name: the model's name for readers ("BERT-base").
        family: ``"vision"`` or ``"language"``.
        model: the ``transformers`` model class (without its task head).
        config: the configuration class and the settings that make it the named model.
        feed_forward: what the feed-forward block is called in the table ("feed-forward",
            or its gated form: "gated feed-forward (SwiGLU)").
    """

    name: str
    family: str
    model: str
    config: tuple[str, dict[str, Any]]
    feed_forward: str = "feed-forward"


_T5_BASE = {"d_model": 768, "num_layers": 12, "num_decoder_layers": 12, "num_heads": 12}

#: The census's architectures, vision first.
ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("ResNet-50", "vision", "ResNetModel", ("ResNetConfig", {})),
    Architecture("MobileNetV2", "vision", "MobileNetV2Model", ("MobileNetV2Config", {})),
    Architecture(
        "EfficientNet-B0", "vision", "EfficientNetModel",
        ("EfficientNetConfig", {"width_coefficient": 1.0, "depth_coefficient": 1.0,
                                "image_size": 224, "hidden_dim": 1280}),
    ),
    Architecture("ConvNeXt-T", "vision", "ConvNextModel", ("ConvNextConfig", {})),
    Architecture("ViT-B/16", "vision", "ViTModel", ("ViTConfig", {})),
    Architecture("Swin-T", "vision", "SwinModel", ("SwinConfig", {})),
    Architecture("GPT-2", "language", "GPT2Model", ("GPT2Config", {})),
    Architecture("BERT-base", "language", "BertModel", ("BertConfig", {})),
    Architecture(
        "LLaMA-2-7B", "language", "LlamaModel", ("LlamaConfig", {}),
        "gated feed-forward (SwiGLU)",
    ),
    Architecture("OPT-125M", "language", "OPTModel", ("OPTConfig", {})),
    Architecture(
        "T5-base", "language", "T5Model",
        ("T5Config", {**_T5_BASE, "d_ff": 3072, "feed_forward_proj": "relu"}),
    ),
    Architecture(
        "T5 v1.1-base", "language", "T5Model",
        ("T5Config", {**_T5_BASE, "d_ff": 2048, "feed_forward_proj": "gated-gelu"}),
        "gated feed-forward (GeGLU)",
    ),
    Architecture(
        "Gemma-7B", "language", "GemmaModel", ("GemmaConfig", {}),
        "gated feed-forward (GeGLU)",
    ),
    Architecture(
        "Mistral-7B", "language", "MistralModel", ("MistralConfig", {}),
        "gated feed-forward (SwiGLU)",
    ),
)  # fmt: skip

_FEED_FORWARD = re.compile(r"mlp|intermediate|activation_fn|DenseReluDense|feed_forward|ffn")
_STEM = re.compile(r"^(embedder|embeddings|conv_stem)\b")


def where(arch: Architecture, path: str, kind: str) -> str:
    """Where in ``arch`` an activation at module ``path`` sits, in readers' words
    ("feed-forward", "stem", "blocks", "squeeze-excite gate", "attention softmax", "pooler")."""
    if kind == SOFTMAX:
        return "attention softmax"
    if "pooler" in path:
        return "pooler"
    if "squeeze_excite" in path:
        return "squeeze-excite gate" if kind == "sigmoid" else "squeeze-excite"
    if _FEED_FORWARD.search(path):
        return arch.feed_forward
    if _STEM.match(path):
        return "stem"
    return "blocks"


def build(arch: Architecture) -> tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    """``arch``'s model on the meta device, with its input (positional and keyword)."""
    import transformers

    config_class, settings = arch.config
    config = getattr(transformers, config_class)(attn_implementation=ATTENTION, **settings)
    with torch.device("meta"):
        model = getattr(transformers, arch.model)(config)
        if arch.family == "vision":
            return model, (torch.zeros(IMAGE),), {}
        ids = torch.zeros(1, TOKENS, dtype=torch.long)
        return model, (ids,), ({"decoder_input_ids": ids} if arch.model == "T5Model" else {})


@lru_cache(maxsize=4)
def run_census(names: tuple[str, ...] | None = None) -> dict[str, tuple[Census, int]]:
    """Each architecture's census and parameter count (all of :data:`ARCHITECTURES`, or
    those called ``names``); computed once per session."""
    out = {}
    for arch in ARCHITECTURES:
        if names is None or arch.name in names:
            model, args, kwargs = build(arch)
            model.eval()
            out[arch.name] = (
                census(model, *args, **kwargs),
                sum(p.numel() for p in model.parameters()),
            )
    return out


def _archs(names: tuple[str, ...] | None) -> list[Architecture]:
    return [a for a in ARCHITECTURES if names is None or a.name in names]


def census_records(names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The long table: one row per architecture, place and activation.

    Columns: "Architecture", "Family", "Where", "Activation" (a registry label, or
    "softmax"), "Module path" (layer indices as ``*``), "Calls", "Elements".
    """
    results = run_census(names)
    rows = []
    for arch in _archs(names):
        for r in results[arch.name][0].records:
            rows.append(
                {
                    "Architecture": arch.name,
                    "Family": arch.family,
                    "Where": where(arch, r.path, r.kind),
                    "Activation": r.kind,
                    "Module path": r.path or "(the model)",
                    "Calls": r.calls,
                    "Elements": r.elements,
                }
            )
    return pd.DataFrame(rows)


def _percent(share: float) -> str:
    return "100 %" if share == 1 else f"{100 * share:.3g} %"


def census_table(names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per architecture: the activations it applies with their share of all
    elementwise activation elements, where they sit, and the totals.

    Columns: "Architecture", "Family", "Main activation" (the one applied to most elements),
    "Activations" ("SiLU 99.7 %, sigmoid 0.26 %"), "Where" (each activation's places),
    "Activation elements" (softmax left out), "Softmax elements" (attention) and
    "Parameters (millions)" (the model without its task head, to check the size against the named model).
    """
    long = census_records(names)
    results = run_census(names)
    rows = []
    for arch in _archs(names):
        recs = long[long["Architecture"] == arch.name]
        act = recs[recs["Activation"] != SOFTMAX]
        per_kind = act.groupby("Activation", sort=False)["Elements"].sum()
        per_kind = per_kind.sort_values(ascending=False, kind="stable")
        total = int(per_kind.sum())
        places = {
            k: list(dict.fromkeys(act.loc[act["Activation"] == k, "Where"])) for k in per_kind.index
        }
        if len(per_kind) == 1:
            place = listing(places[per_kind.index[0]])
        else:
            place = "; ".join(f"{k}: {listing(v)}" for k, v in places.items())
        rows.append(
            {
                "Architecture": arch.name,
                "Family": arch.family,
                "Main activation": per_kind.index[0] if total else "none",
                "Activations": ", ".join(f"{k} {_percent(v / total)}" for k, v in per_kind.items()),
                "Where": place,
                "Activation elements": total,
                "Softmax elements": int(recs.loc[recs["Activation"] == SOFTMAX, "Elements"].sum()),
                "Parameters (millions)": results[arch.name][1] / 1e6,
            }
        )
    return pd.DataFrame(rows)


def family_summary(table: pd.DataFrame) -> dict[str, dict[str, list[str]]]:
    """For each family, the architectures grouped by their main activation (from
    :func:`census_table`): ``{"vision": {"ReLU": ["ResNet-50"], ...}, ...}``."""
    out: dict[str, dict[str, list[str]]] = {}
    for _, row in table.iterrows():
        out.setdefault(row["Family"], {}).setdefault(row["Main activation"], []).append(
            row["Architecture"]
        )
    return out
