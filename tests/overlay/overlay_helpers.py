"""Helpers for the overlay tests: lesson files, and git without the user's configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def no_user_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The overlay's git calls read neither the user's nor the system's configuration."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.delenv(f"GIT_{name}_NAME", raising=False)
        monkeypatch.delenv(f"GIT_{name}_EMAIL", raising=False)


def lesson_file(lesson_id: str, *, text: str = "Answer with JSON keys in snake_case.") -> Any:
    """A lesson file to promote, as ``learn`` writes one."""
    return {
        "lesson": {
            "id": lesson_id,
            "kind": "note",
            "target": "role:worker",
            "content": {"text": text},
            "rationale": "Three reflection cases failed on camelCase keys.",
            "evidence": [{"run": "20261204-230000-abcdef", "node": "answer[0]"}],
        },
        "gate": {"decision": "promote", "mcnemar_p": 0.031, "flips": {"fail_pass": 5}},
        "runs": ["20261204-230000-abcdef"],
        "validated_against": "0123456789abcdef0123456789abcdef01234567",
    }


def hand_edit(
    repo: Path, work: Path, edits: dict[str, bytes | None], branch: str = "cached-main"
) -> str:
    """Change files on ``branch`` as a person would (a clone, a commit, a push); the commit."""
    from conftest import git

    git(work.parent, "clone", "-q", "--branch", branch, str(repo), str(work))
    for path, data in edits.items():
        target = work / path
        if data is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Edit the lessons by hand")
    git(work, "push", "-q", "origin", branch)
    return git(work, "rev-parse", "HEAD").strip()
