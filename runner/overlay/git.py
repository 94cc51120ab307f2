"""The git plumbing the overlay is written with: one ``git`` process per call, never the index.

Every call runs ``git -C REPO`` with the variables that would point git at another repository,
index or work tree removed, so that ``--repo`` alone says which repository is used and no call
can reach the caller's index (issue 14: "HEAD, the index and the working tree stay
byte-identical").
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError

ZERO = "0" * 40
"""The id ``update-ref`` takes as the old value of a ref that must not exist yet."""

FALLBACK_NAME = "Branchleaf"
FALLBACK_EMAIL = "branchleaf@localhost"

_LOCATING = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")
"""Variables that would make a call use another repository, index or work tree than REPO's."""


class OverlayError(RunnerError):
    """The overlay branch cannot be read or written as asked (exit 2)."""

    exit_code = 2


class NotARepository(OverlayError):
    """The folder given is not in a git repository, so there is no overlay branch there."""


class GitFailed(RunnerError):
    """A git call failed for a reason of the repository's own (exit 3)."""

    def __init__(self, argv: Sequence[str], repo: Path, stderr: str) -> None:
        self.stderr = stderr
        first = next((line for line in stderr.splitlines() if line.strip()), "no message")
        super().__init__(
            f"git {argv[0]} failed in {repo}: {first.strip()}; check the repository with `git fsck`"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One entry of a tree, as ``ls-tree`` prints it and ``mktree`` reads it."""

    mode: str
    """``100644``, ``100755``, ``120000``, ``040000`` or ``160000``."""
    type: str
    """``blob``, ``tree`` or ``commit``."""
    id: str
    """The object's 40-hex id."""
    name: str
    """The name inside its tree (a path below the tree when listed recursively)."""

    def line(self) -> bytes:
        """The entry as ``mktree -z`` reads it."""
        line = f"{self.mode} {self.type} {self.id}\t{self.name}\0"
        return line.encode("utf-8", "surrogateescape")  # a name git holds that is not UTF-8


class Git:
    """Plumbing calls in one repository."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self._env = {k: v for k, v in os.environ.items() if k not in _LOCATING}
        self._identity: Mapping[str, str] | None = None

    def run(
        self,
        *argv: str,
        stdin: bytes | None = None,
        ok: Sequence[int] = (0,),
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        """Run ``git ARGV``; its exit code, output and error text; GitFailed unless in ``ok``."""
        try:
            done = subprocess.run(
                ["git", "-C", str(self.repo), *argv],
                input=stdin if stdin is not None else b"",
                capture_output=True,
                env={**self._env, **(env or {})},
                check=False,
            )
        except FileNotFoundError as exc:
            raise OverlayError(
                "git is not installed or not on PATH: install git to use the overlay branch"
            ) from exc
        stderr = done.stderr.decode("utf-8", "replace")
        if done.returncode not in ok:
            raise GitFailed(argv, self.repo, stderr)
        return done.returncode, done.stdout, stderr

    def text(self, *argv: str, stdin: bytes | None = None) -> str:
        """The output of a call that must succeed, as text without its last newline."""
        return self.run(*argv, stdin=stdin)[1].decode("utf-8", "replace").rstrip("\n")

    def resolve(self, ref: str) -> str | None:
        """The commit ``ref`` names, or None when there is no such ref."""
        code, out, _ = self.run("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", ok=(0, 1))
        return out.decode().strip() if code == 0 else None

    def tree(self, treeish: str, *, recursive: bool = False) -> list[Entry]:
        """The entries of a tree; with ``recursive``, every path below it, subtrees included."""
        flags = ("-r", "-t") if recursive else ()
        out = self.run("ls-tree", "-z", "--full-tree", *flags, treeish)[1]
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            head, _, name = record.partition(b"\t")
            mode, kind, oid = head.decode().split(" ")
            entries.append(
                Entry(mode=mode, type=kind, id=oid, name=name.decode("utf-8", "surrogateescape"))
            )
        return entries

    def blobs(self, ids: Sequence[str]) -> dict[str, bytes]:
        """The contents of blobs, read in one ``cat-file --batch``."""
        if not ids:
            return {}
        out = self.run("cat-file", "--batch", stdin="".join(f"{i}\n" for i in ids).encode())[1]
        found: dict[str, bytes] = {}
        at = 0
        while at < len(out):
            end = out.index(b"\n", at)
            header = out[at:end].decode().split(" ")
            if len(header) != 3:  # "<id> missing": the repository lacks an object it names
                raise GitFailed(("cat-file",), self.repo, f"object {header[0]} is missing")
            oid, _kind, size = header
            start = end + 1
            found[oid] = out[start : start + int(size)]
            at = start + int(size) + 1
        return found

    def write_blob(self, data: bytes) -> str:
        """Store ``data`` as a blob; its id."""
        return self.text("hash-object", "-w", "--stdin", stdin=data)

    def write_tree(self, entries: Sequence[Entry]) -> str:
        """Store a tree of ``entries`` (``mktree`` sorts them); its id."""
        return self.text("mktree", "-z", stdin=b"".join(e.line() for e in entries))

    def write_commit(self, tree: str, parent: str | None, message: str) -> str:
        """Store a commit of ``tree`` on ``parent`` (a root commit without one); its id."""
        parents = ("-p", parent) if parent else ()
        out = self.run("commit-tree", tree, *parents, stdin=message.encode(), env=self.identity())
        return out[1].decode().strip()

    def swap(self, ref: str, new: str, old: str | None, reason: str) -> bool:
        """Point ``ref`` at ``new`` if it still names ``old`` (None: if it does not exist).

        False when another writer moved it (or holds its lock) first; ``update-ref`` checks the
        old value under the ref's lock, which gitpython's reference writes do not.
        """
        code, _, stderr = self.run(
            "update-ref", "-m", reason, ref, new, old or ZERO, ok=(0, 1, 128)
        )
        if code == 0:
            return True
        if self.resolve(ref) != old or ".lock" in stderr:
            return False
        raise GitFailed(("update-ref",), self.repo, stderr)

    def identity(self) -> Mapping[str, str]:
        """The variables that name the commits' author and committer: the repository's
        configured user where there is one, else Branchleaf; never written to the config."""
        if self._identity is None:
            out = self.run(
                "config", "--get-regexp", r"^(user|author|committer)\.(name|email)$", ok=(0, 1)
            )[1]
            keys = {line.split(" ", 1)[0].lower() for line in out.decode().splitlines()}
            env: dict[str, str] = {}
            for role in ("AUTHOR", "COMMITTER"):
                for field, fallback in (("NAME", FALLBACK_NAME), ("EMAIL", FALLBACK_EMAIL)):
                    variable = f"GIT_{role}_{field}"
                    configured = {f"user.{field.lower()}", f"{role.lower()}.{field.lower()}"}
                    if variable not in self._env and not keys & configured:
                        env[variable] = fallback
            self._identity = env
        return self._identity
