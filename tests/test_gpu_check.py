"""scripts/gpu_check.py: what it compares, and that a machine without a GPU is told so."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, tool_env

SCRIPT = ROOT / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_without_a_gpu_it_says_so_writes_nothing_and_succeeds(tmp_path: Path) -> None:
    env = dict(tool_env(), CUDA_VISIBLE_DEVICES="")
    report = tmp_path / "GPU_CHECK.md"
    done = subprocess.run([sys.executable, str(SCRIPT), "--report", str(report)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no CUDA GPU present: nothing to check"
    assert not report.exists()


def test_make_target_runs_the_script() -> None:
    done = subprocess.run(["make", "-n", "-o", ".venv/.installed", "gpu-check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "scripts/gpu_check.py" in done.stdout
    assert "gpu-check" in (ROOT / "Makefile").read_text().split("help:")[1].split("\n\n")[0]


def test_numbers_agree_within_a_relative_tolerance_and_text_exactly(gpu_check) -> None:
    close = gpu_check.close
    assert close("'37.4 ± 8.9 %'", "'37.4 ± 8.9 %'")
    assert close("0.5002166579557906", "0.5002166579557999")  # a last bit
    assert close("1000.0", "1000.9") and not close("1000.0", "1001.1")  # relative 1e-3
    assert not close("'37.4 ± 8.9 %'", "'37.5 ± 8.9 %'")  # a rounded figure that moved
    assert not close("'2 of 5'", "'2 of 6'")
    assert not close("'none'", "'relu'") and not close("'7e-52'", "'7e-52 x'")
    assert close("nan", "nan") and not close("nan", "0.0")
    assert close("'-6.2'", "'−6.2'")  # a typographic minus is a minus
    assert close("'-6.2'", "'-14.3'", rel=float("inf"))


def test_compare_sorts_every_difference_into_one_list(gpu_check) -> None:
    cpu = {"ch04_dead_relu": {"a": "1.0", "b": "'x'", "c": "2.0", "gelu_zero_z": "'-6.2'",
                              "sgd_seconds": "1.5", "only_cpu": "1"},
           "ch03_backprop": {"d": "3.0"}}  # fmt: skip
    cuda = {"ch04_dead_relu": {"a": "1.0", "b": "'y'", "c": "2.0001", "gelu_zero_z": "'-14.3'",
                               "sgd_seconds": "0.1"},
            "ch03_backprop": {"d": "3.1"}}  # fmt: skip
    cmp = gpu_check.compare(cpu, cuda)
    assert cmp.same == 1  # a
    assert [line.split("`")[1] for line in cmp.within] == ["ch04_dead_relu c"]
    assert [line.split("`")[1] for line in cmp.differ] == ["ch03_backprop d", "ch04_dead_relu b"]
    assert [line.split("`")[1] for line in cmp.expected] == ["ch04_dead_relu gelu_zero_z"]
    assert [line.split("`")[1] for line in cmp.volatile] == ["ch04_dead_relu sgd_seconds"]
    assert [line.split("`")[1] for line in cmp.missing] == ["ch04_dead_relu only_cpu"]
    assert not cmp.ok and gpu_check.compare(cpu, cpu).ok


def test_report_names_the_card_and_every_step(gpu_check) -> None:
    steps = [gpu_check.Step("device tests", True, "12 passed"),
             gpu_check.Step("bench_step.py", None, "skipped: no --device flag")]  # fmt: skip
    cmp = gpu_check.compare({"c": {"x": "1.0"}}, {"c": {"x": "2.0"}})
    text = gpu_check.report("NVIDIA H100 80GB HBM3", "2.13.0", steps, cmp, 300.0)
    assert "NVIDIA H100 80GB HBM3, torch 2.13.0" in text
    assert "| device tests | passed | 12 passed |" in text
    assert "| bench_step.py | skipped |" in text
    assert "`c x`: CPU '1.0' → CUDA '2.0'" in text
