"""``branchleaf overlay list|show ID|demote ID|revert ID``: the lessons on the overlay branch."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.overlay.branch import Overlay
from runner.overlay.files import LessonFile
from runner.overlay.git import OverlayError
from runner.plural import plural

COLOURS = {"active": "green", "demoted": "yellow", "broken": "red"}


def run(args: argparse.Namespace, console: Console) -> int:
    """Dispatch to the verb; exit 2 for a repository, branch or lesson that is not there."""
    overlay = _overlay(args)
    if args.verb == "demote":
        commit = overlay.demote(args.lesson, args.reason)
        console.print(
            f"demoted lesson {args.lesson} on {overlay.branch} in commit {commit[:7]}: "
            "runs no longer apply it",
            markup=False,
        )
        return 0
    if args.verb == "revert":
        commit = overlay.revert(args.lesson, args.reason)
        console.print(
            f"removed lesson {args.lesson} from {overlay.branch} in commit {commit[:7]}",
            markup=False,
        )
        return 0
    tip = overlay.tip()
    if tip is None:
        raise OverlayError(
            f"there is no branch {overlay.branch} in {overlay.where}: `branchleaf learn "
            "--promote` creates it, or name another with --branch NAME"
        )
    if args.verb == "show":
        return _show(overlay, overlay.find(args.lesson, tip), tip, console)
    return _list(overlay, overlay.lessons(tip), tip, console)


def _overlay(args: argparse.Namespace) -> Overlay:
    repo = Path(args.repo)
    if not repo.is_dir():
        raise OverlayError(f"{repo} is not a folder: give the repository with --repo PATH")
    return Overlay(repo, args.branch)


def _list(overlay: Overlay, found: list[LessonFile], tip: str, console: Console) -> int:
    counts = Counter(f.status for f in found)
    kept = [f"{counts[s]} {s}" for s in ("active", "demoted") if counts[s]]
    broken = [f for f in found if f.status == "broken"]
    summary = plural(len(found) - len(broken), "lesson") + (f" ({', '.join(kept)})" if kept else "")
    if broken:
        summary += f", {plural(len(broken), 'broken file')}"
    console.print(f"{overlay.branch} at {tip[:7]}: {summary}", markup=False)
    if not found:
        return 0
    table = Table(box=None, pad_edge=False, title_justify="left")
    for column in ("lesson", "status", "kind", "target", "promoted", "commit", "note"):
        table.add_column(column, no_wrap=column != "note")
    for lesson_file in found:
        lesson = lesson_file.lesson
        document = lesson_file.document
        demoted = document.get("demoted")
        note = lesson_file.problem or (
            demoted.get("reason", "") if isinstance(demoted, dict) else ""
        )
        table.add_row(
            escape(lesson_file.id),
            f"[{COLOURS[lesson_file.status]}]{lesson_file.status}[/]",
            escape(str(lesson.get("kind", ""))),
            escape(str(lesson.get("target", ""))),
            escape(str(document.get("promoted_at", ""))),
            lesson_file.commit[:7],
            escape(str(note)),
        )
    console.print(table, width=max(console.width, 120))
    if broken:
        raise OverlayError(_broken(overlay, broken[0], more=len(broken) - 1))
    return 0


def _show(overlay: Overlay, lesson_file: LessonFile, tip: str, console: Console) -> int:
    colour = COLOURS[lesson_file.status]
    console.print(
        f"lesson {escape(lesson_file.id)} on {escape(overlay.branch)}: "
        f"[{colour}]{lesson_file.status}[/]"
    )
    console.print(f"file: {overlay.branch}:{lesson_file.path}", markup=False)
    console.print("history:", markup=False)
    for commit, date, subject in overlay.history(lesson_file.path, tip):
        console.print(f"  {commit[:7]} {date} {subject}", markup=False)
    console.print("", markup=False)
    text = overlay.git.blobs([lesson_file.blob]).get(lesson_file.blob, b"")
    console.print(text.decode("utf-8", "replace").rstrip("\n"), markup=False, highlight=False)
    if lesson_file.status == "broken":
        raise OverlayError(_broken(overlay, lesson_file, more=0))
    return 0


def _broken(overlay: Overlay, lesson_file: LessonFile, *, more: int) -> str:
    others = f" (and {plural(more, 'other broken file')})" if more else ""
    return (
        f"{lesson_file.where(overlay.branch)} {lesson_file.problem}, so runs do not apply it"
        f"{others}: fix the file, or remove it with "
        f"`branchleaf overlay revert {lesson_file.id} --reason TEXT`"
    )
