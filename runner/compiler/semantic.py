"""Semantic validation of a schema-valid workflow: every static rule that JSON Schema cannot say.

All problems are collected in one pass; nothing runs. The rules: ids unique; references read only
nodes guaranteed to have finished; expressions and templates compile and read only names in
scope; roles are declared and their needs met by the configuration; input defaults, the ``ci``
block's inputs and the evaluation cases' inputs have their types; output schemas are valid; the
launch shape fits ``budget.leaves`` and the depth limit; write scopes of concurrent nodes do not
overlap; children never exceed their parent's limits.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from runner import ir
from runner.canonical import compact_json, thaw
from runner.compiler import references, scopes, shape
from runner.compiler.case_inputs import case_findings, has_type
from runner.compiler.expression_fields import TextField, scope_names, text_fields
from runner.compiler.plain_templates import plain_reads
from runner.compiler.source import Document, pointer_join
from runner.config import UnmappedRole
from runner.errors import Diagnostic
from runner.expressions import ROOT_NAMES, ExpressionError, analyze_expression, analyze_template
from runner.tree import Visit, walk
from runner.userfiles import not_readable

RoleCapabilities = Callable[[str], tuple[str, frozenset[str]]]
"""Role -> (where it is served, e.g. ``provider local, model small``, its capabilities);
UnmappedRole when a configuration exists and does not serve the role."""

_RESERVED_NAMES = ROOT_NAMES | {"iteration", "candidate", "sample"}
"""Names the runner binds itself, which an expand's ``as`` must not hide."""


class Checker:
    """Collects every semantic problem of one workflow."""

    def __init__(
        self,
        document: Document,
        workflow: ir.Workflow,
        capabilities: RoleCapabilities | None = None,
        *,
        changed: frozenset[str] = frozenset(),
        stand_ins: frozenset[str] = frozenset(),
    ) -> None:
        """``changed`` and ``stand_ins``: where a schema-invalid document was mended before
        being built (``repair.mend``); nothing is reported there, and checks that depend on
        those places are left out."""
        self.document = document
        self.changed = changed
        self.stand_ins = stand_ins
        # A stand-in node has lost its children, and a mended id is not the one written, so a
        # read of an id that is not found may be a read of one of those.
        self.ids_complete = not stand_ins and not any(p.endswith("/id") for p in changed)
        self.workflow = workflow
        self.capabilities = capabilities
        self.found: list[Diagnostic] = []
        self.visits = list(walk(workflow.steps))
        self.by_id: dict[str, Visit] = {}
        self.duplicated: set[str] = set()
        """Ids used twice: what reads them, or is read by one of them, is not known for sure,
        and the error about the id says what to fix."""
        self.roles = dict(workflow.roles or ())
        self.schema_problems: dict[int, tuple[str, tuple[Any, ...]] | None] = {}
        """Output schemas checked, by the id of the IR's object (alive as long as the IR)."""
        self.inputs = dict(workflow.inputs or ())

    def touched(self, pointer: str) -> bool:
        """Whether mending changed ``pointer``, something in it, or something holding it."""
        return any(
            pointer == c or pointer.startswith(c + "/") or c.startswith(pointer + "/")
            for c in self.changed
        )

    def report(self, pointer: str, message: str, *, rule: str, hint: str | None = None) -> None:
        """Record one problem at ``pointer``, unless it is in a place that was mended."""
        if any(pointer == c or pointer.startswith(c + "/") for c in self.changed):
            return
        self.found.append(self.document.diagnostic(pointer, message, rule=rule, hint=hint))

    def run(self) -> list[Diagnostic]:
        """Run every check and return what they found."""
        self.check_ids()
        self.check_inputs()
        self.check_ci()
        self.check_cases()
        self.check_roles()
        self.check_references()
        self.check_min_successes()
        if not self.changed:  # the launch shape counts what mending may have changed
            self.check_shape()
        limits = ("permissions", "budget", "writes", "isolation")
        if any(part in limits for c in self.changed for part in c.split("/")):
            return self.found
        for finding in [
            *scopes.write_conflicts(self.visits),
            *scopes.limit_excesses(self.visits, self.workflow),
        ]:
            pointer = pointer_join(finding.visit.pointer, "") + finding.field
            self.report(pointer, finding.message, rule=finding.rule, hint=finding.hint)
        return self.found

    def check_ids(self) -> None:
        """Ids are unique across the whole tree."""
        for visit in self.visits:
            first = self.by_id.setdefault(visit.node.id, visit)
            if first is not visit:
                self.duplicated.add(visit.node.id)
                what = "node" if first.pointer in self.stand_ins else first.node.kind
                self.report(
                    pointer_join(visit.pointer, "id"),
                    f"the id {visit.node.id!r} is already used by the {what} at {first.pointer}",
                    rule="ids",
                    hint=f"Rename this {visit.node.kind}, say to {visit.node.id + '_2'!r}: "
                    "every node needs its own id.",
                )

    def check_inputs(self) -> None:
        """Input defaults have the declared type."""
        for name, spec in self.inputs.items():
            if self.touched(pointer_join("/inputs", name)):
                continue
            if spec.has_default and not has_type(thaw(spec.default), spec.type):
                self.report(
                    f"/inputs/{name}/default",
                    f"the default of input {name!r} is not of type {spec.type}",
                    rule="schema",
                    hint=f"Give a default of type {spec.type}, or change the type.",
                )

    def check_ci(self) -> None:
        """The ``ci`` block sets declared inputs to values of their types, and its mock
        script exists."""
        settings = self.workflow.ci
        if settings is None:
            return
        for name, value in (settings.inputs or {}).items():
            pointer = f"/ci/inputs/{name}"
            spec = self.inputs.get(name)
            if "/inputs" in self.changed or self.touched(pointer_join("/inputs", name)):
                continue
            if spec is None:
                close = difflib.get_close_matches(name, list(self.inputs), n=1)
                guess = f" Did you mean {close[0]!r}?" if close else ""
                declared = ", ".join(self.inputs) or "none"
                self.report(
                    pointer,
                    f"ci.inputs sets {name!r}, which is not an input of the workflow",
                    rule="ci",
                    hint=f"Declare it under inputs, or take it out of ci.inputs "
                    f"(declared: {declared}).{guess}",
                )
            elif not has_type(thaw(value), spec.type):
                quote = " In YAML, quote a string that reads as a number or a boolean." * (
                    spec.type == "string"
                )
                self.report(
                    pointer,
                    f"ci.inputs.{name} is not of type {spec.type}, as the input {name!r} is "
                    "declared",
                    rule="ci",
                    hint=f"Give a value of type {spec.type}.{quote}",
                )
        if settings.mock_script is not None:
            self.check_mock_script(settings.mock_script)

    def check_cases(self) -> None:
        """Cases have unique names and set declared inputs, as ``--input`` would: values of
        their types, every input without a default given."""
        inputs_mended = self.touched("/inputs")
        yaml = self.document.language == "yaml"
        cases = self.workflow.cases or ()
        for finding in case_findings(self.inputs, cases, names_checked=True, yaml=yaml):
            if not (inputs_mended and finding.pointer.startswith("/inputs")):
                pointer = f"/cases/{finding.index}{finding.pointer}"
                self.report(pointer, finding.message, rule="cases", hint=finding.hint)

    def check_mock_script(self, given: str) -> None:
        """``ci.mock_script`` names an existing file, relative to the workflow's folder."""
        folder = Path(self.document.path).parent
        target = folder / given
        problem = not_readable(str(target))
        if problem is None:
            return
        if target.is_dir():
            problem = "is a folder, not a mock script file"
        # The folder and its subfolders one level down (mocks/), not a whole tree: a workflow
        # at the repository's root would otherwise have every file of it listed.
        scripts = sorted(
            path.relative_to(folder).as_posix()
            for pattern in ("*", "*/*")
            for path in folder.glob(pattern)
            if path.suffix in (".yaml", ".yml", ".json")
            and path.is_file()
            and path.resolve() != Path(self.document.path).resolve()  # not the workflow itself
        )
        close = difflib.get_close_matches(given, scripts, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        self.report(
            "/ci/mock_script",
            f"ci.mock_script {given!r} names {target.as_posix()}, which {problem}",
            rule="ci",
            hint=f"Give the mock script's path relative to the workflow's folder "
            f"({folder.as_posix()}/), or create the file.{guess}",
        )

    def check_roles(self) -> None:
        """Roles used are declared, and the configuration can serve what they need."""
        for visit in self.visits:
            for field, role in _roles_used(visit.node):
                if role not in self.roles and "/roles" not in self.changed:
                    close = difflib.get_close_matches(role, list(self.roles), n=1)
                    guess = f" Did you mean {close[0]!r}?" if close else ""
                    self.report(
                        pointer_join(visit.pointer, "") + field,
                        f"role {role!r} is not declared",
                        rule="roles",
                        hint=f"Declare it under roles.{guess}",
                    )
            for field in ("output",):
                schema = getattr(visit.node, field, None)
                if schema is not None:
                    self.check_output_schema(pointer_join(visit.pointer, field), schema)
        if self.capabilities is None:
            return
        for name, spec in self.roles.items():
            try:
                served_by, available = self.capabilities(name)
            except UnmappedRole as exc:
                self.report(f"/roles/{name}", str(exc), rule="roles", hint=exc.hint)
                continue
            missing = [need for need in spec.needs or () if need not in available]
            if missing:
                self.report(
                    f"/roles/{name}/needs",
                    f"role {name!r} needs {', '.join(missing)}, which {served_by} does not offer",
                    rule="roles",
                    hint=f"Map roles.{name} in branchleaf.yaml to a model whose capabilities "
                    f"include {', '.join(missing)}.",
                )

    def check_output_schema(self, pointer: str, schema: Any) -> None:
        """An ``output`` field (frozen, as the IR holds it) holds a valid JSON Schema."""
        # The IR shares one frozen object between equal schemas (``build``): most are found
        # by identity, without writing them out.
        if id(schema) in self.schema_problems:
            problem = self.schema_problems[id(schema)]
        else:
            key = _schema_key(schema)
            if key not in _SCHEMA_PROBLEMS:
                if len(_SCHEMA_PROBLEMS) >= 4096:  # a long-lived process: bounded memory
                    _SCHEMA_PROBLEMS.clear()
                _SCHEMA_PROBLEMS[key] = _schema_problem(thaw(schema))
            problem = self.schema_problems[id(schema)] = _SCHEMA_PROBLEMS[key]
        if problem is None:
            return
        message, path = problem
        where = "/".join(str(p) for p in path)
        typed = bool(path) and path[-1] == "type"
        self.report(
            pointer,
            f"output is not a valid JSON Schema: {message}" + (f" (at {where})" if where else ""),
            rule="schema",
            hint="Use one of the JSON Schema types: string, integer, number, boolean, "
            "array, object, null."
            if typed
            else "See https://json-schema.org/understanding-json-schema/.",
        )

    def check_references(self) -> None:
        """Expressions compile, read names in scope, and read only finished nodes."""
        available = references.availability(self.workflow.steps)
        for visit in self.visits:
            node = visit.node
            scope = scope_names(visit)
            # An expand whose `as` was mended binds a name other than the one its body reads.
            open_scope = any(
                pointer_join(a.pointer, "as") in self.changed
                for a in visit.ancestors()
                if a.node.kind == "expand"
            )
            for source in text_fields(node):
                ready = (
                    available.after_children[node.id]
                    if source.after_children
                    else available.before[node.id]
                )
                self.check_source(
                    visit,
                    pointer_join(visit.pointer, "") + source.field,
                    source,
                    scope,
                    ready,
                    open_scope=open_scope,
                )
            if node.kind == "expand" and node.as_ in _RESERVED_NAMES:
                self.report(
                    pointer_join(visit.pointer, "as"),
                    f"expand {node.id!r} binds its items to {node.as_!r}, which would hide the "
                    f"runner's own {node.as_!r} inside the body",
                    rule="expressions",
                    hint="Choose another name, such as item.",
                )
            if node.kind in ("reduce", "teacher_review"):
                ready = available.before[node.id]
                for i, target in enumerate(node.inputs):
                    if target not in self.by_id and not self.ids_complete:
                        continue
                    if self.duplicated & {target, node.id}:
                        continue
                    if target not in ready:
                        refused = references.explain(visit, target, self.by_id, self.by_id)
                        self.report(
                            pointer_join(pointer_join(visit.pointer, "inputs"), i),
                            f"{node.kind} {node.id!r} reads {target!r}, but {refused.reason}",
                            rule="references",
                            hint=refused.fix,
                        )
        for i, test in enumerate(self.workflow.tests or ()):
            source = TextField(field="expect", text=test.expect, expression=True)
            self.check_source(None, f"/tests/{i}/expect", source, frozenset(), available.after_run)
        if self.workflow.metric is not None:
            source = TextField(field="metric", text=self.workflow.metric, expression=True)
            self.check_source(None, "/metric", source, frozenset(), available.after_run)

    def check_source(
        self,
        visit: Visit | None,
        pointer: str,
        source: TextField,
        scope: frozenset[str],
        ready: references.Finished,
        *,
        open_scope: bool = False,
    ) -> None:
        """Check one template or expression; ``open_scope``: the names bound around it are not
        known, so reading an unknown name is not a problem."""
        what = "expression" if source.expression else "template"
        try:
            reads = plain_reads(source.text, expression=source.expression) or (
                analyze_expression if source.expression else analyze_template
            )(source.text)
        except ExpressionError as exc:
            line = f" (line {exc.line} of the {what})" if exc.line and exc.line > 1 else ""
            self.report(
                pointer,
                f"the {what} does not compile: {exc.message}{line}",
                rule="expressions",
                hint="Templates and expressions are Jinja2; see docs/workflow-language.md.",
            )
            return
        allowed = ROOT_NAMES | scope | source.names
        for name in sorted(reads.names - allowed) if not open_scope else ():
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            self.report(
                pointer,
                f"the {what} reads {name!r}, which is not defined here",
                rule="expressions",
                hint=f"Names in scope: {', '.join(sorted(allowed))}.{guess}",
            )
        for name in (
            sorted(reads.inputs - set(self.inputs)) if "/inputs" not in self.changed else ()
        ):
            close = difflib.get_close_matches(name, sorted(self.inputs), n=1)
            self.report(
                pointer,
                f"the {what} reads inputs.{name}, which is not declared",
                rule="expressions",
                hint=f"Write inputs.{close[0]}, which is declared, or declare {name} under inputs."
                if close
                else f"Declare it under inputs, e.g. {name}: {{type: string}}.",
            )
        for name in (
            sorted(reads.env - set(self.workflow.env or ())) if "/env" not in self.changed else ()
        ):
            self.report(
                pointer,
                f"the {what} reads env.{name}, which the workflow does not declare",
                rule="expressions",
                hint=f"List {name} under env to let the workflow read it.",
            )
        if reads.dynamic_outputs:
            self.report(
                pointer,
                f"the {what} reads outputs[...] with a computed key, which cannot be checked "
                "before the run",
                rule="references",
                hint="Name the node: outputs.X or outputs['X'].",
            )
        for target in sorted(target for target in reads.outputs if target not in ready):
            if target not in self.by_id and not self.ids_complete:
                continue
            reader = visit.node.id if visit is not None else None
            if self.duplicated & {target, reader}:
                continue
            refused = (
                references.explain(visit, target, self.by_id, self.by_id)
                if visit is not None
                else _test_reason(target, self.by_id)
            )
            self.report(
                pointer,
                f"the {what} reads outputs.{target}, but {refused.reason}",
                rule="references",
                hint=refused.fix,
            )

    def check_min_successes(self) -> None:
        """A fan-out's min_successes fits its children, and does not meet fail_fast."""
        for visit in self.visits:
            node = visit.node
            least = getattr(node, "min_successes", None)
            if least is None:
                continue
            what = f"{node.kind} {node.id!r}"
            pointer = pointer_join(visit.pointer, "min_successes")
            if getattr(node, "fail_fast", None):
                self.report(
                    pointer,
                    f"{what} sets both fail_fast and min_successes: the first failure cannot "
                    "both stop the others and be gone on without",
                    rule="bounds",
                    hint="Drop fail_fast to go on with min_successes, or drop min_successes.",
                )
            size, said = _fan_out_size(node)
            if size is not None and least > size:
                self.report(
                    pointer,
                    f"{what} asks for min_successes {least}, more than its {said}, so it could "
                    "never go on",
                    rule="bounds",
                    hint=f"Lower min_successes to {size} or less.",
                )

    def check_shape(self) -> None:
        """The launch shape fits budget.leaves, and nesting stays under the depth limit."""
        deepest = max(self.visits, key=lambda v: v.depth)
        if deepest.depth > shape.MAX_DEPTH:
            self.report(
                deepest.pointer,
                f"nodes nest {deepest.depth} deep, more than the limit of {shape.MAX_DEPTH}",
                rule="bounds",
                hint="Flatten the workflow, e.g. with sequences of siblings.",
            )
        limits = [("", self.workflow.budget, self.workflow.steps, "the workflow")]
        limits += [
            (v.pointer, v.node.budget, v.node, f"{v.node.kind} {v.node.id!r}")
            for v in self.visits
            if v.node.budget is not None
        ]
        for pointer, budget, node, what in limits:
            if budget is None or budget.leaves is None:
                continue
            launched = shape.launch_leaves(node)
            if launched > budget.leaves:
                self.report(
                    f"{pointer}/budget/leaves",
                    f"{what} can launch up to {launched} model calls (loops and expands "
                    f"multiplied, both cond arms counted), more than budget.leaves "
                    f"{budget.leaves}",
                    rule="bounds",
                    hint=f"Raise budget.leaves to {launched}, or lower max_children, "
                    "max_iterations or count.",
                )


_SCHEMA_PROBLEMS: dict[str, tuple[str, tuple[Any, ...]] | None] = {}
"""What is wrong with each output schema seen, by its JSON text: a long workflow repeats a
few schemas many times, and the meta-schema check costs about a millisecond."""


def _schema_key(schema: Any) -> str:
    """A schema's JSON text with its keys in their order, which decides which problem is
    told first. It tells apart ``true`` and ``1``, and ``1`` and ``1.0``, as the meta-schema
    check may; the loaders refuse the non-finite numbers it would write as ``null``."""
    return compact_json(schema)


def _schema_problem(schema: Any) -> tuple[str, tuple[Any, ...]] | None:
    """The meta-schema's objection to ``schema`` and where it is, or ``None``."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message, tuple(exc.absolute_path)
    return None


def _fan_out_size(node: ir.Node) -> tuple[int | None, str]:
    """How many children a fan-out has at most, known before it runs, and how to say so."""
    if isinstance(node, ir.Expand):
        return node.max_children, f"max_children {node.max_children}"
    if isinstance(node, ir.Branch):
        return len(node.children), f"{len(node.children)} children"
    if isinstance(node, ir.Tournament | ir.Pareto):
        if node.candidates is not None:
            return len(node.candidates), f"{len(node.candidates)} candidates"
        return node.count, f"count {node.count}"
    return None, ""


def _roles_used(node: ir.Node) -> Iterator[tuple[str, str]]:
    match node.kind:
        case "leaf":
            yield "role", node.role
        case "reduce":
            if node.role is not None:
                yield "role", node.role
        case "tournament":
            if node.judge is not None:
                yield "judge/role", node.judge.role
        case "teacher_review":
            yield "role", node.role or ir.DEFAULT_TEACHER_ROLE
        case _:
            return


def _test_reason(target: str, by_id: dict[str, Visit]) -> references.Refusal:
    if target not in by_id:
        return references.missing(target, by_id)
    for ancestor in reversed(list(by_id[target].ancestors())):
        if references.hides(ancestor.node):
            return references.explain_hidden(target, ancestor.node)
    return references.Refusal(
        reason=f"{target!r} is not guaranteed to have run",
        fix="Read a node every run finishes, such as the root node.",
    )
