"""Rendering and reading at run time, pure: templates and expressions against what a node may
see, replies checked against a leaf's output schema, and ``--input k=v`` typed by the
workflow's declared inputs."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, Undefined, nodes
from jinja2.exceptions import TemplateError

from runner import explain, ir, watchdog
from runner.canonical import thaw
from runner.errors import UsageError
from runner.expressions import (
    compile_part,
    compile_template,
    compile_watched_expression,
    environment,
    may_run_long,
    parse_expression,
)
from runner.jsontext import JSONProblem, escape_surrogates, has_lone_surrogate, parse_json
from runner.limits import MAX_TEXT, MAX_VALUE, LimitError, check_weight
from runner.schemas import compiled


class RenderError(Exception):
    """A template or expression that failed at run time (an undefined name, a bad operation)."""


class OutputError(Exception):
    """A reply that is not valid JSON for the leaf's output schema, even after repair."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Everything a template or expression of one node may read."""

    inputs: Mapping[str, Any]
    """The run's inputs, defaults applied."""
    outputs: Mapping[str, Any]
    """Outputs of the nodes finished before this one, by id."""
    env: Mapping[str, str] = field(default_factory=dict)
    """The declared environment entries."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    """Loop and expand variables, ``iteration``, ``candidate``, ``sample``."""

    def names(self) -> dict[str, Any]:
        """The mapping Jinja renders against."""
        return {
            **self.variables,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "env": self.env,
        }

    def with_variables(self, **variables: Any) -> Scope:
        """The same scope with more variables bound."""
        return Scope(
            inputs=self.inputs,
            outputs=self.outputs,
            env=self.env,
            variables={**self.variables, **variables},
        )


@functools.lru_cache(maxsize=4096)
def _template(source: str) -> tuple[Template, bool]:
    return compile_template(source)


@functools.lru_cache(maxsize=4096)
def _expression(source: str) -> tuple[Any, bool]:
    return compile_watched_expression(source)


_NAME_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@functools.lru_cache(maxsize=4096)
def _plain_parts(source: str) -> tuple[str, ...] | None:
    """Text and bare ``{{ name }}`` tags, alternating (text first), when that is all there is;
    ``None`` when the template needs Jinja."""
    if "\r" in source:
        return None
    parts = _NAME_TAG.split(source)
    if any("{" in text for text in parts[::2]):
        return None
    if parts[-1].endswith("\n"):  # Jinja drops one trailing newline
        parts[-1] = parts[-1][:-1]
    return tuple(parts)


def render(source: str, scope: Scope) -> str:
    """Render a template; raises RenderError with Jinja's reason."""
    parts = _plain_parts(source)
    if parts is not None:
        # Text and bare names render as Jinja renders them, without building a context.
        if len(parts) == 1:
            return parts[0]
        names = scope.names()
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            if parts[i] not in names:
                break  # a global, or undefined: Jinja says which
            out.append(str(names[parts[i]]))
            out.append(parts[i + 1])
        else:
            return "".join(out)
    names = scope.names()
    try:
        template, watched = _template(source)
        if not watched:
            return _bounded_render(template, names)
        return watchdog.guarded(lambda: _bounded_render(template, names))
    except explain.Missing as exc:
        raise RenderError(_undefined(exc, environment().parse(source), names)) from exc
    except _FAILURES as exc:
        raise RenderError(_reason(exc)) from exc
    except NameError as exc:
        raise RenderError(_non_finite(exc)) from exc


def evaluate(source: str, scope: Scope) -> Any:
    """Evaluate an expression; raises RenderError with Jinja's reason."""
    names = scope.names()
    try:
        expression, watched = _expression(source)
        value = watchdog.guarded(lambda: expression(**names)) if watched else expression(**names)
        check_weight("the value", value, MAX_VALUE)  # outputs are written as JSON, in C
        if isinstance(value, Undefined):
            str(value)  # a strict undefined raises its own, precise, error when used
        return value
    except explain.Missing as exc:
        raise RenderError(_undefined(exc, parse_expression(source), names)) from exc
    except _FAILURES as exc:
        raise RenderError(_reason(exc)) from exc
    except NameError as exc:
        raise RenderError(_non_finite(exc)) from exc


def _undefined(exc: explain.Missing, tree: nodes.Node, names: dict[str, Any]) -> str:
    """Why a name is undefined, the nearest among the scope's names, Jinja's globals and the
    names the template binds itself (``{% for r in ... %}``)."""
    bound = {
        n.name
        for n in tree.find_all(nodes.Name)
        if isinstance(n, nodes.Name) and n.ctx in ("store", "param")
    }
    return explain.undefined(exc, tree, {*names, *environment().globals, *bound})


def unmet(source: str, value: Any, scope: Scope, redact: Callable[[str], str] = str) -> str:
    """Why the expectation ``source`` of a test, which evaluated to ``value``, does not hold:
    for a comparison, the values it compared (``got 1 == 0``), each without the secrets
    ``redact`` takes out."""
    names = scope.names()
    tree = parse_expression(source)

    def side(part: Any) -> Any:
        compiled = compile_part(part)
        return compiled(**names)

    try:
        if may_run_long(tree):
            compared = watchdog.guarded(lambda: explain.comparison(tree, side, redact))
        else:
            compared = explain.comparison(tree, side, redact)
    except (*_FAILURES, NameError):
        compared = None  # a side that fails alone says nothing the value does not
    return f"expected {source!r} to hold, got {compared or explain.shown(value, redact)}"


_FAILURES = (
    TemplateError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AssertionError,
    RecursionError,
    MemoryError,
    LimitError,
    watchdog.Stopped,
)


def _bounded_render(template: Template, names: dict[str, Any]) -> str:
    """``template.render(names)``, stopped once the text passes MAX_TEXT characters."""
    parts = []
    size = 0
    for part in template.root_render_func(template.new_context(names)):
        size += len(part)
        if size > MAX_TEXT:
            raise LimitError(
                f"the rendered text is longer than the limit of {MAX_TEXT:,} characters"
            )
        parts.append(part)
    return "".join(parts)


def _reason(exc: BaseException) -> str:
    """What went wrong, as the node's failure says it."""
    if isinstance(exc, LimitError | watchdog.Stopped):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "the template recurses too deeply (a macro that calls itself without end?)"
    if isinstance(exc, MemoryError):
        return "the template ran out of memory"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "a number of more than 4300 digits cannot be turned into text"
    if isinstance(exc, AssertionError):
        return f"a filter was given a value it cannot use: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _non_finite(exc: NameError) -> str:
    """Jinja folds a constant NaN or infinity (``"nan" | float``, ``1e400``) into code that
    names ``nan`` or ``inf``, which then fails as a NameError; say what it means. (Printed in
    a template, ``{{ 1e400 }}``, such a constant is text, ``inf``, and works.)"""
    if exc.name in ("nan", "inf"):
        return "the expression makes NaN or infinity, which is not a JSON number"
    raise exc


_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n?(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)


def parse_reply(text: str, schema: Any) -> Any:
    """The reply as JSON valid for ``schema``; one repair pass strips code fences."""
    checker = compiled(schema)
    check = checker.check
    if check is not None:  # the usual reply: plain JSON that fits a simple schema
        try:
            value = parse_json(text)
        except JSONProblem:
            pass
        else:
            if check(value):
                return value
    problem = ""
    for attempt in _readings(text):
        try:
            # A model's text is read like any JSON from outside: nested past the bound, it
            # would exhaust the stack here or in every later stage that walks it.
            value = parse_json(attempt)
        except JSONProblem as exc:
            if exc.line is None:
                problem = f"the reply cannot be used: {exc.message}"
            else:
                reason = exc.message.removeprefix("invalid JSON: ")
                problem = f"the reply is not JSON ({reason} at line {exc.line} column {exc.col})"
            continue
        if checker.check is not None and checker.check(value):
            return value
        error = next(iter(checker.validator.iter_errors(value)), None)
        if error is None:
            return value
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        problem = f"the reply does not match the output schema at {where}: {error.message}"
    raise OutputError(problem)


def _readings(text: str) -> Iterator[str]:
    """The reply as sent, then, if it is fenced, what the fence holds (looked for only when
    the reply as sent did not do)."""
    yield text
    fenced = _FENCE.match(text)
    if fenced:
        yield fenced.group("body")


_EXAMPLES = {
    "integer": "3",
    "number": "0.5",
    "boolean": "true",
    "array": '["a", "b"]',
    "object": '{"key": "value"}',
}


def _shown_input(raw: str, limit: int = 60) -> str:
    """An ``--input`` value as a message can print it: bytes that were not UTF-8 in the
    command line (surrogate escapes) written as ``\\xNN``, and long values shortened."""
    text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = escape_surrogates(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_input(name: str, kind: ir.InputType, raw: str) -> Any:
    given = f"--input {name}={_shown_input(raw)}"
    if has_lone_surrogate(raw):  # a byte that is not UTF-8, as argv decodes it
        raise UsageError(
            f"{given} is not UTF-8 text: give the value in UTF-8 (a byte of another "
            "encoding cannot be stored or shown)"
        )
    if kind == "string":
        return raw
    try:
        value = parse_json(raw)
    except JSONProblem as exc:
        if exc.line is not None:  # not JSON at all
            raise UsageError(
                f"{given} is not a valid {kind}: write it as JSON, e.g. {_EXAMPLES[kind]}"
            ) from exc
        reason = exc.message.replace("the value nests", "it nests")
        raise UsageError(f"{given} cannot be used: {reason}") from exc
    checks = {
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if not checks[kind](value):
        article = "an" if kind[0] in "aeiou" else "a"
        raise UsageError(f"{given} is not {article} {kind}, as the workflow declares it")
    return value


def resolve_inputs(workflow: ir.Workflow, given: Mapping[str, str]) -> dict[str, Any]:
    """The run's inputs: ``--input`` values typed by their declaration, then the defaults."""
    declared = dict(workflow.inputs or ())
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise UsageError(
            f"the workflow {workflow.name!r} has no input {unknown[0]!r} (declared: {known})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = _parse_input(name, spec.type, given[name])
        elif spec.has_default:
            values[name] = thaw(spec.default)
        else:
            raise UsageError(
                f"the workflow {workflow.name!r} needs the input {name!r} ({spec.type}): "
                f"give it with --input {name}=..."
            )
    return values
