"""Shared test helpers: small workflow sources written to real files."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from runner.compiler.pipeline import Checked

GOOD_YAML = """\
version: 1
name: review-files
inputs:
  files: {type: array, default: ["a.py", "b.py"]}
roles:
  reviewer: {needs: [json_mode]}
budget: {tokens: 100000, cost_usd: 1.0, leaves: 100}
concurrency: {leaves: 8}
steps:
  kind: sequence
  id: main
  steps:
    - kind: expand
      id: review
      over: inputs.files
      as: file
      max_children: 50
      body:
        kind: leaf
        id: review_one
        role: reviewer
        prompt: "Review {{ file }} and say whether it is ok."
        output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
    - kind: reduce
      id: summary
      inputs: [review]
      expr: "outputs.review | selectattr('ok') | list | length"
tests:
  - name: every file reviewed
    expect: "outputs.review | length == 2"
"""

GOOD_STAR = """\
review = expand(
    id="review",
    over="inputs.files",
    as_="file",
    max_children=50,
    body=leaf(
        id="review_one",
        role="reviewer",
        prompt="Review {{ file }} and say whether it is ok.",
        output={"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
    ),
)
workflow(
    name="review-files",
    inputs={"files": {"type": "array", "default": ["a.py", "b.py"]}},
    roles={"reviewer": {"needs": ["json_mode"]}},
    budget={"tokens": 100000, "cost_usd": 1.0, "leaves": 100},
    concurrency={"leaves": 8},
    steps=sequence(
        id="main",
        steps=[
            review,
            reduce(
                id="summary",
                inputs=["review"],
                expr="outputs.review | selectattr('ok') | list | length",
            ),
        ],
    ),
    tests=[{"name": "every file reviewed", "expect": "outputs.review | length == 2"}],
)
"""


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a file under tmp_path (dedented) and return its path as a string."""

    def _write(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return str(path)

    return _write


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column where the only occurrence of ``needle`` starts in ``text``."""
    assert text.count(needle) == 1, f"{needle!r} is not unique in the document"
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def rendered(checked: Checked) -> list[str]:
    """Every diagnostic of a checked file, as the user reads it."""
    return [d.render() for d in checked.diagnostics]


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and no user configuration; its stdout."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**GIT_ENV, "PATH": os.environ["PATH"], "HOME": str(repo)},
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "README.md").write_text("hello\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "first")
    return root
