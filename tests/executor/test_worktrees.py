"""Worktree isolation against real git repositories."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from conftest import git

from runner.errors import RunnerError
from runner.executor.worktrees import WorktreeError, Worktrees, leftover


def registered(repo: Path) -> list[Path]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [
        Path(line[len("worktree ") :]) for line in out.splitlines() if line.startswith("worktree")
    ]


def test_worktrees_are_isolated_and_removed_on_close(repo: Path) -> None:
    async def scenario() -> tuple[Path, Path]:
        async with Worktrees(repo) as wt:
            one, two = await asyncio.gather(wt.create("review[0]"), wt.create("review[1]"))
            (one / "out.txt").write_text("from one\n")
            assert (one / "README.md").read_text() == "hello\n"
            assert (two / "README.md").read_text() == "hello\n"
            assert not (two / "out.txt").exists()
            assert not (repo / "out.txt").exists()
            assert set(registered(repo)) == {repo.resolve(), one, two}
            assert sorted(leftover(repo)) == sorted([one, two])
            return one, two

    one, two = asyncio.run(scenario())
    assert one.parent == repo.resolve() / ".branchleaf" / "worktrees"
    assert (one.name, two.name) == ("review-0", "review-1")
    assert registered(repo) == [repo.resolve()]
    assert not one.exists()
    assert not two.exists()
    assert leftover(repo) == []


def test_names_are_sanitised_and_unique(repo: Path, tmp_path: Path) -> None:
    base = tmp_path / "elsewhere"

    async def scenario() -> list[str]:
        async with Worktrees(repo, base) as wt:
            paths = [await wt.create(name) for name in ("a/b c", "a/b c", "../..", "")]
            assert all(path.parent == base for path in paths)
            return [path.name for path in paths]

    assert asyncio.run(scenario()) == ["a-b-c", "a-b-c-2", "worktree", "worktree-2"]
    assert registered(repo) == [repo.resolve()]


def test_worktrees_are_removed_when_the_body_raises(repo: Path) -> None:
    created: list[Path] = []

    async def scenario() -> None:
        async with Worktrees(repo) as wt:
            path = await wt.create("child")
            (path / "dirty.txt").write_text("uncommitted\n")  # remove --force copes with it
            created.append(path)
            raise RuntimeError("node failed")

    with pytest.raises(RuntimeError, match="node failed"):
        asyncio.run(scenario())
    assert registered(repo) == [repo.resolve()]
    assert not created[0].exists()


def test_worktrees_are_removed_when_the_body_is_cancelled(repo: Path) -> None:
    async def body(wt: Worktrees, ready: asyncio.Event) -> None:
        async with wt:
            await wt.create("child")
            ready.set()
            await asyncio.sleep(30)

    async def scenario() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(body(Worktrees(repo), ready))
        await ready.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert registered(repo) == [repo.resolve()]
    assert leftover(repo) == []


def test_a_cancelled_create_still_finishes_and_is_removed(repo: Path) -> None:
    async def scenario() -> Path:
        async with Worktrees(repo) as wt:
            task = asyncio.create_task(wt.create("slow"))
            path = wt.base_dir / "slow"
            while not path.exists():  # claimed: git is about to run on a worker thread
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The cancelled caller waited for git, so the worktree exists and is tracked.
            assert path in registered(repo)
            assert (path / "README.md").exists()
            return path

    path = asyncio.run(scenario())
    assert registered(repo) == [repo.resolve()]
    assert not path.exists()


def test_close_is_idempotent_and_remove_tolerates_a_deleted_folder(repo: Path) -> None:
    async def scenario() -> None:
        wt = Worktrees(repo)
        path = await wt.create("x")
        subprocess.run(["rm", "-rf", str(path)], check=True)
        await wt.close()
        await wt.close()

    asyncio.run(scenario())
    assert registered(repo) == [repo.resolve()]


def test_leftover_lists_only_branchleaf_worktrees(repo: Path, tmp_path: Path) -> None:
    mine = repo / ".branchleaf" / "worktrees" / "crashed"
    git(repo, "worktree", "add", "-q", "--detach", str(mine), "HEAD")
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "someone-elses"), "HEAD")
    assert leftover(repo) == [mine.resolve()]


def test_not_a_repository(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Worktrees(tmp_path):
            pass

    with pytest.raises(WorktreeError, match="needs a git repository with at least one commit"):
        asyncio.run(scenario())
    with pytest.raises(WorktreeError, match=r"not a git repository"):
        asyncio.run(Worktrees(tmp_path).create("a"))
    with pytest.raises(WorktreeError, match="not a git repository"):
        leftover(tmp_path)


def test_repository_without_a_commit(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(WorktreeError, match="no commit yet") as info:
        asyncio.run(Worktrees(tmp_path).create("a"))
    assert isinstance(info.value, RunnerError)
    assert str(tmp_path) in str(info.value)
