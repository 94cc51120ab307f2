"""Writers promoting at once: every lesson lands once, on a linear history (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import git
from overlay_helpers import no_user_git_config

from runner.overlay.branch import Overlay

__all__ = ["no_user_git_config"]

WRITER = Path(__file__).with_name("overlay_writer.py")


def _race(repo: Path, writers: int, each: int, *flags: str) -> set[str]:
    """Start ``writers`` processes promoting ``each`` lessons at the same moment; the ids."""
    processes = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(repo), f"w{w}", str(each), *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n", process.communicate()[1]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    return {f"w{w}-{n:02d}" for w in range(writers) for n in range(each)}


def _assert_each_once_and_linear(repo: Path, expected: set[str]) -> None:
    found = Overlay(repo).lessons()
    assert sorted(f.id for f in found) == sorted(expected)
    assert all(f.status == "active" for f in found)
    # Linear: each commit's only parent is the one before it, back to the marker's root.
    chain = [
        line.split() for line in git(repo, "rev-list", "--parents", "cached-main").splitlines()
    ]
    assert [len(c) for c in chain] == [2] * len(expected) + [1]
    assert all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1))
    # One file per commit: each lesson's file added by exactly one commit, none changed after.
    log = git(repo, "log", "--format=", "--name-status", "cached-main", "--", "lessons/").split()
    assert sorted(log) == sorted(["A"] * len(expected) + [f"lessons/{i}.yaml" for i in expected])


def test_eight_writers_promoting_fifty_each_lose_nothing_and_repeat_nothing(repo: Path) -> None:
    _assert_each_once_and_linear(repo, _race(repo, 8, 50))


def test_writers_that_take_no_lock_are_kept_apart_by_the_compare_and_swap(repo: Path) -> None:
    # Without the local lock every writer builds on the tip it read and loses the race whenever
    # another moved the branch first: only update-ref's check of the old value keeps them all.
    _assert_each_once_and_linear(repo, _race(repo, 3, 12, "--no-lock"))
