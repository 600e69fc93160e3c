"""environment.yml (conda, Binder) must list every dependency pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT

CONDA_NAMES = {"torch": "pytorch"}  # conda-forge's name for the same package


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_lists_every_runtime_and_course_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("book", "grade"):
        wanted += project["optional-dependencies"][extra]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed: dict[str, str] = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            listed[_name(item)] = item
    missing = [r for r in wanted if CONDA_NAMES.get(_name(r), _name(r)) not in listed]
    assert not missing, f"environment.yml lacks {missing}"
    # the same bounds where pyproject sets them
    for r in wanted:
        spec = r[len(_name(r)) :].strip()
        entry = listed[CONDA_NAMES.get(_name(r), _name(r))]
        assert spec.replace(" ", "") in entry.replace(" ", ""), (
            f"{r!r} vs environment.yml {entry!r}"
        )


def test_environment_installs_the_course_packages() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("-e .") for p in pip)
