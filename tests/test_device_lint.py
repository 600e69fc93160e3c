"""Tensors reach NumPy and Python numbers only from the host.

``.numpy()`` fails on a tensor on a GPU, and ``.item()`` and ``.tolist()`` on one wait for
the device and copy; in the course library each is called on an expression that is
visibly on the CPU (``.cpu()`` or ``.to("cpu")`` before it, through ``.detach()`` and the
like), or it is listed below with the reason the tensor is on the CPU anyway. A new call
that is neither fails this test: bring the tensor home first, or list it with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

CONVERSIONS = {"numpy", "item", "tolist"}
# Methods that move a tensor to another device (``.to`` does unless it is given a dtype).
MOVES = {"cuda", "mps", "to"}

# (module, function, call) -> why the tensor is on the CPU there.
ALLOWED = {
    ("actlab/ensemble/probes.py", "hidden_variances",
     "torch.stack([h.flatten(1).var(dim=1) for h in hidden], dim=1).numpy()"):
        "the model is built on the CPU from CPU inputs: the function takes no device",
    ("actlab/chapters/ch02_derivatives.py", "autograd_derivative", "g.numpy()"):
        "the gradient of a tensor made by torch.tensor from a NumPy array, on the CPU",
    ("actlab/chapters/ch02_derivatives.py", "three_way_check",
     "act.torch_dfn(torch.from_numpy(z)).numpy()"):
        "torch.from_numpy gives a CPU tensor",
    **{("actlab/chapters/ch03_backprop.py", "chain_autograd", call):
        "scalars and their gradients made by torch.tensor, on the CPU"
       for call in ("torch.autograd.grad(act(leaf), leaf)[0].item()", "t.item()", "loss.item()",
                    "t.grad.item()", "wt.grad.numpy()", "bt.grad.numpy()", "xt.grad.item()")},
    # Not provably on the CPU: these read one number per call from a model that may be on
    # a GPU (.item() copies it, correct on every device); their chapters' device work
    # brings them home explicitly.
    ("actlab/chapters/ch01_linear_collapse.py", "train_classifier", "loss.item()"):
        "one loss per epoch, read from the training device (a copy, correct everywhere)",
    ("actlab/chapters/ch03_backprop.py", "layer_grad_norms",
     "layer.weight.grad.detach().norm().item()"):
        "one norm per layer, read from the model's device (a copy, correct everywhere)",
}  # fmt: skip


def _dtype_only(call: ast.Call) -> bool:
    """Whether the ``.to(...)`` call ``call`` visibly changes only the dtype (``torch.float64``,
    ``dtype=...``), so that the tensor stays where it is."""
    args = [*call.args, *(k.value for k in call.keywords if k.arg != "dtype")]
    return all(
        isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "torch"
        and a.attr != "device"
        for a in args
    )  # fmt: skip


def _is_cpu_copy(call: ast.Call) -> bool:
    """``.cpu()``, ``.to("cpu")``, ``.to(device="cpu")`` or ``.to(torch.device("cpu"))``."""
    if call.func.attr == "cpu":
        return True
    if call.func.attr != "to":
        return False
    target = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "device")]
    return any(
        (isinstance(t, ast.Constant) and t.value == "cpu")
        or (isinstance(t, ast.Call) and ast.unparse(t) == "torch.device('cpu')")
        for t in target
    )


def _on_cpu(node: ast.expr) -> bool:
    """Whether ``node`` is visibly a CPU tensor: a chain of method calls (and ``.T``) with a
    copy to the CPU in it and no move to another device after that copy."""
    while True:
        if isinstance(node, ast.Attribute) and node.attr in ("T", "mT"):
            node = node.value
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            return False
        if _is_cpu_copy(node):
            return True
        if node.func.attr in MOVES and not (node.func.attr == "to" and _dtype_only(node)):
            return False
        node = node.func.value


def conversions() -> list[tuple[str, str, str, int]]:
    """``(module, function, call, line)`` of every conversion in actlab/ not visibly on the CPU."""
    found = []
    for path in sorted((ROOT / "actlab").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), rel)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CONVERSIONS
                and not node.args
            ):
                continue
            if _on_cpu(node.func.value):
                continue
            scope, up = [], parents.get(node)
            while up is not None:
                if isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    scope.append(up.name)
                up = parents.get(up)
            found.append(
                (rel, ".".join(reversed(scope)) or "<module>", ast.unparse(node), node.lineno)
            )
    return found


def test_conversions_to_numpy_and_numbers_come_from_the_host() -> None:
    new = [f"{m}:{line} in {f}: {c}" for m, f, c, line in conversions() if (m, f, c) not in ALLOWED]
    assert not new, (
        "a tensor converted where it may be on a GPU; add .cpu() before it, or list it in "
        "ALLOWED with the reason it is on the CPU:\n" + "\n".join(new)
    )


def test_the_allowed_list_names_only_calls_that_exist() -> None:
    present = {(m, f, c) for m, f, c, _ in conversions()}
    stale = [key for key in ALLOWED if key not in present]
    assert not stale, f"gone from the code, so to be taken off ALLOWED: {stale}"


def test_the_scan_flags_what_it_should(tmp_path: Path) -> None:
    flagged = {
        "x.numpy()", "x.detach().numpy()", "model(x).sum().item()", "x.to(device).tolist()",
        "x.cpu().to(device).numpy()", "x.cpu().cuda().item()", "(x.cpu() + y).numpy()",
        "x.to(torch.device('cuda')).cpu_like().numpy()", "x.to(y).tolist()",
    }  # fmt: skip
    clean = {"x.cpu().numpy()", "x.detach().cpu().numpy()", "x.cpu().detach().numpy()",
             "x.to('cpu').tolist()", "x.to(device='cpu').item()", "x.T.cpu().T.numpy()",
             "x.cuda().cpu().float().mean(dim=1).item()", "x.cpu().to(torch.float64).numpy()",
             "x.to(torch.device('cpu')).numpy()", "x.cpu().to(dtype=torch.int64).tolist()"}  # fmt: skip
    for text in flagged | clean:
        call = ast.parse(text, mode="eval").body
        assert _on_cpu(call.func.value) == (text in clean), text
