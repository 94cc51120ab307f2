"""A lesson file's envelope, read from whatever bytes a hand put on the branch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from overlay_helpers import hand_edit, lesson_file, no_user_git_config

from runner.overlay.branch import Overlay
from runner.overlay.files import read

__all__ = ["no_user_git_config"]

HOSTILE = {
    "deep": (b"[" * 5000 + b"]" * 5000, "nests lists and mappings more than 100 levels deep"),
    "aliases": (
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
        "expands to more than 100000 values",
    ),
    "binary": (bytes(range(256)), "is not UTF-8 text (byte 128)"),
    "empty": (b"", "the file is empty"),
    "null": (b"null\n", "holds a null, not a mapping"),
    "twice": (b"lesson: {id: x}\nlesson: {id: x}\nstatus: active\n", "'lesson' is given twice"),
    "typo": (b"lesson: {id: x}\nstaus: demoted\n", "has the unknown key 'staus'"),
    "no lesson": (b"status: active\n", "has no lesson mapping"),
    "runs": (b"lesson: {id: x}\nstatus: active\nruns: r1\n", "runs: that is not a list"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bytes_make_a_broken_file_with_its_reason(case: str) -> None:
    data, reason = HOSTILE[case]
    found = read("x.yaml", data, branch="cached-main", blob="b" * 40, commit="c" * 40)
    assert found.status == "broken"
    assert reason in (found.problem or "")


def test_a_file_name_that_is_not_utf8_is_kept_as_git_holds_it(repo: Path, tmp_path: Path) -> None:
    Overlay(repo).promote([lesson_file("first")])
    odd = os.fsdecode(b"lessons/caf\xe9.yaml")
    hand_edit(repo, tmp_path / "clone", {odd: b"x: 1\n"})
    Overlay(repo).promote([lesson_file("second")])
    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-z", "--name-only", "cached-main:lessons"],
        capture_output=True,
        check=True,
    ).stdout
    assert listing.split(b"\0")[:3] == [b"caf\xe9.yaml", b"first.yaml", b"second.yaml"]
