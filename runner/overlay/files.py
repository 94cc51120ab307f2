"""Lesson files on the overlay branch (``lessons/<id>.yaml``): their envelope, read and written.

Pure: bytes in, a document or the reason it is broken out. Only the envelope is checked here
(the file's keys, the lesson's id against the file name, the status); whether a lesson fits
its target and kind is the learning package's to say, when a run applies it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from runner.compiler.yaml_loader import Dumper, load_yaml
from runner.errors import CompileError
from runner.overlay.git import OverlayError

LESSONS_DIR = "lessons"
"""The folder of the branch's tree that holds one file per lesson."""
SUFFIX = ".yaml"
LESSON_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
"""What a lesson id may be: it becomes a file name."""
FILE_KEYS = (
    "lesson",
    "workflow",
    "status",
    "demoted",
    "gate",
    "runs",
    "validated_against",
    "promoted_at",
)
"""A lesson file's keys, in the order they are written."""
LESSON_KEYS = ("id", "kind", "target", "content", "rationale", "evidence")
"""A lesson's keys, in the order they are written (others follow, as given)."""
STATUSES = ("active", "demoted")
MAX_BYTES = 1_000_000
"""A lesson file larger than this is not read."""
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")

Status = Literal["active", "demoted", "broken"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LessonFile:
    """One file under ``lessons/`` on the branch, as it is at a commit."""

    id: str
    """The lesson's id: the file's name without ``.yaml``."""
    path: str
    """The file's path in the branch's tree (``lessons/<id>.yaml``)."""
    document: Mapping[str, Any] = field(default_factory=dict)
    """The file's parsed mapping (empty when it is not one)."""
    status: Status
    """``active`` (applied to runs), ``demoted`` (kept, not applied) or ``broken``."""
    blob: str
    """The id of the file's blob."""
    commit: str
    """The commit that last changed the file."""
    problem: str | None = None
    """Why the file is broken (``status == "broken"``), else None."""

    @property
    def lesson(self) -> Mapping[str, Any]:
        """The lesson the file holds (empty for a broken file without one)."""
        found = self.document.get("lesson")
        return found if isinstance(found, Mapping) else {}

    def where(self, branch: str) -> str:
        """``branch:path (commit abc1234)``: where to look at the file."""
        return f"{branch}:{self.path} (commit {self.commit[:7]})"


def lesson_path(lesson_id: str) -> str:
    """The path of a lesson's file in the branch's tree."""
    return f"{LESSONS_DIR}/{lesson_id}{SUFFIX}"


def read(
    name: str, data: bytes, *, branch: str, blob: str, commit: str, kind: str = "blob"
) -> LessonFile:
    """The lesson file ``lessons/NAME`` holding ``data``: active, demoted or broken."""
    path = f"{LESSONS_DIR}/{name}"
    lesson_id = name.removesuffix(SUFFIX)
    document: Mapping[str, Any] = {}
    problem = _name_problem(name, kind)
    if problem is None:
        parsed, problem = _parsed(f"{branch}:{path}", data)
        if isinstance(parsed, Mapping):
            document = parsed
    if problem is None:
        problem = envelope_problem(document, lesson_id)
    status: Status = "broken" if problem else document["status"]
    return LessonFile(
        id=lesson_id,
        path=path,
        document=document,
        status=status,
        blob=blob,
        commit=commit,
        problem=problem,
    )


def _name_problem(name: str, kind: str) -> str | None:
    if kind != "blob":
        return f"is a {'folder' if kind == 'tree' else kind}, not a lesson file"
    if not name.endswith(SUFFIX) or not LESSON_ID.match(name.removesuffix(SUFFIX)):
        return (
            f"is not named <id>{SUFFIX} with an id of lowercase letters, digits, '.', '_' and '-'"
        )
    return None


def _parsed(label: str, data: bytes) -> tuple[Any, str | None]:
    if len(data) > MAX_BYTES:
        return None, f"is larger than {MAX_BYTES:,} bytes"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"is not UTF-8 text (byte {exc.start})"
    try:
        loaded = load_yaml(label, text).data
    except CompileError as exc:
        first = exc.diagnostics[0]
        at = f" at line {first.line}" if first.line is not None else ""
        return None, f"is not valid YAML{at}: {first.message.removeprefix('invalid YAML: ')}"
    if not isinstance(loaded, Mapping):
        return loaded, f"holds a {_type(loaded)}, not a mapping of {', '.join(FILE_KEYS)}"
    return loaded, None


def envelope_problem(document: Mapping[str, Any], lesson_id: str) -> str | None:
    """Why ``document`` is not a lesson file for ``lesson_id``, or None."""
    unknown = [str(key) for key in document if key not in FILE_KEYS]
    if unknown:
        return f"has the unknown key {unknown[0]!r} (a lesson file has {', '.join(FILE_KEYS)})"
    lesson = document.get("lesson")
    if not isinstance(lesson, Mapping):
        return "has no lesson mapping under lesson:"
    if lesson.get("id") != lesson_id:
        return f"holds lesson.id {lesson.get('id')!r}, which is not its file name {lesson_id!r}"
    status = document.get("status")
    if status not in STATUSES:
        return f"has status {status!r}, which is not active or demoted"
    demoted = document.get("demoted")
    if demoted is not None and not (
        isinstance(demoted, Mapping) and isinstance(demoted.get("reason"), str)
    ):
        return "has a demoted: that is not a mapping with a reason"
    if "workflow" in document and not isinstance(document["workflow"], str):
        return f"has a workflow: that is a {_type(document['workflow'])}, not a workflow's name"
    if "gate" in document and not isinstance(document["gate"], Mapping):
        return f"has a gate: that is a {_type(document['gate'])}, not a mapping"
    runs = document.get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(run, str) for run in runs):
        return "has runs: that is not a list of run ids"
    validated = document.get("validated_against")
    if validated is not None and not (isinstance(validated, str) and _COMMIT_ID.match(validated)):
        return "has a validated_against: that is not a 40-hex commit id"
    if not isinstance(document.get("promoted_at", ""), str):
        return "has a promoted_at: that is not an ISO-8601 time"
    return None


def _type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__


def promoted(document: Mapping[str, Any], *, now: str) -> dict[str, Any]:
    """``document`` checked and ordered as a lesson file to promote (active, dated ``now``
    unless it says when); OverlayError when its envelope is wrong."""
    lesson = document.get("lesson")
    if not isinstance(lesson, Mapping) or not isinstance(lesson.get("id"), str):
        raise OverlayError("a lesson file to promote needs a lesson mapping with an id")
    lesson_id = lesson["id"]
    if not LESSON_ID.match(lesson_id):
        raise OverlayError(
            f"lesson id {lesson_id!r} cannot name a file: use lowercase letters, digits, '.', "
            "'_' and '-', starting with a letter or digit, at most 64 characters"
        )
    for key in ("kind", "target"):
        if not isinstance(lesson.get(key), str):
            raise OverlayError(f"lesson {lesson_id!r} has no {key}: give it one")
    filled = {"status": "active", "promoted_at": now, **document}
    if filled["status"] != "active":
        raise OverlayError(f"lesson {lesson_id!r} is promoted with status {filled['status']!r}")
    problem = envelope_problem(filled, lesson_id)
    if problem:
        raise OverlayError(f"the file of lesson {lesson_id!r} {problem}")
    return ordered(filled)


def demoted(document: Mapping[str, Any], *, reason: str, at: str) -> dict[str, Any]:
    """``document`` with the status demoted, and why and when."""
    return ordered({**document, "status": "demoted", "demoted": {"reason": reason, "at": at}})


def ordered(document: Mapping[str, Any]) -> dict[str, Any]:
    """The file's keys, and its lesson's, in the order they are written."""
    lesson = document["lesson"]
    lesson = {
        **{key: lesson[key] for key in LESSON_KEYS if key in lesson},
        **{key: value for key, value in lesson.items() if key not in LESSON_KEYS},
    }
    return {
        key: lesson if key == "lesson" else document[key] for key in FILE_KEYS if key in document
    }


def dump(document: Mapping[str, Any]) -> bytes:
    """The file's bytes: YAML, block style, keys in the order given."""
    text = yaml.dump(
        dict(document),
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return text.encode("utf-8")
