"""``branchleaf overlay list|show|demote|revert`` as users run it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git
from overlay_helpers import hand_edit, lesson_file, no_user_git_config

from runner.main import main
from runner.overlay.branch import Overlay

__all__ = ["no_user_git_config"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


@pytest.fixture
def promoted(repo: Path) -> Path:
    """A repository whose cached-main holds two active lessons."""
    Overlay(repo).promote([lesson_file("fix-json-keys"), lesson_file("be-brief")])
    return repo


def test_list_show_demote_and_revert(promoted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = ["--repo", str(promoted)]
    code, out, _ = _run(["overlay", "list", *repo], capsys)
    tip = git(promoted, "rev-parse", "--short=7", "cached-main").strip()
    assert code == 0
    assert out.splitlines()[0] == f"cached-main at {tip}: 2 lessons (2 active)"
    assert "fix-json-keys" in out
    assert "role:worker" in out

    code, out, _ = _run(["overlay", "show", "be-brief", *repo], capsys)
    assert code == 0
    assert out.startswith("lesson be-brief on cached-main: active\nfile: cached-main:lessons/")
    assert "Promote lesson be-brief: note for role:worker" in out
    assert "rationale: Three reflection cases failed on camelCase keys." in out

    code, out, _ = _run(["overlay", "demote", "be-brief", "--reason", "hurt case 4", *repo], capsys)
    assert code == 0
    assert out.startswith("demoted lesson be-brief on cached-main in commit ")
    code, out, _ = _run(["overlay", "list", *repo], capsys)
    assert "2 lessons (1 active, 1 demoted)" in out
    assert "hurt case 4" in out

    code, out, _ = _run(
        ["overlay", "revert", "fix-json-keys", "--reason", "superseded", *repo], capsys
    )
    assert code == 0
    assert out.startswith("removed lesson fix-json-keys from cached-main in commit ")
    assert [f.id for f in Overlay(promoted).lessons()] == ["be-brief"]


def test_list_of_a_hand_broken_file_names_it_and_exits_2(
    promoted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit = hand_edit(promoted, tmp_path / "clone", {"lessons/be-brief.yaml": b"- not\n- a map\n"})
    code, out, err = _run(["overlay", "list", "--repo", str(promoted)], capsys)
    assert code == 2
    assert "1 lesson (1 active), 1 broken file" in out
    assert err == (
        f"error: cached-main:lessons/be-brief.yaml (commit {edit[:7]}) holds a list, not a mapping "
        "of lesson, workflow, status, demoted, gate, runs, validated_against, promoted_at, so "
        "runs do not apply it: fix the file, or remove it with "
        "`branchleaf overlay revert be-brief --reason TEXT`"
    )
    code, out, err = _run(["overlay", "show", "be-brief", "--repo", str(promoted)], capsys)
    assert code == 2
    assert "- a map" in out
    assert "holds a list" in err


BAD = {
    "not a folder": (["overlay", "list", "--repo", "{tmp}/missing"], "is not a folder"),
    "not a repository": (["overlay", "list", "--repo", "{tmp}"], "is not in a git repository"),
    "no such branch": (
        ["overlay", "list", "--repo", "{repo}", "--branch", "lessons"],
        "there is no branch lessons in",
    ),
    "not ours": (
        ["overlay", "demote", "x", "--reason", "r", "--repo", "{repo}", "--branch", "{main}"],
        "is not a Branchleaf overlay",
    ),
    "bad branch name": (["overlay", "list", "--repo", "{repo}", "--branch", "a..b"], "not a valid"),
    "no such lesson": (["overlay", "show", "nope", "--repo", "{repo}"], "no lesson 'nope'"),
    "demote nothing": (
        ["overlay", "demote", "nope", "--reason", "r", "--repo", "{repo}"],
        "no lesson 'nope'",
    ),
    "blank reason": (
        ["overlay", "revert", "be-brief", "--reason", " ", "--repo", "{repo}"],
        "give a reason with --reason TEXT",
    ),
    "no reason": (
        ["overlay", "revert", "be-brief", "--repo", "{repo}"],
        "the following arguments are required: --reason",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_sentence_and_exit_2(
    case: str, promoted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = BAD[case]
    main_branch = git(promoted, "rev-parse", "--abbrev-ref", "HEAD").strip()
    outside = tmp_path / "outside"
    outside.mkdir()
    words = [w.format(tmp=outside, repo=promoted, main=main_branch) for w in argv]
    code, _, err = _run(words, capsys)
    assert code == 2, err
    assert expected in err
    assert "Traceback" not in err
    assert "internal error" not in err


def test_a_bare_repository_is_listed(
    promoted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(promoted), str(bare))
    code, out, _ = _run(["overlay", "list", "--repo", str(bare)], capsys)
    assert code == 0
    assert "2 lessons (2 active)" in out
