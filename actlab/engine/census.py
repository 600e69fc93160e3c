"""A census of the activations any network applies: where, which, how often, on how many
numbers (chapter 7).

:func:`census` runs a network once on one input and lists every activation it applies, by
the module path where it happens. It sees activations in two ways:

* **Activation modules** (forward hooks). A module counts as an activation module when
  (1) its class is one of PyTorch's ``torch.nn`` activation classes (the classes of
  ``torch.nn.modules.activation``, subclasses included; ``MultiheadAttention``, which lives
  there too, is not one); or (2) its class is defined in a module named
  ``transformers.activations`` (the Hugging Face activations behind ``ACT2FN``); or (3) its
  class name ends in one of :data:`ACTIVATION_SUFFIXES` ("Activation", "GELU", "SiLU",
  ...), the naming convention of custom activation classes. The module's output is the
  activation's output, so its number of elements is counted once; any call made inside it
  (``NewGELUActivation`` calls ``torch.tanh``; an activation module inside another) is not
  counted again. A softmax module (``nn.Softmax``) is recorded as ``"softmax"``; an identity
  "activation" (``LinearActivation``) is not recorded.
* **Functional calls** made outside activation modules (a
  :class:`torch.overrides.TorchFunctionMode`): ``F.relu``, ``F.gelu``, ``torch.sigmoid``,
  ``x.tanh()`` and the others of :data:`FUNCTIONS`, attributed to the innermost module
  being run. Softmax (``F.softmax``, ``x.softmax()``, and the softmax inside
  ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``) is recorded as
  ``"softmax"``: it normalises a whole vector, it is not an elementwise activation.

Kinds are the registry's labels (:data:`actlab.engine.activations.LABELS`: "ReLU", "GELU",
"GELU (tanh)", "SiLU", "sigmoid", "tanh", ...) where the registry has the activation, GELU's
exact and tanh forms told apart; other activations get a readable name ("ReLU6",
"Hardswish") or, for an unknown activation class, its class name.

Limits: a Python-level torch function that the mode passes on (``F.layer_norm``,
``F.multi_head_attention_forward``) runs with the mode off, so an activation it calls inside
is not seen (``nn.MultiheadAttention``'s softmax is therefore counted from its inputs'
shapes); a compiled model (``torch.compile``) is not walked.

Build the network under ``with torch.device("meta"):`` and pass a meta input: shapes flow
through the forward but no number is stored or computed, so a 7-billion-parameter model
costs neither memory nor time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from actlab.engine.activations import LABELS

#: The kind recorded for softmax, kept apart from the elementwise activations.
SOFTMAX = "softmax"

#: Class-name endings that make a module an activation module (rule 3 above).
ACTIVATION_SUFFIXES: tuple[str, ...] = (
    "Activation", "GELU", "GeLU", "SiLU", "Swish", "ReLU", "Mish",
)  # fmt: skip

_TORCH_ACTIVATION_MODULE = "torch.nn.modules.activation"
_NOT_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.MultiheadAttention,)

#: Kinds of PyTorch's activation modules (nn.GELU is decided by its ``approximate``).
_TORCH_KINDS: dict[type[nn.Module], str] = {
    nn.ReLU: LABELS["relu"], nn.LeakyReLU: LABELS["leaky_relu"], nn.ELU: LABELS["elu"],
    nn.SiLU: LABELS["silu"], nn.Sigmoid: LABELS["sigmoid"], nn.Tanh: LABELS["tanh"],
    nn.Softplus: LABELS["softplus"], nn.ReLU6: "ReLU6", nn.Hardswish: "Hardswish",
    nn.Hardsigmoid: "Hardsigmoid", nn.Mish: "Mish", nn.Softmax: SOFTMAX,
    nn.LogSoftmax: SOFTMAX, nn.Softmin: SOFTMAX, nn.Softmax2d: SOFTMAX,
}  # fmt: skip

#: Kinds of activation classes known by name (Hugging Face's ``transformers.activations``);
#: ``None`` marks an identity, which is not recorded. The "new", "fast", "accurate" and
#: "pytorch tanh" GELUs all compute the tanh approximation.
NAMED_KINDS: dict[str, str | None] = {
    "GELUActivation": LABELS["gelu"], "ClippedGELUActivation": LABELS["gelu"],
    "NewGELUActivation": LABELS["gelu_tanh"], "GELUTanh": LABELS["gelu_tanh"],
    "PytorchGELUTanh": LABELS["gelu_tanh"], "FastGELUActivation": LABELS["gelu_tanh"],
    "AccurateGELUActivation": LABELS["gelu_tanh"], "QuickGELUActivation": "GELU (sigmoid)",
    "SiLUActivation": LABELS["silu"], "MishActivation": "Mish",
    "ReLUSquaredActivation": "ReLU²", "LinearActivation": None,
}  # fmt: skip


def _gelu_kind(approximate: object) -> str:
    return LABELS["gelu_tanh"] if approximate == "tanh" else LABELS["gelu"]


def _fixed(kind: str) -> Callable[..., str]:
    return lambda *args, **kwargs: kind


def _gelu_call(*args: Any, **kwargs: Any) -> str:
    return _gelu_kind(kwargs.get("approximate", args[1] if len(args) > 1 else "none"))


def _function_table() -> dict[Any, tuple[str, Callable[..., str]]]:
    """Each recognised function object -> (its name in records, its kind from the call)."""
    table: dict[Any, tuple[str, Callable[..., str]]] = {}

    def add(kind: str | Callable[..., str], *named: tuple[Any, str]) -> None:
        for fn, name in named:
            if fn is not None and fn not in table:
                table[fn] = (name, kind if callable(kind) else _fixed(kind))

    T = torch.Tensor
    for op, kind in [
        ("relu", LABELS["relu"]), ("sigmoid", LABELS["sigmoid"]), ("tanh", LABELS["tanh"]),
    ]:  # fmt: skip
        for suffix in ("", "_"):
            add(
                kind,
                (getattr(torch, op + suffix, None), f"torch.{op}{suffix}"),
                (getattr(T, op + suffix, None), f"Tensor.{op}{suffix}"),
                (getattr(F, op + suffix, None), f"F.{op}{suffix}"),
            )
    for op, kind in [
        ("relu6", "ReLU6"), ("silu", LABELS["silu"]), ("hardswish", "Hardswish"),
        ("hardsigmoid", "Hardsigmoid"), ("mish", "Mish"), ("elu", LABELS["elu"]),
        ("elu_", LABELS["elu"]), ("leaky_relu", LABELS["leaky_relu"]),
        ("leaky_relu_", LABELS["leaky_relu"]), ("softplus", LABELS["softplus"]),
    ]:  # fmt: skip
        add(kind, (getattr(F, op, None), f"F.{op}"))
    add(_gelu_call, (F.gelu, "F.gelu"))
    for op in ("softmax", "log_softmax"):
        add(SOFTMAX, (getattr(torch, op), f"torch.{op}"), (getattr(T, op), f"Tensor.{op}"))
        add(SOFTMAX, (getattr(F, op), f"F.{op}"))
    return table


#: The functions the census recognises outside activation modules: function -> (name, kind).
FUNCTIONS = _function_table()
_ATTENTION = F.scaled_dot_product_attention


def activation_kind(module: nn.Module) -> str | None:
    """The kind of activation ``module`` applies, or None when it is not an activation
    module (the rule is in the module's docstring); an identity activation gives ``""``."""
    cls = type(module)
    if isinstance(module, _NOT_ACTIVATIONS):
        return None
    if isinstance(module, nn.GELU):
        return _gelu_kind(module.approximate)
    for base in cls.__mro__:
        if base in _TORCH_KINDS:
            return _TORCH_KINDS[base]
    if cls.__name__ in NAMED_KINDS:
        return NAMED_KINDS[cls.__name__] or ""
    torch_class = any(b.__module__ == _TORCH_ACTIVATION_MODULE for b in cls.__mro__[:-2])
    if (
        torch_class
        or cls.__module__ == "transformers.activations"
        or cls.__name__.endswith(ACTIVATION_SUFFIXES)
    ):
        return cls.__name__
    return None


def path_pattern(path: str) -> str:
    """A module path with every layer index replaced by ``*`` (``layer.3.mlp`` -> ``layer.*.mlp``)."""
    return re.sub(r"(^|\.)\d+(?=\.|$)", r"\1*", path)


@dataclass(frozen=True)
class Record:
    """The applications of one kind of activation at one place of the network.

    Attributes:
        path: module path pattern, layer indices as ``*`` (``""`` is the network itself).
        kind: the activation's label (``"GELU"``, ``"ReLU"``) or ``"softmax"``.
        via: the activation module's class name, or the function called (``"F.softmax"``).
        calls: how many times it was applied (once per layer for a ``*`` path).
        elements: how many numbers it was applied to, over all calls.
    """

    path: str
    kind: str
    via: str
    calls: int
    elements: int


@dataclass(frozen=True)
class Tally:
    """One kind's total over a network: calls and elements."""

    calls: int
    elements: int


@dataclass(frozen=True)
class Census:
    """Every activation one forward pass applied, by place (:func:`census`)."""

    records: tuple[Record, ...]

    def summary(self) -> dict[str, Tally]:
        """Calls and elements per kind, the kind with most elements first (softmax included:
        filter on :data:`SOFTMAX` to set it apart)."""
        totals: dict[str, list[int]] = {}
        for r in self.records:
            t = totals.setdefault(r.kind, [0, 0])
            t[0] += r.calls
            t[1] += r.elements
        order = sorted(totals, key=lambda k: -totals[k][1])
        return {k: Tally(*totals[k]) for k in order}

    def elements(self, kind: str | None = None) -> int:
        """Elements of ``kind``, or of every elementwise activation (softmax left out)."""
        if kind is None:
            return sum(r.elements for r in self.records if r.kind != SOFTMAX)
        return sum(r.elements for r in self.records if r.kind == kind)


def _numel(out: Any) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel()
    if isinstance(out, list | tuple) and out and isinstance(out[0], torch.Tensor):
        return out[0].numel()
    return 0


class _Recorder(TorchFunctionMode):
    """Keeps the stack of module paths being run and tallies what is applied where."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = [""]
        self.inside = 0  # depth of activation modules being run
        self.tally: dict[tuple[str, str, str], list[int]] = {}

    def add(self, path: str, kind: str, via: str, elements: int) -> None:
        t = self.tally.setdefault((path_pattern(path), kind, via), [0, 0])
        t[0] += 1
        t[1] += elements

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.inside:
            return out
        known = FUNCTIONS.get(func)
        if known is not None:
            self.add(self.stack[-1], known[1](*args, **kwargs), known[0], _numel(out))
        elif func is _ATTENTION:
            q, k = (kwargs.get(n, a) for n, a in zip(("query", "key"), args[:2], strict=False))
            rows = q.numel() // q.shape[-1]
            self.add(self.stack[-1], SOFTMAX, "F.scaled_dot_product_attention", rows * k.shape[-2])
        return out


def _mha_softmax_elements(module: nn.MultiheadAttention, args: tuple[Any, ...]) -> int:
    """Attention weights of ``nn.MultiheadAttention``: batch x heads x queries x keys."""
    q, k = args[0], args[1]
    if q.dim() == 2:  # unbatched (L, E)
        return module.num_heads * q.shape[0] * k.shape[0]
    lq, lk, batch = (1, 1, 0) if module.batch_first else (0, 0, 1)
    return q.shape[batch] * module.num_heads * q.shape[lq] * k.shape[lk]


def census(model: nn.Module, *args: Any, **kwargs: Any) -> Census:
    """Run ``model(*args, **kwargs)`` once (without gradients) and record every activation
    it applies.

    Args:
        model: any network; build it on the meta device to count without computing.
        *args: the forward's inputs (on the model's device).
        **kwargs: the forward's keyword inputs.

    Returns:
        A :class:`Census`: one :class:`Record` per (path pattern, kind, module class or
        function), in the order first met; ``summary()`` gives the totals per kind.
    """
    rec = _Recorder()
    handles = []

    def enter(path: str, kind: str | None) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            rec.stack.append(path)
            if kind is not None:
                rec.inside += 1
            elif isinstance(module, nn.MultiheadAttention) and not rec.inside:
                rec.add(
                    path, SOFTMAX, "nn.MultiheadAttention", _mha_softmax_elements(module, inputs)
                )

        return hook

    def leave(path: str, kind: str | None) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...], out: Any) -> None:
            rec.stack.pop()
            if kind is not None:
                rec.inside -= 1
                if kind and not rec.inside:
                    rec.add(path, kind, type(module).__name__, _numel(out))

        return hook

    try:
        for path, module in model.named_modules():
            kind = activation_kind(module)
            handles.append(module.register_forward_pre_hook(enter(path, kind)))
            handles.append(module.register_forward_hook(leave(path, kind), always_call=True))
        with torch.no_grad(), rec:
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return Census(tuple(Record(p, k, v, c, e) for (p, k, v), (c, e) in rec.tally.items()))
