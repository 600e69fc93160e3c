"""The benchmarks refuse a device this machine lacks: one line, exit status 2, nothing run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("script", ["bench_ensemble.py", "bench_step.py"])
@pytest.mark.parametrize("name", ["cuda", "gpu"])
def test_benchmark_refuses_a_missing_device(script: str, name: str) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no CUDA device, GPU machine or not
    env.pop("ACTLAB_DEVICE", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--device", name],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{script}: --device: ")
    assert f"'{name}'" in lines[0] and "available here: cpu" in lines[0]
