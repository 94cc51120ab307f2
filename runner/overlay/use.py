"""Runs apply the overlay: the active lessons of the overlay branch meant for a workflow, read
straight from the branch (nothing is checked out) and applied to the compiled workflow before
it runs.

A lesson file names the workflow it was learned for (``workflow``); a file that names none
applies to every workflow whose nodes it fits. A lesson that does not fit the workflow (its
target is gone, its content does not fit its kind) and a broken file are left out, each with a
note saying why; the run goes on without them. What a run applied is recorded with it
(:func:`record`): the branch, its commit, each lesson in full and their digest, so a replay
applies exactly the same lessons whatever the branch holds by then (:func:`reapply`).

Outside a git repository, or where the branch does not exist, there is nothing to apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import ir
from runner.errors import ConfigError
from runner.learning.apply import applied_digest, apply
from runner.learning.lessons import Lesson, parse_lesson, problem
from runner.overlay.branch import Overlay
from runner.overlay.git import NotARepository, OverlayError

DEFAULT_BRANCH = "cached-main"


@dataclass(frozen=True, slots=True)
class Used:
    """What applying the overlay to one workflow came to."""

    workflow: ir.Workflow
    """The workflow to run: with the lessons applied, or the one given when none were."""
    record: dict[str, Any] | None
    """What the run records of it (None: no lesson applied)."""
    notes: tuple[str, ...]
    """Lessons left out and why, one sentence each, for standard error."""

    @property
    def lessons(self) -> list[dict[str, Any]]:
        """The lessons applied, as recorded."""
        return list(self.record["lessons"]) if self.record else []


def overlay_for(workflow: ir.Workflow, *, repo: Path, branch: str = DEFAULT_BRANCH) -> Used:
    """The overlay's active lessons for ``workflow`` applied to it."""
    try:
        overlay = Overlay(repo, branch)
        tip = overlay.tip()
        files = overlay.lessons(tip) if tip is not None else []
    except NotARepository:
        return Used(workflow, None, ())
    except OverlayError as exc:
        return Used(workflow, None, (f"the overlay is not applied: {exc}",))
    if tip is None:
        return Used(workflow, None, ())
    notes: list[str] = []
    lessons: list[Lesson] = []
    for found in files:
        where = found.where(branch)
        if found.status == "broken":
            notes.append(f"the overlay lesson {where} is not applied: it {found.problem}")
            continue
        if found.status != "active":
            continue
        meant = found.document.get("workflow")
        if meant is not None and meant != workflow.name:
            continue
        wrong = problem(found.lesson)
        if wrong is not None:
            notes.append(f"the overlay lesson {where} is not applied: {wrong}")
            continue
        lessons.append(parse_lesson(found.lesson, where))
    if not lessons:
        return Used(workflow, None, tuple(notes))
    applied = apply(workflow, lessons)
    for lesson_id, reason in applied.rejected:
        notes.append(
            f"the overlay lesson {lesson_id!r} ({branch} at {tip[:7]}) is not applied to "
            f"{workflow.name!r}: {reason}"
        )
    if not applied.applied:
        return Used(workflow, None, tuple(notes))
    return Used(
        applied.workflow, record(branch, tip, _chosen(lessons, applied.applied)), tuple(notes)
    )


def record(branch: str | None, commit: str | None, lessons: list[Lesson]) -> dict[str, Any]:
    """What a run records of the lessons it applied (from ``branch`` at ``commit``; None for
    a learn candidate's lessons without an overlay)."""
    return {
        "branch": branch,
        "commit": commit,
        "lessons": [lesson.to_json() for lesson in lessons],
        "digest": applied_digest(lessons),
    }


def reapply(workflow: ir.Workflow, recorded: Mapping[str, Any]) -> ir.Workflow:
    """``workflow`` with the lessons a run recorded applied again, for its replay; a
    ConfigError when one no longer fits (the workflow given changed since the run)."""
    lessons = [
        parse_lesson(data, f"the lessons the run applied ({recorded.get('branch')})")
        for data in recorded.get("lessons") or ()
    ]
    if not lessons:
        return workflow
    applied = apply(workflow, lessons)
    if applied.rejected:
        lesson_id, reason = applied.rejected[0]
        raise ConfigError(
            f"the run applied the overlay lesson {lesson_id!r}, which does not fit the workflow "
            f"given: {reason}; replay without naming a workflow file, to use the run's own"
        )
    return applied.workflow


def _chosen(lessons: list[Lesson], order: tuple[str, ...] | list[str]) -> list[Lesson]:
    by_id = {lesson.id: lesson for lesson in lessons}
    return [by_id[lesson_id] for lesson_id in order]
