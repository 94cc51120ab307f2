"""The overlay branch in real repositories: what is written, and what is never touched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from overlay_helpers import hand_edit, lesson_file, no_user_git_config

from runner.overlay.branch import MARKER, Overlay
from runner.overlay.git import OverlayError

__all__ = ["no_user_git_config"]


def _snapshot(root: Path) -> dict[str, Any]:
    """HEAD, the index and every working-tree file, as bytes and modification times."""
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] != ".git" and path.is_file():
            files[str(relative)] = (path.read_bytes(), path.stat().st_mtime_ns)
    index = root / ".git" / "index"
    return {
        "HEAD": (root / ".git" / "HEAD").read_bytes(),
        "head": git(root, "rev-parse", "HEAD"),
        "index": (index.read_bytes(), index.stat().st_mtime_ns),
        "config": (root / ".git" / "config").read_bytes(),
        "files": files,
    }


def _files_changed(repo: Path, commit: str) -> list[str]:
    return git(repo, "show", "--format=", "--name-only", commit).split()


def test_promoting_leaves_head_the_index_and_a_dirty_tree_alone(repo: Path) -> None:
    (repo / "README.md").write_text("edited, not staged\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "untracked.txt").write_text("untracked\n")
    before = _snapshot(repo)

    overlay = Overlay(repo)
    (first,) = overlay.promote([lesson_file("first")])  # creates the branch
    old_tip = overlay.tip()
    commits = overlay.promote([lesson_file(name) for name in ("a", "b", "c")])

    assert _snapshot(repo) == before
    assert git(repo, "rev-list", f"{old_tip}..cached-main").split() == commits[::-1]
    for parent, commit, name in zip([first, *commits], commits, ("a", "b", "c"), strict=False):
        assert _files_changed(repo, commit) == [f"lessons/{name}.yaml"]
        assert git(repo, "rev-parse", f"{commit}^").strip() == parent
    root = git(repo, "rev-list", "--max-parents=0", "cached-main").strip()
    assert _files_changed(repo, root) == [MARKER]
    assert _files_changed(repo, first) == ["lessons/first.yaml"]
    assert [f.id for f in overlay.active()] == ["a", "b", "c", "first"]


def test_a_lesson_file_holds_the_lesson_and_its_commit_the_figures(repo: Path) -> None:
    overlay = Overlay(repo, clock=lambda: "2026-12-04T23:00:00Z")
    (commit,) = overlay.promote(
        [lesson_file("fix-json-keys")],
        trailers_of=lambda f: {"Gate-P": str(f["gate"]["mcnemar_p"])},
    )
    assert git(repo, "log", "-1", "--format=%s", commit).strip() == (
        "Promote lesson fix-json-keys: note for role:worker"
    )
    trailers = git(repo, "log", "-1", "--format=%(trailers:only)", commit).split("\n")
    assert trailers[:2] == ["Lesson-Id: fix-json-keys", "Gate-P: 0.031"]
    text = git(repo, "show", "cached-main:lessons/fix-json-keys.yaml")
    keys = [line.split(":")[0] for line in text.splitlines() if not line.startswith((" ", "-"))]
    assert keys == ["lesson", "status", "gate", "runs", "validated_against", "promoted_at"]
    (found,) = overlay.lessons()
    assert found.status == "active"
    assert found.commit == commit
    assert found.document["promoted_at"] == "2026-12-04T23:00:00Z"
    assert found.lesson["content"] == {"text": "Answer with JSON keys in snake_case."}


def test_a_lesson_already_on_the_branch_is_not_added_again(repo: Path) -> None:
    overlay = Overlay(repo)
    (commit,) = overlay.promote([lesson_file("once")])
    with pytest.raises(OverlayError) as raised:
        Overlay(repo).promote([lesson_file("once", text="another text")])
    assert f"lesson 'once' is already on cached-main (commit {commit[:7]})" in str(raised.value)
    assert overlay.tip() == commit


def test_an_envelope_that_cannot_be_a_lesson_file_is_refused_before_anything_is_written(
    repo: Path,
) -> None:
    bad = lesson_file("Not A File Name")
    with pytest.raises(OverlayError, match="cannot name a file"):
        Overlay(repo).promote([lesson_file("fine"), bad])
    assert Overlay(repo).tip() is None


def test_demote_and_revert_are_new_commits_on_top(repo: Path) -> None:
    overlay = Overlay(repo, clock=lambda: "2026-12-05T00:00:00Z")
    promoted = overlay.promote([lesson_file("keep"), lesson_file("demote-me")])
    demoted = overlay.demote("demote-me", "regressed case 7 on the nightly run")
    reverted = overlay.revert("keep", "superseded by a prompt patch")

    history = git(repo, "rev-list", "cached-main").split()
    assert history[:4] == [reverted, demoted, *promoted[::-1]]
    assert _files_changed(repo, demoted) == ["lessons/demote-me.yaml"]
    assert _files_changed(repo, reverted) == ["lessons/keep.yaml"]
    assert "Lesson-Id: demote-me" in git(repo, "log", "-1", "--format=%B", demoted)
    (left,) = overlay.lessons()
    assert (left.id, left.status, left.commit) == ("demote-me", "demoted", demoted)
    assert left.document["demoted"] == {
        "reason": "regressed case 7 on the nightly run",
        "at": "2026-12-05T00:00:00Z",
    }
    assert overlay.active() == []
    # History is never rewritten: what was there is still there.
    assert [f.id for f in overlay.lessons(at=promoted[1])] == ["demote-me", "keep"]
    with pytest.raises(OverlayError, match="already demoted"):
        overlay.demote("demote-me", "again")
    with pytest.raises(OverlayError, match="there is no lesson 'keep' on cached-main"):
        overlay.revert("keep", "again")


BROKEN = {
    "lessons/not-yaml.yaml": b"lesson: [id: not-yaml\n",
    "lessons/a-list.yaml": b"- lesson\n- status\n",
    "lessons/wrong-id.yaml": None,  # written from the good file below
    "lessons/paused.yaml": None,
    "lessons/Odd Name.yaml": b"lesson: {id: odd}\nstatus: active\n",
    "lessons/folder.yaml/inside.yaml": b"x: 1\n",
}
REASONS = {
    "not-yaml": "is not valid YAML at line 2: while parsing a flow sequence",
    "a-list": "holds a list, not a mapping",
    "wrong-id": "holds lesson.id 'someone-else', which is not its file name 'wrong-id'",
    "paused": "has status 'paused', which is not active or demoted",
    "Odd Name": "is not named <id>.yaml",
    "folder": "is a folder, not a lesson file",
}


def test_a_file_edited_by_hand_into_nonsense_is_listed_as_broken_and_never_applied(
    repo: Path, tmp_path: Path
) -> None:
    overlay = Overlay(repo)
    overlay.promote([lesson_file(name) for name in ("good", "wrong-id", "paused")])
    text = git(repo, "show", "cached-main:lessons/good.yaml")
    edits = {
        **BROKEN,
        "lessons/wrong-id.yaml": text.replace("id: good", "id: someone-else").encode(),
        "lessons/paused.yaml": text.replace("id: good", "id: paused")
        .replace("status: active", "status: paused")
        .encode(),
    }
    edit = hand_edit(repo, tmp_path / "clone", edits)

    assert [f.id for f in overlay.active()] == ["good"]
    problems = {f.id: f for f in overlay.problems()}
    assert set(problems) == set(REASONS)
    for lesson_id, reason in REASONS.items():
        assert reason in (problems[lesson_id].problem or ""), lesson_id
        assert problems[lesson_id].commit == edit
        assert problems[lesson_id].status == "broken"
    assert (
        problems["paused"].where("cached-main")
        == f"cached-main:lessons/paused.yaml (commit {edit[:7]})"
    )
    with pytest.raises(OverlayError, match="cannot be demoted: remove it with"):
        overlay.demote("not-yaml", "broken")
    overlay.revert("not-yaml", "edited into nonsense")
    assert "not-yaml" not in {f.id for f in overlay.problems()}


def test_a_branch_that_is_not_ours_is_neither_read_nor_written(repo: Path) -> None:
    main = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    tip = git(repo, "rev-parse", main)
    overlay = Overlay(repo, main)
    message = f"branch '{main}' in {repo} is not a Branchleaf overlay"
    with pytest.raises(OverlayError, match=message):
        overlay.promote([lesson_file("x")])
    with pytest.raises(OverlayError, match="name another branch with --branch NAME"):
        overlay.lessons()
    assert git(repo, "rev-parse", main) == tip


def test_a_checked_out_overlay_branch_is_not_moved(repo: Path) -> None:
    Overlay(repo).promote([lesson_file("x")])
    git(repo, "checkout", "-q", "cached-main")
    with pytest.raises(OverlayError, match="cached-main is checked out in a worktree"):
        Overlay(repo).promote([lesson_file("y")])


def test_commits_are_by_the_configured_user_else_branchleaf(repo: Path) -> None:
    overlay = Overlay(repo)
    (first,) = overlay.promote([lesson_file("one")])
    identity = "%an <%ae> / %cn <%ce>"
    assert git(repo, "log", "-1", f"--format={identity}", first).strip() == (
        "Branchleaf <branchleaf@localhost> / Branchleaf <branchleaf@localhost>"
    )
    git(repo, "config", "user.name", "Ada Lovelace")
    git(repo, "config", "user.email", "ada@example.com")
    config = (repo / ".git" / "config").read_bytes()
    (second,) = Overlay(repo).promote([lesson_file("two")])
    assert git(repo, "log", "-1", f"--format={identity}", second).strip() == (
        "Ada Lovelace <ada@example.com> / Ada Lovelace <ada@example.com>"
    )
    assert (repo / ".git" / "config").read_bytes() == config


def test_a_bare_repository_is_read_and_written(repo: Path, tmp_path: Path) -> None:
    Overlay(repo).promote([lesson_file("one")])
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    overlay = Overlay(bare)
    overlay.promote([lesson_file("two")])
    assert [f.id for f in overlay.active()] == ["one", "two"]


def test_push_names_the_old_value_and_a_stale_lease_is_refused(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    ours = Overlay(repo)
    ours.promote([lesson_file("ours")])
    ours.push()
    assert git(remote, "rev-parse", "cached-main") == git(repo, "rev-parse", "cached-main")
    published = git(repo, "rev-parse", "cached-main").strip()

    # Another writer promotes on the published branch and pushes first.
    other_repo = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other_repo))
    git(other_repo, "branch", "-q", "cached-main", "origin/cached-main")
    theirs = Overlay(other_repo)
    theirs.promote([lesson_file("theirs")])
    theirs.push()
    their_tip = git(remote, "rev-parse", "cached-main")

    ours.promote([lesson_file("ours-too")])
    with pytest.raises(OverlayError, match=f"no longer at {published[:7]} as expected"):
        ours.push()
    with pytest.raises(OverlayError, match="another writer pushed first"):
        ours.push(old=published)
    assert git(remote, "rev-parse", "cached-main") == their_tip
    # Naming the value the remote really has lets the push through (it replaces theirs: the
    # lease is the caller's promise that it built on what it names).
    ours.push(old=their_tip.strip())
    assert git(remote, "rev-parse", "cached-main") == git(repo, "rev-parse", "cached-main")


def test_no_repository_is_one_sentence(tmp_path: Path) -> None:
    os.environ.pop("GIT_DIR", None)
    with pytest.raises(OverlayError, match="is not in a git repository: give the repository"):
        Overlay(tmp_path)
