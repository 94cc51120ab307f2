"""Templates and expressions: Jinja2 in a sandbox, and what a piece of source reads.

Workflows see only the names the runner hands them (``inputs``, ``outputs``, loop and expand
variables, ``iteration``, declared ``env`` entries): no files, no network, no Python objects. The
environment is immutable, undefined names are errors, and the sources of randomness Jinja ships
(the ``random`` filter, ``lipsum``) are removed so that a replay renders the same text. What one
operation may build is bounded (``runner.limits``): the operators that multiply sizes, the
filters and string methods that take a width or a count, and ``~``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateRuntimeError, UndefinedError
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from runner import limits
from runner.executor.results import is_failure_marker
from runner.explain import Missing

ROOT_NAMES = frozenset({"inputs", "outputs", "env"})
"""Names every expression and template sees."""


class ExpressionError(Exception):
    """A template or expression that does not compile."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True, kw_only=True)
class Reads:
    """What one template or expression reads."""

    outputs: frozenset[str]
    """Node ids read as ``outputs.X`` or ``outputs['X']``."""
    inputs: frozenset[str]
    """Input names read as ``inputs.X``."""
    env: frozenset[str]
    """Environment entries read as ``env.X``."""
    names: frozenset[str]
    """Free variable names (``inputs``, ``file``, ``candidate``...)."""
    dynamic_outputs: bool
    """Whether ``outputs`` is indexed by a computed key, which cannot be checked statically."""


class _Undefined(StrictUndefined):
    """A strict undefined whose error keeps what was read and under which name, so that the
    message can name the path and the nearest key (``runner.explain``)."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if hint is None and exc is UndefinedError:
            # Jinja raises ``self._undefined_exception(message)``: any callable will do.
            self._undefined_exception = functools.partial(Missing, obj=obj, name=name)  # type: ignore[assignment]


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join that checks its size (Jinja's own join cannot be hooked)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, reading ``a.b`` on a mapping as its key first: workflow data is JSON, so
    ``outputs.items`` or ``reply.keys`` mean the node or field of that name, not a dict method.
    Operations that could build something huge check its size first."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = limits.INTERCEPTED

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return limits.binop(operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits.check_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    @staticmethod
    def bounded_join(parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``, once the text is known to fit."""
        for part in parts:
            limits.check_weight("~", part)
        texts = [str(part) for part in parts]
        size = sum(map(len, texts))
        if size > limits.MAX_TEXT:
            raise limits.LimitError(
                f"~ would make {size:,} characters, more than the limit of {limits.MAX_TEXT:,}"
            )
        return "".join(texts)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one plain dict rather than Jinja's ChainMap: every render
        copies them into its context, and a ChainMap makes that copy several times slower.
        The environment's globals are final before any template is compiled."""
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


def _finalize(value: Any) -> Any:
    """What ``{{ value }}`` prints, once it is known to fit."""
    if isinstance(value, _CONTAINERS):
        limits.check_weight("printing the value", value)
    return value


_CONTAINERS = (list, tuple, dict)


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    """The one sandboxed Jinja environment used for every workflow."""
    env = _Environment(undefined=_Undefined, autoescape=False, finalize=_finalize)
    env.filters.pop("random", None)
    env.globals.pop("lipsum", None)
    env.filters.update(limits.checked_filters(env.filters))
    # `outputs.review | reject("failed")`: the children of a fan-out that went on without some
    env.tests["failed"] = is_failure_marker
    return env


UNWATCHED_STEPS = 4
"""Filters, tests and calls a template without loops or macros may have and still render
without the watchdog: each step is bounded in size, so a few of them cannot run long."""


def may_run_long(tree: nodes.Node) -> bool:
    """Whether a template or expression needs the watchdog (``runner.watchdog``) to bound
    its time: it loops, defines macros (which may recurse), or chains many steps."""
    if tree.find(nodes.For) or tree.find(nodes.Macro) or tree.find(nodes.CallBlock):
        return True
    steps = tree.find_all((nodes.Filter, nodes.Test, nodes.Call))
    return sum(1 for _ in steps) > UNWATCHED_STEPS


def compile_template(source: str) -> tuple[Template, bool]:
    """A template compiled for rendering, and whether it ``may_run_long``."""
    env = environment()
    tree = env.parse(source)
    return env.from_string(tree), may_run_long(tree)


def compile_watched_expression(source: str) -> tuple[Callable[..., Any], bool]:
    """An expression compiled for evaluating, and whether it ``may_run_long``."""
    compiled = compile_expression(source)
    return compiled, may_run_long(parse_expression(source))


def parse_expression(source: str) -> nodes.Expr:
    """The tree of an expression that compiles."""
    return Parser(environment(), source, state="variable").parse_expression()


def compile_part(expr: nodes.Expr) -> Callable[..., Any]:
    """One piece of a parsed expression compiled on its own, to show what it evaluates to."""
    env = environment()
    body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
    tree = nodes.Template(body, lineno=1)
    tree.set_environment(env)
    return TemplateExpression(env.from_string(tree), undefined_to_none=False)


def compile_expression(source: str) -> Callable[..., Any]:
    """Compile an expression; raises ExpressionError with the problem and line."""
    try:
        return environment().compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(exc.message or str(exc), exc.lineno) from exc


def analyze_expression(source: str) -> Reads:
    """Check that an expression compiles and report what it reads."""
    env = environment()
    try:
        parser = Parser(env, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            parser.fail(f"unexpected {parser.stream.current.value!r} after the expression")
    except TemplateSyntaxError as exc:
        raise ExpressionError(exc.message or str(exc), exc.lineno) from exc
    compile_expression(source)
    template = nodes.Template([nodes.Output([expr])], lineno=1)
    template.set_environment(env)
    return _reads(template)


def analyze_template(source: str) -> Reads:
    """Check that a template compiles and report what it reads."""
    env = environment()
    try:
        with warnings.catch_warnings():
            # Jinja compiles string literals with Python, which warns about escapes such as
            # "\ "; the template is still valid, and validation output is not the place for it.
            warnings.simplefilter("ignore", DeprecationWarning)
            tree = env.parse(source)
            env.compile(tree)
    except TemplateSyntaxError as exc:
        raise ExpressionError(exc.message or str(exc), exc.lineno) from exc
    return _reads(tree)


def is_template(source: str) -> bool:
    """Whether ``source`` has any template syntax, or is plain text."""
    return "{{" in source or "{%" in source or "{#" in source


def _reads(tree: nodes.Template) -> Reads:
    found: dict[str, set[str]] = {name: set() for name in ROOT_NAMES}
    dynamic = False
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        base = node.node
        if not (isinstance(base, nodes.Name) and base.name in ROOT_NAMES):
            continue
        if isinstance(node, nodes.Getattr):
            found[base.name].add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found[base.name].add(node.arg.value)
        elif base.name == "outputs":
            dynamic = True
    free = meta.find_undeclared_variables(tree) - set(environment().globals)
    return Reads(
        outputs=frozenset(found["outputs"]),
        inputs=frozenset(found["inputs"]),
        env=frozenset(found["env"]),
        names=frozenset(free),
        dynamic_outputs=dynamic,
    )
