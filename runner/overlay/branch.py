"""The overlay branch (``cached-main``): lessons read straight from its tree, written as commits.

Nothing here checks anything out or uses the index: a change is a blob (``hash-object``), trees
built with ``mktree`` from the tip's own trees, a commit (``commit-tree -p TIP``) and an
``update-ref`` that names the tip it was built on. When another writer moved the branch first,
the change is built again on the new tip, after a short random pause, so concurrent writers
never lose or repeat each other's lessons and the history stays linear (issue 14, point 6).
``git.IndexFile.from_tree`` is not used: it moves the real ``.git/index`` aside.
"""

from __future__ import annotations

import contextlib
import enum
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows; the compare-and-swap alone still holds
    fcntl = None  # type: ignore[assignment]

from runner.overlay import files
from runner.overlay.files import LESSONS_DIR, LessonFile
from runner.overlay.git import Entry, Git, NotARepository, OverlayError

MARKER = ".branchleaf-overlay"
"""The file at the root of every overlay branch; a branch without it is not written to."""
MARKER_TEXT = (
    "This branch holds the lessons Branchleaf promoted, one file each under lessons/; "
    "branchleaf writes it with new commits only, and it is never merged into main.\n"
)
DEFAULT_BRANCH = "cached-main"
_TRAILER_KEY = re.compile("^[A-Za-z][A-Za-z0-9-]*$")


class Tracked(enum.Enum):
    """The old value a push expects by default: the remote-tracking ref's."""

    REF = "refs/remotes/REMOTE/BRANCH"


TRACKED = Tracked.REF

Trailers = Callable[[Mapping[str, Any]], Iterable[tuple[str, str]] | Mapping[str, str]]
"""What gives a promoted file's commit trailers (the gate's figures), beside ``Lesson-Id``."""


def utc_now() -> str:
    """The time now, as an ISO-8601 UTC string to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """How a write that lost the race for the branch is tried again."""

    attempts: int = 200
    """Builds of one change before giving up."""
    pause_s: float = 0.004
    """The first pause after a lost race; each later one may be twice as long, up to..."""
    max_pause_s: float = 0.2
    """...this."""
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def pause(self, lost: int) -> None:
        """Wait a random while after losing ``lost`` races in a row (full jitter)."""
        self.sleep(self.rng.uniform(0, min(self.max_pause_s, self.pause_s * 2 ** min(lost, 16))))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tip:
    """The branch as one change is built on it."""

    commit: str | None
    """The tip, or None when the branch does not exist yet."""
    root: tuple[Entry, ...] = ()
    """The entries of the tip's root tree."""
    lessons: tuple[Entry, ...] = ()
    """The entries of its ``lessons/`` tree."""

    def entry(self, lesson_id: str) -> Entry | None:
        name = lesson_id + files.SUFFIX
        return next((e for e in self.lessons if e.name == name), None)


class Overlay:
    """The overlay branch of one repository."""

    def __init__(
        self,
        repo: Path,
        branch: str = DEFAULT_BRANCH,
        *,
        retry: Retry | None = None,
        clock: Callable[[], str] = utc_now,
        serialize: bool = True,
    ) -> None:
        self.repo = repo
        self.where = os.path.abspath(repo)
        """The repository's folder, as messages name it."""
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        self.retry = retry or Retry()
        self.clock = clock
        self.serialize = serialize
        self.git = Git(repo)
        self._known: _Tip | None = None
        self._holding = False
        code, out, _ = self.git.run("rev-parse", "--git-common-dir", ok=(0, 128))
        if code != 0:
            raise NotARepository(
                f"{repo} is not in a git repository: give the repository with --repo PATH"
            )
        code, _, _ = self.git.run("check-ref-format", self.ref, ok=(0, 1))
        if code != 0:
            raise OverlayError(
                f"{branch!r} is not a valid branch name: name another with --branch NAME"
            )
        self._lock_path = (repo / out.decode().strip()).resolve() / "branchleaf-overlay.lock"

    # Reading

    def tip(self) -> str | None:
        """The branch's commit, or None when it does not exist yet."""
        return self.git.resolve(self.ref)

    def lessons(self, at: str | None = None) -> list[LessonFile]:
        """Every file under ``lessons/`` at ``at`` (default: the tip), broken ones included."""
        commit = at or self.tip()
        if commit is None:
            return []
        state = self._read(commit)
        self._check_ours(state)
        contents = self.git.blobs([e.id for e in state.lessons if e.type == "blob"])
        changed = self._last_changes(commit)
        return [
            files.read(
                entry.name,
                contents.get(entry.id, b""),
                branch=self.branch,
                blob=entry.id,
                commit=changed.get(f"{LESSONS_DIR}/{entry.name}", commit),
                kind=entry.type,
            )
            for entry in sorted(state.lessons, key=lambda e: e.name)
        ]

    def active(self, at: str | None = None) -> list[LessonFile]:
        """The lessons that runs apply: active, and not broken."""
        return [f for f in self.lessons(at) if f.status == "active"]

    def problems(self, at: str | None = None) -> list[LessonFile]:
        """The broken lesson files, each with its ``problem``; they are never applied."""
        return [f for f in self.lessons(at) if f.status == "broken"]

    def find(self, lesson_id: str, at: str | None = None) -> LessonFile:
        """The file of one lesson; OverlayError when the branch has none."""
        found = next((f for f in self.lessons(at) if f.id == lesson_id), None)
        if found is None:
            raise OverlayError(
                f"there is no lesson {lesson_id!r} on {self.branch}: "
                f"`branchleaf overlay list --branch {self.branch}` lists the lessons there"
            )
        return found

    def history(self, path: str, at: str | None = None) -> list[tuple[str, str, str]]:
        """(commit, date, subject) of each commit that changed ``path``, newest first."""
        commit = at or self.tip()
        if commit is None:
            return []
        out = self.git.text("log", "-z", "--format=%H%x1f%cI%x1f%s", commit, "--", path)
        rows = [record.split("\x1f") for record in out.split("\0") if record]
        return [(row[0], row[1], row[2]) for row in rows]

    # Writing

    def promote(
        self, files_: Sequence[Mapping[str, Any]], *, trailers_of: Trailers | None = None
    ) -> list[str]:
        """Commit each lesson file on the branch, one commit each; their ids, in order.

        A lesson already on the branch is an error, so a promotion tried again never adds one
        twice; the files before it are committed by then.
        """
        now = self.clock()
        prepared = [files.promoted(document, now=now) for document in files_]
        self.check_writable()
        # One turn for the whole batch: its commits follow each other without reading the
        # branch again, as this writer knows the tip it made.
        with self._turn():
            return [self._promote_one(document, trailers_of) for document in prepared]

    def _promote_one(self, document: dict[str, Any], trailers_of: Trailers | None) -> str:
        """Commit one prepared lesson file; the commit."""
        lesson = document["lesson"]
        lesson_id = lesson["id"]
        blob = self.git.write_blob(files.dump(document))
        trailers = [("Lesson-Id", lesson_id), *_trailers(trailers_of, document)]
        message = _message(
            f"Promote lesson {lesson_id}: {lesson['kind']} for {lesson['target']}", trailers
        )

        def change(tip: _Tip) -> list[Entry]:
            found = tip.entry(lesson_id)
            if found is not None:
                raise OverlayError(
                    f"lesson {lesson_id!r} is already on {self.branch} (commit "
                    f"{self._changed_by(tip, found)[:7]}): give the new lesson another id, "
                    "or revert the one there with "
                    f"`branchleaf overlay revert {lesson_id} --reason TEXT`"
                )
            return [*tip.lessons, _file(lesson_id, blob)]

        return self._commit(change, message)

    def demote(self, lesson_id: str, reason: str) -> str:
        """Stop a lesson being applied, keeping its file (status demoted); the new commit."""
        reason = _reason(reason)
        self.check_writable()
        at = self.clock()

        def change(tip: _Tip) -> list[Entry]:
            current = self._current(tip, lesson_id)
            if current.status == "broken":
                raise OverlayError(
                    f"{current.where(self.branch)} {current.problem}, so it cannot be demoted: "
                    f"remove it with `branchleaf overlay revert {lesson_id} --reason TEXT`"
                )
            if current.status == "demoted":
                raise OverlayError(
                    f"lesson {lesson_id!r} is already demoted on {self.branch} (commit "
                    f"{current.commit[:7]}): "
                    f"`branchleaf overlay revert {lesson_id} --reason TEXT` removes it"
                )
            blob = self.git.write_blob(
                files.dump(files.demoted(current.document, reason=reason, at=at))
            )
            entry = _file(lesson_id, blob)
            return [e for e in tip.lessons if e.name != entry.name] + [entry]

        message = _message(f"Demote lesson {lesson_id}", [("Lesson-Id", lesson_id)], body=reason)
        return self._commit(change, message)

    def revert(self, lesson_id: str, reason: str) -> str:
        """Remove a lesson's file (even a broken one) from the branch; the new commit."""
        reason = _reason(reason)
        self.check_writable()

        def change(tip: _Tip) -> list[Entry]:
            name = self._current(tip, lesson_id, parse=False).path.rsplit("/", 1)[1]
            return [e for e in tip.lessons if e.name != name]

        message = _message(f"Revert lesson {lesson_id}", [("Lesson-Id", lesson_id)], body=reason)
        return self._commit(change, message)

    def push(self, remote: str = "origin", *, old: str | Tracked | None = TRACKED) -> None:
        """Publish the branch to ``remote``, only if the remote's branch is still at ``old``.

        ``old`` is the value the remote's branch must have: by default the remote-tracking
        ref's (``refs/remotes/REMOTE/BRANCH``, or "must not exist" without one), None for
        "must not exist", or a commit id. ``--force-with-lease`` names it, so a branch that
        another writer pushed meanwhile is never overwritten.
        """
        tip = self.tip()
        if tip is None:
            raise OverlayError(f"there is no branch {self.branch} to push in {self.where}")
        expected = (
            self.git.resolve(f"refs/remotes/{remote}/{self.branch}")
            if isinstance(old, Tracked)
            else old
        )
        lease = f"--force-with-lease={self.ref}:{expected or ''}"
        code, out, stderr = self.git.run(
            "push", "--porcelain", lease, remote, f"{self.ref}:{self.ref}", ok=(0, 1, 128)
        )
        if code == 0:
            return
        # --porcelain prints each ref's outcome on stdout: "!<TAB>from:to<TAB>[rejected] (why)".
        refused = [
            line for line in out.decode("utf-8", "replace").splitlines() if line.startswith("!")
        ]
        if any("stale info" in line or "fetch first" in line for line in refused):
            was = f"at {expected[:7]}" if expected else "absent"
            raise OverlayError(
                f"{remote} refused {self.branch}: its branch is no longer {was} as expected, so "
                f"another writer pushed first; fetch {self.branch} from {remote}, promote again "
                "on it and push"
            )
        why = [line.split("\t")[-1] for line in refused] or [
            line.strip() for line in stderr.splitlines() if line.strip()
        ]
        raise OverlayError(
            f"git push of {self.branch} to {remote} failed: {(why or ['no message'])[0]}"
        )

    # The compare-and-swap loop

    def _commit(self, change: Callable[[_Tip], Sequence[Entry]], message: str) -> str:
        """Apply ``change`` to the tip as one new commit, again on each new tip it loses to."""
        subject = message.split("\n", 1)[0]
        for lost in range(self.retry.attempts):
            with self._turn():
                tip, trusted = self._tip()
                if tip.commit is None:
                    tip = self._start()
                if tip.commit is not None:  # else another writer created the branch first
                    try:
                        lessons = tuple(change(tip))
                    except OverlayError:
                        if trusted and self.tip() != tip.commit:
                            continue  # the change was refused on a tip that is gone: again
                        raise
                    root = tuple(e for e in tip.root if e.name != LESSONS_DIR)
                    if lessons:
                        folder = self.git.write_tree(lessons)
                        root += (Entry(mode="040000", type="tree", id=folder, name=LESSONS_DIR),)
                    tree = self.git.write_tree(root)
                    commit = self.git.write_commit(tree, tip.commit, message)
                    if self.git.swap(
                        self.ref, commit, tip.commit, f"branchleaf overlay: {subject}"
                    ):
                        self._known = _Tip(commit=commit, root=root, lessons=lessons)
                        return commit
            self.retry.pause(lost)
        raise OverlayError(
            f"{self.branch} kept moving under other writers for {self.retry.attempts} attempts; "
            "run the command again"
        )

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn to build a change, among the writers of this machine.

        Only a saving: writers that wait here do not build changes that would lose the race
        anyway. What keeps every change is the compare-and-swap, which holds for writers that
        do not take the lock (another machine's, on a shared repository) too.
        """
        if self._holding or not self.serialize or fcntl is None:
            yield
            return
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._holding = True
            try:
                yield
            finally:
                self._holding = False
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _tip(self) -> tuple[_Tip, bool]:
        """The branch's tip and trees, and whether they are taken on trust: those of the commit
        this writer made last are (when another writer moved the branch since, the swap says so
        and the next attempt reads it afresh), else they are read from the branch."""
        known, self._known = self._known, None
        tip = known if known is not None else self._read(self.tip())
        self._check_ours(tip)
        return tip, known is not None

    def _start(self) -> _Tip:
        """Create the branch as a root commit holding only the marker; the branch as it is
        then (its commit is None when another writer created it first)."""
        marker = self.git.write_blob(MARKER_TEXT.encode())
        root = (Entry(mode="100644", type="blob", id=marker, name=MARKER),)
        tree = self.git.write_tree(root)
        message = f"Start the {self.branch} overlay\n\n{MARKER_TEXT}"
        commit = self.git.write_commit(tree, None, message)
        if self.git.swap(self.ref, commit, None, f"branchleaf overlay: start {self.branch}"):
            return _Tip(commit=commit, root=root, lessons=())
        return _Tip(commit=None)

    def _read(self, commit: str | None) -> _Tip:
        if commit is None:
            return _Tip(commit=None)
        root: list[Entry] = []
        lessons: list[Entry] = []
        for entry in self.git.tree(commit, recursive=True):
            head, _, rest = entry.name.partition("/")
            if not rest:
                root.append(entry)
            elif head == LESSONS_DIR and "/" not in rest:
                lessons.append(Entry(mode=entry.mode, type=entry.type, id=entry.id, name=rest))
        return _Tip(commit=commit, root=tuple(root), lessons=tuple(lessons))

    def _check_ours(self, tip: _Tip) -> None:
        if tip.commit is None or any(e.name == MARKER and e.type == "blob" for e in tip.root):
            return
        self._not_ours(tip.commit)

    def _not_ours(self, commit: str) -> None:
        raise OverlayError(
            f"branch {self.branch!r} in {self.where} is not a Branchleaf overlay (commit "
            f"{commit[:7]} has no {MARKER} file), so it is left alone: name another branch "
            "with --branch NAME, one that does not exist yet or that branchleaf made"
        )

    def check_writable(self) -> None:
        """Refuse a branch that is not ours, or that a worktree has checked out."""
        tip = self.tip()
        if tip is not None and self.git.run("cat-file", "-e", f"{tip}:{MARKER}", ok=(0, 1, 128))[0]:
            self._not_ours(tip)
        out = self.git.text("worktree", "list", "--porcelain")
        for line in out.splitlines():
            if line == f"branch {self.ref}":
                raise OverlayError(
                    f"{self.branch} is checked out in a worktree of {self.where}, and moving it "
                    "would change that worktree's files: switch that worktree to another "
                    "branch, or name another overlay branch with --branch NAME"
                )

    def _current(self, tip: _Tip, lesson_id: str, *, parse: bool = True) -> LessonFile:
        """The lesson's file as it is at ``tip``."""
        entry = tip.entry(lesson_id)
        if entry is None:
            raise OverlayError(
                f"there is no lesson {lesson_id!r} on {self.branch}: "
                f"`branchleaf overlay list --branch {self.branch}` lists the lessons there"
            )
        assert tip.commit is not None
        data = self.git.blobs([entry.id])[entry.id] if parse and entry.type == "blob" else b""
        commit = self._changed_by(tip, entry) if parse else tip.commit
        return files.read(
            entry.name, data, branch=self.branch, blob=entry.id, commit=commit, kind=entry.type
        )

    def _changed_by(self, tip: _Tip, entry: Entry) -> str:
        assert tip.commit is not None
        path = f"{LESSONS_DIR}/{entry.name}"
        return self._last_changes(tip.commit, path).get(path, tip.commit)

    def _last_changes(self, commit: str, *paths: str) -> dict[str, str]:
        """The commit that last changed each path under ``lessons/`` (or each of ``paths``)."""
        out = self.git.run(
            "log",
            "-z",
            "--no-renames",
            "--format=%H",
            "--name-only",
            commit,
            "--",
            *(paths or (f"{LESSONS_DIR}/",)),
        )[1].decode("utf-8", "surrogateescape")
        found: dict[str, str] = {}
        current = commit
        for record in out.split("\0"):
            token = record.lstrip("\n")
            if token.startswith(f"{LESSONS_DIR}/"):
                found.setdefault(token, current)
            elif token:
                current = token
        return found


def _file(lesson_id: str, blob: str) -> Entry:
    """The ``lessons/`` entry of a lesson's file."""
    return Entry(mode="100644", type="blob", id=blob, name=lesson_id + files.SUFFIX)


def _trailers(trailers_of: Trailers | None, document: Mapping[str, Any]) -> list[tuple[str, str]]:
    if trailers_of is None:
        return []
    given = trailers_of(document)
    pairs = list(given.items() if isinstance(given, Mapping) else given)
    for key, _ in pairs:
        if not _TRAILER_KEY.match(key) or key.lower() == "lesson-id":
            raise OverlayError(f"{key!r} cannot be a commit trailer's key")
    return [(key, " ".join(str(value).split())) for key, value in pairs]


def _message(subject: str, trailers: Sequence[tuple[str, str]], *, body: str = "") -> str:
    """A commit message: the subject, the body, and the trailers as its last paragraph."""
    parts = [" ".join(subject.split())]
    if body:
        parts.append(body.strip())
    parts.append("\n".join(f"{key}: {value}" for key, value in trailers))
    return "\n\n".join(parts) + "\n"


def _reason(reason: str) -> str:
    if not reason.strip():
        raise OverlayError("give a reason with --reason TEXT: it is kept in the branch's history")
    return reason.strip()
