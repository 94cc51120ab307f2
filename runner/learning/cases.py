"""Evaluation cases: a cases file read, cases checked against a workflow's inputs, the seeded
split into reflection, selection and held-out sets, and one case's run scored.

Pure, except :func:`load_cases_file`, which reads the file (through ``runner.userfiles``).

The split rule, recorded by :meth:`Split.rule`:

1. Order: the cases sorted by the SHA-256 hex digest of ``f"{seed}:{name}"`` (UTF-8), so the
   order depends on the seed and the names only, never on the order the cases are given in.
2. Cut: with ``n`` cases and the fractions ``(r, s, h)`` read as the decimals they print as
   (``0.3`` is exactly 3/10), the first cut is ``floor(n*r + 1/2)`` clamped to ``[1, n-2]``
   and the second ``floor(n*(r+s) + 1/2)`` clamped to ``[first+1, n-1]``. Reflection is the
   order before the first cut, selection the order from it to the second, held-out the rest:
   disjoint, covering every case, each set non-empty (which needs ``n >= 3``).

What it promises when one case is added or removed, with the seed, the fractions and the other
names unchanged: the others keep their order, and each cut moves by at most one place, so at
most two of the other cases change set, each only to a neighbouring one (reflection and
selection, or selection and held-out); every other case stays where it was. Nothing is
promised across a change of seed or fractions, or for a renamed case, which is a new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from runner import explain, ir
from runner.canonical import content_hash, freeze, thaw
from runner.compiler.case_inputs import case_findings
from runner.compiler.schema import definitions_diagnostics
from runner.compiler.source import Document, Location
from runner.errors import CompileError, Diagnostic, UsageError
from runner.executor.results import RunResult, Spend, TestResult
from runner.render import RenderError, Scope, evaluate
from runner.userfiles import UnreadableFile, read_user_text

SplitName = Literal["reflection", "selection", "held_out"]
SPLITS: tuple[SplitName, ...] = ("reflection", "selection", "held_out")
"""The three sets, in the order the rule cuts them."""
DEFAULT_FRACTIONS = (0.3, 0.3, 0.4)
"""The shares of reflection, selection and held-out cases."""
MIN_CASES = len(SPLITS)
"""Fewest cases a split takes: one for each set."""

_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".jsonl": "jsonl"}
_SHAPE = (
    "A cases file is YAML or JSON holding a list of cases (- {name: ..., inputs: {...}}) or a "
    "mapping with cases: [...], or JSONL with one case object per line."
)
_CASE_LIST: dict[str, Any] = {"type": "array", "items": {"$ref": "#/$defs/case"}}
_CASES_MAPPING: dict[str, Any] = {
    "type": "object",
    "properties": {"cases": _CASE_LIST},
    "required": ["cases"],
    "additionalProperties": False,
}


class CasesFileError(CompileError):
    """A cases file that cannot be read or whose cases are malformed (exit 2); carries every
    Diagnostic found, file:line:col."""


class SplitError(UsageError):
    """Cases that cannot be split as asked: too few, names given twice, bad fractions."""


# -- a cases file ---------------------------------------------------------------------------


def load_cases_file(path: str) -> list[ir.Case]:
    """The cases of a YAML or JSON file (a list, or ``{cases: [...]}``) or a JSONL file (one
    case per line, blank lines skipped); CasesFileError with every problem and its place."""
    language = _SUFFIXES.get(Path(path).suffix.lower())
    if language is None:
        raise _file_error(
            path, "not a cases file: its name must end in .yaml, .yml, .json or .jsonl"
        )
    try:
        text = read_user_text(path)
    except UnreadableFile as exc:
        raise _file_error(path, f"the cases file {exc.reason}", line=exc.line, col=exc.col) from exc
    if not text.strip():
        raise _file_error(path, "the cases file is empty", line=1, col=1, hint=_SHAPE)
    if language == "jsonl":
        return _jsonl_cases(path, text)
    from runner.compiler.yaml_loader import load_json, load_yaml

    try:
        document = load_json(path, text) if language == "json" else load_yaml(path, text)
    except CompileError as exc:
        raise CasesFileError(exc.diagnostics) from exc
    data: Any = document.data
    if isinstance(data, list):
        base = ""
    elif isinstance(data, dict):
        base = "/cases"
    else:
        message = f"the cases file holds {_what(data)}, not a list of cases"
        raise CasesFileError([document.diagnostic("", message, rule="schema", hint=_SHAPE)])
    problems = definitions_diagnostics(_as_mapping(document), _CASES_MAPPING)
    if problems:
        raise CasesFileError([_back(problem, base) for problem in problems])
    items: list[Any] = data if base == "" else data["cases"]
    return [_case(item, path, document.locate(f"{base}/{i}")) for i, item in enumerate(items)]


def _what(scalar: Any) -> str:
    if scalar is None:
        return "null"
    if isinstance(scalar, bool):
        return "true or false"
    return "text" if isinstance(scalar, str) else "a number"


def _as_mapping(document: Document) -> Document:
    """A file holding a bare list of cases, seen as ``{cases: [...]}``: its messages then
    name ``cases[1].name`` as they would in a workflow, not ``[1].name``."""
    if not isinstance(document.data, list):
        return document

    def locate(pointer: str) -> Location | None:
        inside = pointer.removeprefix("/cases")
        return document.locator(inside) if inside != pointer else None

    return dataclasses.replace(document, data={"cases": document.data}, locator=locate)


def _back(problem: Diagnostic, base: str) -> Diagnostic:
    """A problem found on ``_as_mapping``'s view, with the pointer of the file itself."""
    pointer = problem.pointer or ""
    if base or not pointer.startswith("/cases"):
        return problem
    return dataclasses.replace(problem, pointer=pointer.removeprefix("/cases") or None)


def _jsonl_cases(path: str, text: str) -> list[ir.Case]:
    from runner.compiler.yaml_loader import load_json

    problems: list[Diagnostic] = []
    cases: list[ir.Case] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # Read as a JSON workflow file is: a key given twice is refused, not dropped.
            read = load_json(path, line)
        except CompileError as exc:
            problems += [_on_line(problem, number) for problem in exc.diagnostics]
            continue
        document = dataclasses.replace(read, locator=_shifted(read, number))
        found = definitions_diagnostics(document, {"$ref": "#/$defs/case"})
        problems += [_on_line(problem, number) for problem in found]
        if not found:
            cases.append(_case(document.data, path, (path, number, 1)))
    if problems:
        raise CasesFileError(problems)
    return cases


def _shifted(read: Document, number: int) -> Callable[[str], Location | None]:
    """Positions in the line ``number`` of a JSONL file, from those in the line read alone."""

    def locate(pointer: str) -> Location | None:
        found = read.locate(pointer)
        return (read.path, number, found[2] if found else 1)

    return locate


def _on_line(problem: Diagnostic, number: int) -> Diagnostic:
    """A problem of the case on one line of a JSONL file, said so (its pointer is the line's)."""
    message = problem.message.replace(" at the top level", f" in the case on line {number}")
    if message.startswith("the document "):
        message = f"line {number} " + message.removeprefix("the document ")
    elif problem.rule == "syntax":
        message = f"line {number} is not a case: {message}"
    if problem.pointer:
        message += f" (at {problem.pointer} on that line)"
    return dataclasses.replace(problem, message=message, pointer=None, line=number)


def _case(data: Mapping[str, Any], path: str, where: Location | None) -> ir.Case:
    return ir.Case(
        name=data["name"],
        inputs=freeze(data["inputs"]),
        description=data.get("description"),
        source=path,
        source_line=where[1] if where else None,
    )


def _file_error(
    path: str,
    message: str,
    *,
    line: int | None = None,
    col: int | None = None,
    hint: str | None = None,
) -> CasesFileError:
    return CasesFileError(
        [Diagnostic(file=path, line=line, col=col, rule="syntax", message=message, hint=hint)]
    )


# -- checked against a workflow -------------------------------------------------------------


def check_cases(workflow: ir.Workflow, cases: Sequence[ir.Case]) -> list[Diagnostic]:
    """Every problem of ``cases`` for ``workflow``, as its own ``cases`` are checked: unique
    names, declared inputs set to values of their types, every input without a default set.
    A case from a cases file is placed at its line there; a workflow's own case at its
    pointer in the workflow."""
    found = []
    inputs = dict(workflow.inputs or ())

    def earlier(index: int) -> str:
        case = cases[index]
        if case.source:
            return f"the case on line {case.source_line} of {case.source}"
        return f"cases[{index}]"

    for finding in case_findings(inputs, cases, earlier=earlier):
        case = cases[finding.index]
        if case.source:
            where: dict[str, Any] = {"file": case.source, "line": case.source_line}
        else:
            where = {"file": workflow.source, "pointer": f"/cases/{finding.index}{finding.pointer}"}
        found.append(Diagnostic(**where, rule="cases", message=finding.message, hint=finding.hint))
    return found


def case_inputs(workflow: ir.Workflow, case: ir.Case) -> dict[str, Any]:
    """The inputs a run of ``case`` takes: its values, then the declared defaults, as
    ``--input`` values are taken (the case must have passed :func:`check_cases`)."""
    given = thaw(case.inputs) or {}
    values = {}
    for name, spec in workflow.inputs or ():
        if name in given:
            values[name] = given[name]
        elif spec.has_default:
            values[name] = thaw(spec.default)
        else:
            raise UsageError(
                f"case {case.name!r} does not set the input {name!r} of the workflow "
                f"{workflow.name!r}, which has no default: check the cases first"
            )
    return values


# -- the split ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """Cases split by the seeded rule (see the module's docstring) into three disjoint sets."""

    seed: int
    """The seed the order is drawn with."""
    fractions: tuple[float, float, float]
    """The shares of reflection, selection and held-out cases."""
    order: tuple[str, ...]
    """Every case's name, in the rule's order."""
    reflection: tuple[str, ...]
    """What the teacher sees, in the rule's order."""
    selection: tuple[str, ...]
    """What ranks candidates, in the rule's order."""
    held_out: tuple[str, ...]
    """What the promotion gate decides on, in the rule's order."""

    def of(self, name: str) -> SplitName:
        """The set the case ``name`` is in; KeyError for a name not split."""
        for which in SPLITS:
            if name in getattr(self, which):
                return which
        raise KeyError(f"no case named {name!r} was split")

    def rule(self) -> dict[str, Any]:
        """The rule and its outcome as JSON, for the trace: enough to check the split again."""
        return {
            "rule": "sha256-order-cut",
            "key": "sha256(f'{seed}:{name}')",
            "seed": self.seed,
            "fractions": list(self.fractions),
            "cuts": [len(self.reflection), len(self.reflection) + len(self.selection)],
            "order_hash": content_hash(list(self.order)),
            "reflection": list(self.reflection),
            "selection": list(self.selection),
            "held_out": list(self.held_out),
        }


def split(
    cases: Sequence[ir.Case],
    *,
    seed: int,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> Split:
    """``cases`` split into reflection, selection and held-out sets by the seeded rule;
    SplitError for fewer than three cases, a name given twice, or fractions that are not three
    positive numbers adding up to 1."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SplitError(f"the split seed must be an integer, not {seed!r}")
    shares = _shares(fractions)
    names = [case.name for case in cases]
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        raise SplitError(f"the case name {twice!r} is given twice: every case needs its own name")
    n = len(names)
    if n < MIN_CASES:
        raise SplitError(
            f"splitting cases into reflection, selection and held-out sets needs at least "
            f"{MIN_CASES} cases, one for each; {n} {'was' if n == 1 else 'were'} given: add "
            f"{MIN_CASES - n} more"
        )
    order = tuple(sorted(names, key=lambda name: _order_key(seed, name)))
    first = _clamp(_round_half_up(n * shares[0]), 1, n - 2)
    second = _clamp(_round_half_up(n * (shares[0] + shares[1])), first + 1, n - 1)
    return Split(
        seed=seed,
        fractions=(float(fractions[0]), float(fractions[1]), float(fractions[2])),
        order=order,
        reflection=order[:first],
        selection=order[first:second],
        held_out=order[second:],
    )


def _order_key(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def _shares(fractions: Sequence[float]) -> tuple[Fraction, Fraction, Fraction]:
    """The fractions as exact decimals; SplitError unless three positive numbers summing to 1
    (to within 1e-9, so that thirds written as 0.3333333333 are taken)."""
    refused = SplitError(
        f"the split fractions {tuple(fractions)!r} must be three numbers greater than 0 for "
        "reflection, selection and held-out that add up to 1, such as (0.3, 0.3, 0.4)"
    )
    if len(fractions) != len(SPLITS):
        raise refused
    for share in fractions:
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise refused
        if not math.isfinite(share) or share <= 0:
            raise refused
    exact = tuple(Fraction(str(share)) for share in fractions)
    if abs(sum(exact, Fraction(0)) - 1) > Fraction(1, 10**9):
        raise refused
    return exact[0], exact[1], exact[2]


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


# -- scoring one case's run -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseScore:
    """How one run of a case scored."""

    passed: bool
    """Whether the run succeeded and every test of the workflow passed."""
    failed_tests: tuple[str, ...]
    """The names of the tests that failed, in the workflow's order."""
    metric: float | None
    """The metric's value, when the workflow declares one and it is a number."""
    metric_error: str | None
    """Why a declared metric has no value (it failed, or is not a number); ``None`` else."""


def score(
    workflow: ir.Workflow,
    outputs: Mapping[str, Any],
    test_results: Sequence[TestResult],
    *,
    inputs: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    run_succeeded: bool = True,
) -> CaseScore:
    """One case's run scored: pass/fail by its tests, and the workflow's metric evaluated with
    the expression engine the tests use, over the same names (``outputs``, and the run's
    ``inputs`` and ``env`` when the metric reads them). A run that did not succeed
    (``run_succeeded`` false) fails whatever its tests say; its metric is still read."""
    failed = tuple(result.name for result in test_results if not result.passed)
    passed = run_succeeded and not failed
    if workflow.metric is None:
        return CaseScore(passed=passed, failed_tests=failed, metric=None, metric_error=None)
    scope = Scope(inputs=inputs or {}, outputs=outputs, env=env or {})
    value, error = _metric(workflow.metric, scope)
    return CaseScore(passed=passed, failed_tests=failed, metric=value, metric_error=error)


def _metric(source: str, scope: Scope) -> tuple[float | None, str | None]:
    try:
        value = evaluate(source, scope)
    except RenderError as exc:
        return None, f"the metric {source!r} could not be evaluated: {exc}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"the metric {source!r} is {explain.shown(value)}, not a number"
    try:
        number = float(value)
    except OverflowError:  # an integer past the largest float
        number = math.inf
    if not math.isfinite(number):
        return None, f"the metric {source!r} is {explain.shown(value)}, not a finite number"
    return number, None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseRun:
    """One case run by one candidate."""

    case: str
    """The case's name."""
    run_id: str
    """The recorded run."""
    score: CaseScore
    """How it scored."""
    spend: Spend
    """What it cost, memo hits included."""
    result: RunResult
    """The run's result, for the evidence the teacher is shown."""

    def value(self, *, metric: bool) -> float:
        """The case's score for the frontier: the metric (a run without one scores -inf), or
        1 for a pass and 0 for a fail."""
        if metric:
            return self.score.metric if self.score.metric is not None else -math.inf
        return 1.0 if self.score.passed else 0.0
