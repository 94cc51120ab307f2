"""``branchleaf learn WORKFLOW``: the learning loop. Split the cases, run the baseline on the
reflection cases, ask the teacher for lessons from those runs, run each candidate (the parent
and one more lesson) on the selection cases, keep the frontier, and after the last round run
every candidate on the held-out cases and let the gate decide; with ``--promote``, commit the
promoted lessons to the overlay branch, and with ``--push`` publish it.

Every run is a recorded run in the state (mode ``learn``) with the memo on, so a candidate
pays only for the calls its lesson changed, and a learn run repeated pays nothing. What the
learn run decided (the split, each round's parent, the frontier and its weights, each lesson
and why it was rejected, each gate decision) is written to ``<workflow>.learn.json`` in the
report folder.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import Any

from rich.console import Console

from runner import ir
from runner.commands.run import overlaid, report_dir
from runner.compiler.pipeline import check_file
from runner.config import MOCK_ONLY, load_config
from runner.errors import CompileError, UsageError
from runner.executor.results import Spend
from runner.humanize import cost
from runner.learning import gate, teacher
from runner.learning.apply import apply, check
from runner.learning.cases import (
    DEFAULT_FRACTIONS,
    CaseRun,
    Split,
    check_cases,
    load_cases_file,
    split,
)
from runner.learning.frontier import Frontier, frontier, pick
from runner.learning.lessons import Lesson, parse_lesson, problem
from runner.learning.record import BASELINE, Candidate, Log, candidate_json, spend_json, table
from runner.learning.student import Allowance, Stopped, Student
from runner.overlay.branch import Overlay
from runner.overlay.use import DEFAULT_BRANCH, record
from runner.plural import plural
from runner.status import Status
from runner.store.db import state_dir


def run(args: argparse.Namespace, console: Console) -> int:
    """Learn; 0 when the loop ran to its end (whatever it promoted), 2 on bad input, 1 when the
    budget ran out, 4 when a provider failed, 130 when interrupted."""
    config = MOCK_ONLY if args.mock else load_config(args.config)
    capabilities = config.capabilities if config.path is not None else None
    checked = check_file(args.workflow, capabilities=capabilities)
    if checked.diagnostics:
        raise CompileError(checked.diagnostics)
    if checked.workflow is None:
        raise UsageError(f"{args.workflow} is not a workflow ({checked.kind}): give a workflow")
    given = checked.workflow
    cases = load_cases_file(args.cases) if args.cases else list(given.cases or ())
    if not cases:
        raise UsageError(
            f"the workflow {given.name!r} declares no cases: add cases: to it, or give a cases "
            "file with --cases FILE (docs/learning.md)"
        )
    problems = check_cases(given, cases)
    if problems:
        raise CompileError(problems)
    _check_numbers(args)
    if args.push and not args.promote:
        raise UsageError("--push publishes what --promote commits: give --promote too")
    if args.promote:
        # A branch that cannot take the lessons is said before anything is paid for.
        Overlay(Path(args.repo), _branch(args)).check_writable()
    fractions = tuple(args.split) if args.split else DEFAULT_FRACTIONS
    parts = split(cases, seed=args.seed, fractions=fractions)
    _say_split(parts, cases, console)
    by_name = {case.name: case for case in cases}

    used = overlaid(given, args, console)
    base_lessons = [parse_lesson(data, "the overlay") for data in used.lessons]
    student = Student(
        state=state_dir(args.state),
        config=config,
        mock_script=args.mock_script,
        allowance=Allowance(calls=args.max_calls, tokens=args.max_tokens, cost_usd=args.max_cost),
        argv=getattr(args, "argv", None),
    )
    log = Log(workflow=given.name, split=parts.rule(), seed=args.seed, overlay=used.record)
    baseline = Candidate(name=BASELINE, lessons=(), workflow=used.workflow, parent=None, round=0)
    candidates: dict[str, Candidate] = {BASELINE: baseline}
    known = dict.fromkeys((lesson.id for lesson in base_lessons), "is active on the overlay")
    cited: dict[str, dict[str, str]] = {}
    """For each lesson proposed, the runs its teacher was shown, by case name."""
    rng = random.Random(args.seed)
    metric = given.metric is not None

    def evaluate(candidate: Candidate, names: tuple[str, ...]) -> None:
        applied = _applied(used.record, base_lessons, candidate)
        for name in names:
            if name not in candidate.runs:
                candidate.runs[name] = student.run_case(
                    candidate.workflow, by_name[name], overlay=applied
                )

    code = 0
    try:
        evaluate(baseline, parts.selection)
        for round_ in range(1, args.rounds + 1):
            front = _frontier(candidates, parts.selection, metric=metric)
            parent = candidates[pick(front, rng) if round_ > 1 else BASELINE]
            log.rounds.append({"round": round_, "frontier": front.to_json(), "parent": parent.name})
            console.print(
                f"round {round_} of {args.rounds}: the teacher reviews {parent.name} on "
                f"{plural(len(parts.reflection), 'reflection case')}",
                markup=False,
            )
            evaluate(parent, parts.reflection)
            shown = [parent.runs[name] for name in parts.reflection]
            reply, teacher_run, result = student.ask_teacher(
                parent.workflow, teacher.brief(parent.workflow, shown, list(known))
            )
            if result.status != Status.SUCCEEDED:
                why = next((n.error for n in result.nodes if n.error), result.reason)
                raise UsageError(
                    f"the teacher's reply (run {teacher_run}) is not a lessons reply: {why}; "
                    "nothing was promoted"
                )
            runs_shown = {run.case: run.run_id for run in shown}
            proposed = _proposed(
                reply,
                shown=runs_shown,
                teacher_run=teacher_run,
                parent=parent,
                known=known,
                console=console,
                log=log,
                round_=round_,
            )
            for lesson in proposed:
                known[lesson.id] = f"was proposed in round {round_}"
                cited[lesson.id] = runs_shown
                name = f"c{len(candidates)}"
                lessons = (*parent.lessons, lesson)
                made = apply(used.workflow, list(lessons))
                if made.rejected:
                    console.print(
                        f"  lesson {lesson.id} is rejected: with {parent.name}'s lessons, "
                        f"{made.rejected[0][1]}",
                        markup=False,
                    )
                    continue
                candidates[name] = Candidate(
                    name=name,
                    lessons=lessons,
                    workflow=made.workflow,
                    parent=parent.name,
                    round=round_,
                )
                console.print(
                    f"  {name} = {parent.name} + {lesson.id} ({lesson.kind} for "
                    f"{lesson.target}): runs the {plural(len(parts.selection), 'selection case')}",
                    markup=False,
                )
                evaluate(candidates[name], parts.selection)
        front = _frontier(candidates, parts.selection, metric=metric)
        log.frontier = front.to_json()
        evaluate(baseline, parts.held_out)
        decisions: dict[str, gate.GateDecision] = {}
        for candidate in list(candidates.values())[1:]:
            evaluate(candidate, parts.held_out)
            decisions[candidate.name] = _decide(candidate, baseline, parts, args)
    except Stopped as stopped:
        console.print(f"stopped: {stopped}", markup=False)
        code = stopped.exit_code
        decisions = {}
    table(candidates, parts, decisions, metric, console)
    promoted = _to_promote(candidates, decisions)
    for candidate in candidates.values():
        decision = decisions.get(candidate.name)
        log.candidates.append(candidate_json(candidate, decision, parts))
    if args.promote and promoted and code == 0:
        _promote(
            promoted,
            decisions=decisions,
            candidates=candidates,
            cited=cited,
            workflow=given,
            args=args,
            console=console,
        )
    elif promoted and code == 0:
        ids = ", ".join(lesson.id for _, lesson in promoted)
        console.print(
            f"the gate promotes {ids}: --promote commits them to {_branch(args)}", markup=False
        )
    elif code == 0:
        console.print("the gate promotes no lesson", markup=False)
    predicted = _predicted(baseline, candidates, len(log.rounds))
    actual = student.spend
    log.spend = {"predicted": spend_json(predicted), "actual": spend_json(actual)}
    console.print(
        f"spend: predicted at most {plural(predicted.calls, 'model call')} without the memo; "
        f"made {plural(actual.calls, 'model call')} ({plural(actual.tokens, 'token')}, "
        f"{cost(actual.cost_usd)}), the memo answered {actual.memo_hits}",
        markup=False,
    )
    path = log.write(report_dir(args))
    console.print(f"learn record written to {path}", markup=False)
    return code


# -- the steps ------------------------------------------------------------------------------


def _check_numbers(args: argparse.Namespace) -> None:
    """The gate's and the budget's figures, checked before anything runs."""
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}: give a number between 0 and 1, such as 0.05")
    if not math.isfinite(args.threshold):
        raise UsageError(f"--threshold {args.threshold}: give a finite number")
    for flag, value in (("--cost-cap", args.cost_cap), ("--max-cost", args.max_cost)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"{flag} {value}: give a number of dollars, 0 or more")


def _say_split(parts: Split, cases: list[ir.Case], console: Console) -> None:
    console.print(
        f"{plural(len(cases), 'case')} split by seed {parts.seed}: "
        f"{len(parts.reflection)} reflection, {len(parts.selection)} selection, "
        f"{len(parts.held_out)} held-out",
        markup=False,
    )
    for case in cases:
        console.print(f"  {case.name}: {parts.of(case.name).replace('_', '-')}", markup=False)


def _frontier(
    candidates: dict[str, Candidate], names: tuple[str, ...], *, metric: bool
) -> Frontier:
    return frontier(
        {
            candidate.name: {case: candidate.runs[case].value(metric=metric) for case in names}
            for candidate in candidates.values()
            if all(case in candidate.runs for case in names)
        }
    )


def _proposed(
    reply: Any,
    *,
    shown: dict[str, str],
    teacher_run: str,
    parent: Candidate,
    known: dict[str, str],
    console: Console,
    log: Log,
    round_: int,
) -> list[Lesson]:
    """The lessons of a teacher's reply that apply to the parent; the others are printed with
    the reason and recorded."""
    out: list[Lesson] = []
    items = reply.get("lessons", []) if isinstance(reply, dict) else []
    console.print(
        f"  the teacher (run {teacher_run}) proposes {plural(len(items), 'lesson')}",
        markup=False,
    )
    for index, data in enumerate(items):
        lesson_id = data.get("id") if isinstance(data, dict) else None
        wrong = problem(data)
        if wrong is None and lesson_id in known:
            wrong = f"a lesson with the id {lesson_id!r} {known[lesson_id]}"
        lesson = None
        if wrong is None:
            lesson = parse_lesson(data, f"lesson {index + 1} of run {teacher_run}")
            wrong = _uncited(lesson, shown) or check(parent.workflow, lesson)
        log.lessons.append(
            {
                "round": round_,
                "teacher_run": teacher_run,
                "lesson": data,
                "rejected": wrong,
            }
        )
        if wrong is not None or lesson is None:
            console.print(f"  lesson {lesson_id or index + 1!s} is rejected: {wrong}", markup=False)
            continue
        out.append(lesson)
    return out


def _decide(
    candidate: Candidate, baseline: Candidate, parts: Split, args: argparse.Namespace
) -> gate.GateDecision:
    outcomes = [
        gate.CaseOutcome(
            case=name,
            baseline_passed=baseline.runs[name].score.passed,
            candidate_passed=candidate.runs[name].score.passed,
            baseline_metric=baseline.runs[name].score.metric,
            candidate_metric=candidate.runs[name].score.metric,
        )
        for name in parts.held_out
    ]
    required = {
        test: all(_test_passed(candidate.runs[name], test) for name in parts.held_out)
        for test in args.require or ()
    }
    return gate.decide(
        outcomes,
        required_tests=required,
        cost=candidate.spend().cost_usd,
        cap=args.cost_cap,
        seed=args.seed,
        alpha=args.alpha,
        threshold=args.threshold,
    )


def _test_passed(run: CaseRun, name: str) -> bool:
    return any(t.name == name and t.passed for t in run.result.tests)


def _to_promote(
    candidates: dict[str, Candidate], decisions: dict[str, gate.GateDecision]
) -> list[tuple[str, Lesson]]:
    """(candidate, lesson) for each lesson of a promoted candidate, each lesson once, the
    candidates that improved the most held-out cases first."""
    chosen = sorted(
        (name for name, decision in decisions.items() if decision.promoted),
        key=lambda name: (-decisions[name].figures["improved"], name),
    )
    out: list[tuple[str, Lesson]] = []
    seen: set[str] = set()
    for name in chosen:
        for lesson in candidates[name].lessons:
            if lesson.id not in seen:
                seen.add(lesson.id)
                out.append((name, lesson))
    return out


def _uncited(lesson: Lesson, shown: dict[str, str]) -> str | None:
    """Why the lesson's evidence rests on nothing the teacher was shown, or None when some of
    it names a reflection case (or its run)."""
    known = {*shown, *shown.values()}
    if any(item.run in known for item in lesson.evidence):
        return None
    cases = ", ".join(sorted(shown)) or "none"
    return (
        f"its evidence cites no run the teacher was shown (runs named: "
        f"{', '.join(sorted({item.run for item in lesson.evidence}))}); cite a reflection case: "
        f"{cases}"
    )


def _promote(
    promoted: list[tuple[str, Lesson]],
    *,
    decisions: dict[str, gate.GateDecision],
    candidates: dict[str, Candidate],
    cited: dict[str, dict[str, str]],
    workflow: ir.Workflow,
    args: argparse.Namespace,
    console: Console,
) -> None:
    repo = Path(args.repo)
    overlay = Overlay(repo, _branch(args))
    head = overlay.git.resolve("HEAD")
    documents = []
    for name, lesson in promoted:
        candidate = candidates[name]
        documents.append(
            {
                "lesson": _cited(lesson, cited.get(lesson.id, {})),
                "workflow": workflow.name,
                "gate": {"candidate": name, **decisions[name].to_json()},
                "runs": sorted({run.run_id for run in candidate.runs.values()}),
                **({"validated_against": head} if head else {}),
            }
        )
    by_lesson = {lesson.id: decisions[name] for name, lesson in promoted}
    commits = overlay.promote(
        documents, trailers_of=lambda doc: by_lesson[doc["lesson"]["id"]].trailers()
    )
    for (name, lesson), commit in zip(promoted, commits, strict=True):
        console.print(
            f"promoted {lesson.id} (from {name}) to {overlay.branch} in commit {commit[:7]}",
            markup=False,
        )
    if args.push:
        overlay.push(args.remote)
        console.print(f"pushed {overlay.branch} to {args.remote}", markup=False)


def _cited(lesson: Lesson, shown: dict[str, str]) -> dict[str, Any]:
    """The lesson as its file holds it: evidence that names a reflection case (as the teacher
    is shown them) names the run of that case that the teacher was shown instead."""
    data = lesson.to_json()
    for item in data["evidence"]:
        item["run"] = shown.get(item["run"], item["run"])
    return data


def _branch(args: argparse.Namespace) -> str:
    return getattr(args, "overlay_branch", None) or DEFAULT_BRANCH


def _applied(
    base: dict[str, Any] | None, base_lessons: list[Lesson], candidate: Candidate
) -> dict[str, Any] | None:
    """What a candidate's run records as the lessons it applied: the overlay's, then its own."""
    if base is None and not candidate.lessons:
        return None
    applied = record(
        base["branch"] if base else None,
        base["commit"] if base else None,
        [*base_lessons, *candidate.lessons],
    )
    return {**applied, "candidate": candidate.name}


def _predicted(baseline: Candidate, candidates: dict[str, Candidate], rounds: int) -> Spend:
    """What the runs would have cost without the memo: each candidate's runs at the
    baseline's calls per case (its calls and the memo's answers), and a teacher call a round."""
    runs = list(baseline.runs.values())
    per_case = (
        sum(run.spend.calls + run.spend.memo_hits for run in runs) / len(runs) if runs else 0.0
    )
    cases = sum(len(candidate.runs) for candidate in candidates.values())
    return Spend(calls=round(per_case * cases) + rounds)
