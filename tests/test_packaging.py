"""What pyproject.toml promises at run time is what the tests run on."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def _spec(requirements: list[str], name: str) -> str:
    (spec,) = [r for r in requirements if re.match(rf"{re.escape(name)}\b(?![-_])", r)]
    return spec


def test_textuals_lower_bound_is_the_version_the_tests_pin():
    """The viewer uses Textual's private API, so only the tested Textual is promised."""
    runtime = _spec(PYPROJECT["project"]["dependencies"], "textual")
    pinned = _spec(PYPROJECT["project"]["optional-dependencies"]["test"], "textual")
    assert runtime.replace(">=", "==") == pinned, (runtime, pinned)
