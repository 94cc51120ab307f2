"""Git worktrees for ``branch`` children with ``isolation: worktree``.

Each child gets a detached worktree of HEAD under ``.branchleaf/worktrees`` so its commands and
writes cannot see, or clash with, a sibling's. gitpython blocks, so every git call runs on a
worker thread; a cancelled caller still waits for that thread, so no worktree appears behind
the bookkeeping's back. ``leftover`` finds what a killed run left for the janitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path
from types import TracebackType

import git

from runner.errors import RunnerError
from runner.executor.commands import finish

WORKTREES_DIR = Path(".branchleaf") / "worktrees"
"""Where worktrees go, relative to the repository root, unless a base dir is given."""
_MAX_NAME = 60


class WorktreeError(RunnerError):
    """A worktree could not be created or removed."""


class Worktrees:
    """The worktrees of one run; ``async with`` removes every one of them on the way out."""

    def __init__(self, repo_root: Path, base_dir: Path | None = None) -> None:
        self.repo_root = repo_root.resolve()
        self.base_dir = (base_dir or self.repo_root / WORKTREES_DIR).resolve()
        self._created: list[Path] = []
        self._names: set[str] = set()
        self._checked = False

    async def __aenter__(self) -> Worktrees:
        await asyncio.to_thread(self._check)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def create(self, name: str) -> Path:
        """Add a detached worktree of HEAD for name and return its folder."""
        await asyncio.to_thread(self._check)
        try:
            path = self._claim(name)
        except OSError as exc:
            raise WorktreeError(
                f"isolation: worktree folder for {name!r} could not be made under "
                f"{self.base_dir} ({exc.strerror or exc}); check that it is writable"
            ) from exc
        # Recorded before git runs, so close() removes it even if this task is cancelled.
        self._created.append(path)
        try:
            await finish(asyncio.to_thread(self._add, path))
        except git.GitCommandError as exc:
            await finish(self.remove(path))
            raise WorktreeError(
                f"isolation: worktree could not be added at {path}: {_stderr(exc)}; "
                f"check `git worktree list` in {self.repo_root}"
            ) from exc
        return path

    async def remove(self, path: Path) -> None:
        """Remove one worktree (forced, even with changes) and whatever is left of its folder."""
        await finish(asyncio.to_thread(self._remove, path))
        if path in self._created:
            self._created.remove(path)

    async def close(self) -> None:
        """Remove every worktree this instance created; calling it again does nothing."""
        failures: list[str] = []
        for path in list(self._created):
            try:
                await self.remove(path)
            except WorktreeError as exc:
                failures.append(str(exc))
        if failures:
            raise WorktreeError(f"{len(failures)} worktree(s) not removed: {failures[0]}")

    def _check(self) -> None:
        if self._checked:
            return
        problem = _repo_problem(self.repo_root)
        if problem:
            raise WorktreeError(
                "isolation: worktree needs a git repository with at least one commit at "
                f"{self.repo_root} ({problem}); run the workflow from a git checkout, "
                "or use isolation: state"
            )
        self._checked = True

    def _claim(self, name: str) -> Path:
        """A folder name unique in this instance, and free on disk (shared base dirs)."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:_MAX_NAME] or "worktree"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:
            candidate = stem if n == 1 else f"{stem}-{n}"
            n += 1
            if candidate in self._names:
                continue
            path = self.base_dir / candidate
            try:
                # mkdir is the atomic claim against another run using the same base dir;
                # git worktree add accepts an empty existing folder.
                path.mkdir()
            except FileExistsError:
                continue
            self._names.add(candidate)
            return path

    def _add(self, path: Path) -> None:
        with git.Repo(self.repo_root) as repo:
            repo.git.worktree("add", "--detach", str(path), "HEAD")

    def _remove(self, path: Path) -> None:
        with git.Repo(self.repo_root) as repo:
            # Not registered, or its folder already gone: prune and rmtree below cover both.
            with contextlib.suppress(git.GitCommandError):
                repo.git.worktree("remove", "--force", str(path))
            # A failed prune leaves a stale registration, which leftover() still reports.
            with contextlib.suppress(git.GitCommandError):
                repo.git.worktree("prune")
        if path.exists():
            try:
                shutil.rmtree(path)
            except OSError as exc:
                raise WorktreeError(
                    f"worktree folder {path} could not be deleted ({exc.strerror or exc}); "
                    "delete it by hand, then run `git worktree prune`"
                ) from exc


def leftover(repo_root: Path, base_dir: Path | None = None) -> list[Path]:
    """Branchleaf worktrees still registered in the repository (e.g. after a killed run)."""
    root = repo_root.resolve()
    base = (base_dir or root / WORKTREES_DIR).resolve()
    try:
        with git.Repo(root) as repo:
            listing = repo.git.worktree("list", "--porcelain")
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError) as exc:
        raise WorktreeError(
            f"cannot list worktrees: {root} is not a git repository ({exc}); "
            "run the clean-up from the repository root"
        ) from exc
    found: list[Path] = []
    for line in listing.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree ")).resolve()
            if path.is_relative_to(base) and path != base:
                found.append(path)
    return found


def _repo_problem(root: Path) -> str | None:
    """Why root cannot host worktrees, or None."""
    try:
        with git.Repo(root) as repo:
            if not repo.head.is_valid():
                return "the repository has no commit yet"
    except git.NoSuchPathError:
        return "the folder does not exist"
    except git.InvalidGitRepositoryError:
        return "not a git repository"
    return None


def _stderr(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or exc).strip()
    return " ".join(text.removeprefix("stderr:").strip().strip("'").split())
