"""The stacked network's forward pass on a ``cuda:0`` device this machine may lack.

Under ``FakeTensorMode`` tensors carry a device without data, ``cuda:0`` included on a
CPU-only build. In torch 2.13 a CPU-only build runs only part of it there: tensor
creation, products and elementwise kernels, but slicing raises, and anything autograd
records aborts the process (it asks for a CUDA device guard). So the checks run in a
subprocess, and cover the forward pass of every activation (one run per model: a
grouped forward slices) and of LayerNorm blocks, under ``torch.no_grad()``; the
backward pass, the hand-written step and the optimisers are checked on the meta device
(test_ensemble_devices.py). On a machine with CUDA the checks run on it all the same.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from actlab.engine.activations import ACTIVATIONS

SCRIPT = """
import json
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from actlab.engine.activations import ACTIVATIONS
from actlab.ensemble import EnsembleMLP, Member
from actlab.ensemble.loss import loss_per_member

CUDA = torch.device("cuda:0")
blocks = {a: [Member(0, a), Member(1, a)] for a in [*ACTIVATIONS, "none"]}
blocks["layer norm"] = [Member(0, "gelu", norm="layer"), Member(1, "gelu", norm="layer")]
models = {name: EnsembleMLP(m, 3, 8, 2, 1) for name, m in blocks.items()}  # built on the CPU
with FakeTensorMode(allow_non_fake_inputs=True):
    for name, model in models.items():
        print(json.dumps({"start": name}), flush=True)
        model.to(CUDA)
        with torch.no_grad():
            out, pre, hidden = model.trace(torch.randn(5, 3, device=CUDA))
            loss = loss_per_member(out, torch.randn(5, 1, device=CUDA), "mse")
        tensors = [*model.params, *model.buffers(), out, *pre, *hidden, loss]
        devices = sorted({str(t.device) for t in tensors})
        print(json.dumps({"check": name, "devices": devices, "shape": list(out.shape)}), flush=True)
"""

NAMES = [*ACTIVATIONS, "none", "layer norm"]


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    started = [r["start"] for r in lines if "start" in r]
    checked = {r["check"]: r for r in lines if "check" in r}
    if done.returncode != 0:
        broke = started[-1] if started else "before the first check"
        pytest.fail(f"the fake-CUDA checks stopped at {broke!r}:\n{done.stderr[-3000:]}")
    return checked


@pytest.mark.parametrize("name", NAMES)
def test_forward_stays_on_cuda(reports: dict[str, dict], name: str) -> None:
    assert name in reports, f"{name!r} was not checked"
    assert reports[name]["devices"] == ["cuda:0"]
    assert reports[name]["shape"] == [2, 5, 1]
