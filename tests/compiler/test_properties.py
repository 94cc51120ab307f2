"""Property tests of the workflow compiler front ends (YAML, JSON and Starlark).

Properties checked on random input:

- Round trip: valid workflow documents -- random trees over every node kind, at most 4 deep,
  with unique ids, declared roles and inputs, random optional fields, and templates and
  expressions that read only names in scope -- written as YAML or as JSON, compile without a
  diagnostic; ``to_document`` gives the document back exactly; compiling twice gives the same
  hash, which is ``content_hash`` of the document and the same for both languages.
- Starlark: the same documents written as ``.star`` builder calls compile to the same document
  and hash.
- Robustness: documents with random mutations (deleted, retyped or unknown fields, duplicate
  ids, unknown kinds, broken templates, bad bounds, a node or the root replaced by a list or a
  scalar), and YAML or JSON text truncated or with characters inserted, never make
  ``check_file`` raise: it returns a workflow and no diagnostics, or diagnostics that each have
  a message and name the file.

Minimal regression tests at the end of the file pin the cases the properties once found.
"""

from __future__ import annotations

import copy
import json
import keyword
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner import ir
from runner.canonical import content_hash
from runner.compiler.build import to_document
from runner.compiler.pipeline import Checked, check_file
from runner.compiler.schema import load_schema
from runner.compiler.yaml_loader import Dumper
from runner.errors import Diagnostic
from runner.schemas import compile_check

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Draw = Callable[[st.SearchStrategy[Any]], Any]

MAX_DEPTH = 4
KINDS = tuple(ir.NODE_TYPES)
COMPOSITE = frozenset(
    {"sequence", "branch", "expand", "cond", "loop_until", "tournament", "pareto"}
)
READERS = frozenset({"reduce", "teacher_review"})
LOOP_VARIABLES = ("item", "file", "row", "x")
CAPABILITIES = ("json_mode", "tools", "long_context", "vision")
WRITE_GLOBS = ("src/**", "docs", ".", "tests/*.py", "a/b")
IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
NAME = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,15}", fullmatch=True)
TRICKY = (
    'it\'s "quoted"',
    "'",
    '"',
    "# not a comment",
    "key: value",
    "- item",
    "on",
    "yes",
    "null",
    "~",
    "2024-01-01",
    "1e3",
    "0o17",
    "<<",
    "&anchor",
    "*alias",
    "!tag",
    "%",
    "@",
    "é ü 漢字 🙂",
    "\u2028",
    "\x85",
    "\t tab",
    "trailing ",
    " leading",
    "multi\nline\n",
    "\\ backslash",
    "}} #} %}",
)


def _chars(exclude: str = "") -> st.SearchStrategy[str]:
    return st.characters(exclude_categories=["Cs"], exclude_characters=exclude)


@dataclass
class _Gen:
    """Draws one valid workflow document, tracking what every template may read."""

    draw: Draw
    roles: list[str]
    inputs: dict[str, dict[str, Any]]
    env: list[str]
    perm_writes: list[str] | None
    left: int
    ids: set[str] = field(default_factory=set)
    commands: bool = False
    """Whether the workflow grants ``permissions.commands: ["*"]``: a node may only narrow it."""
    needs_teacher: bool = False

    # -- scalars ---------------------------------------------------------------------------

    def maybe(self) -> bool:
        return bool(self.draw(st.integers(0, 2)) == 0)

    def text(self, *, min_size: int = 0, max_size: int = 24, template: bool = False) -> str:
        exclude = "{" if template else ""
        tricky = [t for t in TRICKY if len(t) >= min_size and not (template and "{" in t)]
        free = st.text(_chars(exclude), min_size=min_size, max_size=max_size)
        return str(self.draw(free | st.sampled_from(tricky)))

    def numbers(
        self, lo: float, hi: float, *, exclusive_lo: bool = False
    ) -> st.SearchStrategy[float | int]:
        """Numbers in [lo, hi] (or (lo, hi]), sometimes ints."""

        def inside(x: float) -> bool:
            return (lo < x if exclusive_lo else lo <= x) and x <= hi

        options: list[st.SearchStrategy[Any]] = []
        options.append(
            st.floats(lo, hi, exclude_min=exclusive_lo, allow_nan=False, allow_infinity=False)
        )
        if math.ceil(lo) <= math.floor(hi):
            options.append(st.integers(math.ceil(lo), math.floor(hi)))
        return st.one_of(options).filter(inside)

    def number(self, lo: float, hi: float, *, exclusive_lo: bool = False) -> float | int:
        return self.draw(self.numbers(lo, hi, exclusive_lo=exclusive_lo))  # type: ignore[no-any-return]

    def json_value(self) -> Any:
        scalar = st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(10**6), 10**6),
            self.numbers(-1000, 1000),
            st.text(_chars(), max_size=6),
        )
        return self.draw(
            st.recursive(
                scalar,
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(_chars(), max_size=5), inner, max_size=3)
                ),
                max_leaves=5,
            )
        )

    def new_id(self) -> str:
        wanted = f"n{len(self.ids)}" if self.maybe() else str(self.draw(IDENTIFIER))
        candidate, suffix = wanted, 0
        while candidate in self.ids:
            suffix += 1
            candidate = f"{wanted}_{suffix}"
        self.ids.add(candidate)
        return candidate

    # -- templates and expressions ---------------------------------------------------------

    def atom(self, names: frozenset[str], ready: frozenset[str]) -> str:
        literal = st.text(_chars("\"\\{}'"), max_size=8).map(lambda s: f'"{s}"')
        choices: list[st.SearchStrategy[str]] = [
            st.integers(-1000, 1000).map(str),
            st.sampled_from(["true", "false", "none", "[1, 2, 3]", "range(3)"]),
            literal,
        ]
        if self.inputs:
            choices.append(st.sampled_from(sorted(self.inputs)).map(lambda n: f"inputs.{n}"))
        if self.env:
            choices.append(st.sampled_from(sorted(self.env)).map(lambda n: f"env.{n}"))
        if ready:
            ids = st.sampled_from(sorted(ready))
            choices.append(ids.map(lambda n: f"outputs.{n}"))
            choices.append(ids.map(lambda n: f"outputs['{n}']"))
        if names:
            choices.append(st.sampled_from(sorted(names)))
        return str(self.draw(st.one_of(choices)))

    def expression(self, names: frozenset[str], ready: frozenset[str]) -> str:
        a, b, c = (self.atom(names, ready) for _ in range(3))
        forms = [
            a,
            f"{a} == {b}",
            f"{a} and not {b}",
            f"[{a}, {b}]",
            f"({a}) | string | length",
            f"{a} ~ {b}",
            f"{a} if {b} else {c}",
            f"{a} is defined",
        ]
        return str(self.draw(st.sampled_from(forms)))

    def template(self, names: frozenset[str], ready: frozenset[str]) -> str:
        pieces: list[str] = []
        for _ in range(self.draw(st.integers(0, 4))):
            form = self.draw(st.integers(0, 4))
            if form == 0:
                pieces.append(self.text(template=True))
            elif form == 1:
                pieces.append("{{ " + self.expression(names, ready) + " }}")
            elif form == 2:
                pieces.append("{{ " + self.atom(names, ready) + " | string | upper }}")
            elif form == 3:
                pieces.append(
                    "{% if ("
                    + self.expression(names, ready)
                    + ") %}"
                    + self.text(template=True)
                    + "{% else %}x{% endif %}"
                )
            else:
                pieces.append("{# a comment #}")
        return "".join(pieces)

    # -- node pieces -----------------------------------------------------------------------

    def budget(self, inherited: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.maybe():
            out["tokens"] = self.draw(st.integers(0, inherited.get("tokens", 10**12)))
        if self.maybe():
            out["cost_usd"] = self.number(0, inherited.get("cost_usd", 10**6))
        if self.maybe():
            out["wall_s"] = self.number(0, inherited.get("wall_s", 10**6), exclusive_lo=True)
        if self.maybe():
            out["leaves"] = 10**9
        return out

    def concurrency(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("branches", "leaves"):
            if self.maybe():
                out[key] = self.draw(st.integers(1, 64))
        return out

    def output_schema(self) -> dict[str, Any]:
        key = self.draw(
            st.sampled_from(["ok", "<<", "kind", "id", "on", "body"])
            | st.text(_chars(), max_size=6)
        )
        kind = self.draw(st.sampled_from(["boolean", "string", "number", "integer", "null"]))
        return dict(
            self.draw(
                st.sampled_from(
                    [
                        {"type": "object"},
                        {},
                        {"type": "object", "properties": {key: {"type": kind}}, "required": [key]},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        {"type": "string", "description": self.text()},
                        {"enum": [1, "a", None, True]},
                    ]
                )
            )
        )

    def common(
        self, node: dict[str, Any], budget: dict[str, Any], writes: list[str] | None
    ) -> None:
        if self.maybe():
            node["description"] = self.text(max_size=30)
        if self.maybe():
            node["budget"] = self.budget(budget)
        if self.maybe():
            permissions: dict[str, Any] = {}
            if self.commands and self.maybe():
                permissions["commands"] = ["*"]
            if writes is not None and self.maybe():
                permissions["writes"] = self.draw(
                    st.lists(st.sampled_from(writes), unique=True) if writes else st.just([])
                )
            node["permissions"] = permissions
        if self.maybe():
            node["timeout_s"] = self.number(0, 10**5, exclusive_lo=True)
        if self.maybe():
            retry: dict[str, Any] = {"attempts": self.draw(st.integers(1, 20))}
            if self.maybe():
                retry["backoff_s"] = self.number(0, 100)
            node["retry"] = retry
        if self.maybe():
            node["memo"] = self.draw(st.sampled_from(["on", "off", "read"]))

    def model_options(self, node: dict[str, Any]) -> None:
        if self.maybe():
            node["temperature"] = self.number(0, 2)
        if self.maybe():
            node["max_tokens"] = self.draw(st.integers(1, 10**6))

    def inputs_from(self, ready: frozenset[str]) -> list[str]:
        return list(
            self.draw(st.lists(st.sampled_from(sorted(ready)), min_size=1, max_size=3, unique=True))
        )

    # -- nodes -----------------------------------------------------------------------------

    def node(
        self,
        depth: int,
        ready: frozenset[str],
        scope: frozenset[str],
        budget: dict[str, Any],
        writes: list[str] | None,
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """A node and the ids it makes readable once it has finished."""
        self.left -= 1
        kinds = [
            kind
            for kind in KINDS
            if (kind not in COMPOSITE or (depth < MAX_DEPTH and self.left > 0))
            and (kind not in READERS or ready)
        ]
        # Weighted: readers whenever something is readable, sequences near the root (they
        # make earlier steps readable), other containers while the tree is shallow.
        weighted = [*kinds, *(READERS & set(kinds)), *(READERS & set(kinds))]
        if "sequence" in kinds and depth <= 2:
            weighted += ["sequence"] * 3
        if depth <= 2:
            weighted += [kind for kind in kinds if kind in COMPOSITE]
        kind = self.draw(st.sampled_from(sorted(weighted, key=KINDS.index)))
        node: dict[str, Any] = {"kind": kind, "id": self.new_id()}
        self.common(node, budget, writes)
        inner_budget = {**budget, **node.get("budget", {})}
        inner_writes = node.get("permissions", {}).get("writes", writes)

        def child(
            ready: frozenset[str] = ready, scope: frozenset[str] = scope
        ) -> tuple[dict[str, Any], frozenset[str]]:
            return self.node(depth + 1, ready, scope, inner_budget, inner_writes)

        def some(low: int) -> int:
            return int(self.draw(st.integers(low, 3)))

        exposed = {node["id"]}
        scored = scope | {"candidate"}
        match kind:
            case "leaf":
                node["role"] = self.draw(st.sampled_from(self.roles))
                if self.maybe():
                    node["messages"] = [
                        {
                            "role": self.draw(st.sampled_from(["system", "user", "assistant"])),
                            "content": self.template(scope, ready),
                        }
                        for _ in range(some(1))
                    ]
                else:
                    node["prompt"] = self.template(scope, ready)
                if self.maybe():
                    node["output"] = self.output_schema()
                self.model_options(node)
                if self.maybe():
                    node["sample"] = self.draw(st.integers(0, 1000))
            case "command":
                self.commands = True
                node["run"] = [
                    self.template(scope, ready) if self.maybe() else self.text(template=True)
                    for _ in range(some(1))
                ]
                if self.maybe():
                    # Templated, so only the run checks where it leads (a literal cwd such as
                    # "/" or "../x" is refused by validate).
                    node["cwd"] = "{{ 'w' }}/" + self.template(scope, ready)
                if self.maybe():
                    names = self.draw(st.lists(IDENTIFIER, min_size=1, max_size=2, unique=True))
                    node["env"] = {name: self.template(scope, ready) for name in names}
                if self.maybe():
                    node["allow_fail"] = self.draw(st.booleans())
            case "sequence":
                steps, finished = [], ready
                for _ in range(some(1)):
                    step, more = child(ready=finished)
                    steps.append(step)
                    finished |= more
                    exposed |= more
                node["steps"] = steps
            case "branch":
                node["children"] = []
                for _ in range(some(1)):
                    branch, more = child()
                    node["children"].append(branch)
                    exposed |= more
                if self.maybe():
                    node["isolation"] = self.draw(st.sampled_from(["shared", "state", "worktree"]))
                if self.maybe():
                    node["fail_fast"] = self.draw(st.booleans())
            case "expand":
                variable = self.draw(st.sampled_from(LOOP_VARIABLES))
                node["over"] = self.expression(scope, ready)
                node["as"] = variable
                node["body"], _ = child(scope=scope | {variable})
                node["max_children"] = self.draw(st.integers(1, 50))
                if self.maybe():
                    node["isolation"] = self.draw(st.sampled_from(["shared", "state", "worktree"]))
                if self.maybe():
                    node["fail_fast"] = self.draw(st.booleans())
            case "cond":
                node["if"] = self.expression(scope, ready)
                node["then"], _ = child()
                if self.draw(st.booleans()):
                    node["else"], _ = child()
            case "loop_until":
                node["body"], more = child(scope=scope | {"iteration"})
                exposed |= more
                node["until"] = self.expression(scope | {"iteration"}, ready | more)
                node["max_iterations"] = self.draw(st.integers(1, 10))
            case "reduce":
                node["inputs"] = self.inputs_from(ready)
                if self.maybe():
                    node["expr"] = self.expression(scope, ready)
                else:
                    node["role"] = self.draw(st.sampled_from(self.roles))
                    node["prompt"] = self.template(scope, ready)
                if self.maybe():
                    node["output"] = self.output_schema()
                self.model_options(node)
            case "tournament" | "pareto":
                after = ready
                if self.maybe():
                    node["count"] = self.draw(st.integers(2, 5))
                    node["body"], _ = child(scope=scope | {"sample"})
                else:
                    node["candidates"] = []
                    for _ in range(some(2)):
                        candidate, more = child()
                        node["candidates"].append(candidate)
                        exposed |= more
                        after |= more
                if kind == "tournament":
                    if self.maybe():
                        judge = {
                            "role": self.draw(st.sampled_from(self.roles)),
                            "prompt": self.template(scored, after),
                        }
                        self.model_options(judge)
                        node["judge"] = judge
                    else:
                        node["score"] = self.expression(scored, after)
                    if self.maybe():
                        node["ordering"] = self.draw(
                            st.sampled_from(["score_then_cost", "cost_then_score"])
                        )
                    if self.maybe():
                        node["min_score"] = self.number(-100, 100)
                else:
                    node["objectives"] = [
                        {
                            "name": self.text(min_size=1),
                            "expr": self.expression(scored, after),
                            "goal": self.draw(st.sampled_from(["max", "min"])),
                        }
                        for _ in range(some(1))
                    ]
                    if self.maybe():
                        node["max_items"] = self.draw(st.integers(1, 20))
                    if self.maybe():
                        node["diversity_key"] = self.expression(scored, after)
                if self.maybe():
                    node["isolation"] = self.draw(st.sampled_from(["state", "worktree"]))
            case "teacher_review":
                node["inputs"] = self.inputs_from(ready)
                if self.draw(st.booleans()):
                    node["role"] = self.draw(st.sampled_from(self.roles))
                else:
                    self.needs_teacher = True
                if self.maybe():
                    node["prompt"] = self.template(scope, ready)
                self.model_options(node)
        if kind in COMPOSITE and self.maybe():
            node["concurrency"] = self.concurrency()
        return node, frozenset(exposed)


INPUT_TYPES = ("string", "integer", "number", "boolean", "array", "object")


def _input_spec(gen: _Gen) -> dict[str, Any]:
    kind = gen.draw(st.sampled_from(INPUT_TYPES))
    spec: dict[str, Any] = {"type": kind}
    if gen.maybe():
        spec["description"] = gen.text()
    if gen.maybe():
        match kind:
            case "string":
                spec["default"] = gen.text()
            case "integer":
                spec["default"] = gen.draw(st.integers(-(10**12), 10**12))
            case "number":
                spec["default"] = gen.number(-(10**6), 10**6)
            case "boolean":
                spec["default"] = gen.draw(st.booleans())
            case "array":
                spec["default"] = [gen.json_value() for _ in range(gen.draw(st.integers(0, 3)))]
            case _:
                spec["default"] = {gen.text(max_size=5): gen.json_value()}
    return spec


def _role_spec(gen: _Gen) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if gen.maybe():
        spec["needs"] = gen.draw(st.lists(st.sampled_from(CAPABILITIES), unique=True))
    if gen.maybe():
        spec["description"] = gen.text()
    return spec


@st.composite
def valid_documents(draw: Draw) -> dict[str, Any]:
    """A workflow document that must compile without a diagnostic."""
    roles = draw(st.lists(IDENTIFIER, min_size=1, max_size=3, unique=True))
    input_names = draw(st.lists(IDENTIFIER, max_size=3, unique=True))
    gen = _Gen(
        draw=draw,
        roles=roles,
        inputs={},
        env=draw(
            st.lists(
                st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), max_size=2, unique=True
            )
        ),
        perm_writes=draw(st.none() | st.lists(st.sampled_from(WRITE_GLOBS), unique=True)),
        left=draw(st.integers(1, 14)),
        commands=draw(st.booleans()),
    )
    gen.inputs = {name: _input_spec(gen) for name in input_names}
    budget = gen.budget({}) if gen.maybe() else None
    root, exposed = gen.node(1, frozenset(), frozenset(), budget or {}, gen.perm_writes)

    doc: dict[str, Any] = {"version": 1, "name": draw(NAME)}
    if gen.maybe():
        doc["description"] = gen.text(max_size=40)
    if gen.inputs or gen.maybe():
        doc["inputs"] = gen.inputs
    if gen.env or gen.maybe():
        doc["env"] = gen.env
    role_specs = {name: _role_spec(gen) for name in roles}
    if gen.needs_teacher:
        role_specs.setdefault("teacher", _role_spec(gen))
    doc["roles"] = role_specs
    if budget is not None:
        doc["budget"] = budget
    if gen.maybe():
        doc["concurrency"] = gen.concurrency()
    permissions: dict[str, Any] = {}
    if gen.commands:
        permissions["commands"] = ["*"]
    if gen.perm_writes is not None:
        permissions["writes"] = gen.perm_writes
    if permissions or gen.maybe():
        doc["permissions"] = permissions
    doc["steps"] = root
    if gen.maybe():
        tests = []
        for _ in range(draw(st.integers(0, 2))):
            test = {"name": gen.text(min_size=1), "expect": gen.expression(frozenset(), exposed)}
            if gen.maybe():
                test["description"] = gen.text()
            tests.append(test)
        doc["tests"] = tests
    return doc


# -- files ---------------------------------------------------------------------------------


def _check(text: str, suffix: str) -> tuple[str, Checked]:
    """Write ``text`` to a fresh file and check it; returns the path checked and the result."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / f"workflow{suffix}")
        Path(path).write_text(text, encoding="utf-8")
        return path, check_file(path)


def _yaml_text(draw: Draw, doc: Any) -> str:
    """``doc`` dumped by PyYAML with random style options."""
    # PyYAML's emitter writes U+0085, U+2028 and U+2029 raw into quoted scalars when
    # allow_unicode is set, and its own reader folds them into spaces: not a round trip.
    breaks = any(ch in json.dumps(doc, ensure_ascii=False) for ch in "\x85\u2028\u2029")
    return yaml.dump(  # quotes strings such as "1e3", which YAML 1.2 reads as numbers
        Dumper=Dumper,
        data=doc,
        allow_unicode=not breaks and draw(st.booleans()),
        sort_keys=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, None, True])),
        width=draw(st.sampled_from([80, 20, 10**9])),
    )


def _unfolded_yaml(doc: Any) -> str:
    """``doc`` as YAML without folded lines, which PyYAML's emitter cannot always write back
    (it can break a double-quoted scalar inside an escape such as ``\\"``)."""
    return yaml.dump(  # quotes strings such as "1e3", which YAML 1.2 reads as numbers
        Dumper=Dumper, data=doc, width=10**9
    )


def _assert_compiles_to(doc: dict[str, Any], path: str, checked: Checked) -> str:
    rendered = "\n".join(d.render() for d in checked.diagnostics)
    assert checked.diagnostics == (), rendered
    assert checked.workflow is not None
    assert to_document(checked.workflow) == doc
    assert checked.workflow.hash == content_hash(doc)
    assert checked.workflow.source == path
    return checked.workflow.hash


def _assert_well_formed(path: str, checked: Checked) -> None:
    if checked.workflow is not None:
        assert checked.diagnostics == ()
        return
    assert checked.diagnostics, "an invalid file must get at least one diagnostic"
    for diagnostic in checked.diagnostics:
        assert isinstance(diagnostic, Diagnostic)
        assert isinstance(diagnostic.message, str)
        assert diagnostic.message.strip()
        assert diagnostic.file == path
        assert diagnostic.render()
        json.dumps(diagnostic.to_json())


# -- round trip ----------------------------------------------------------------------------


@PROPERTIES
@given(data=st.data())
def test_yaml_round_trip(data: st.DataObject) -> None:
    doc = data.draw(valid_documents())
    text = _yaml_text(data.draw, doc)
    # Only where PyYAML's own loader reads its dump back: its emitter has folding bugs.
    assume(yaml.safe_load(text) == doc)
    suffix = data.draw(st.sampled_from([".yaml", ".yml"]))
    path, first = _check(text, suffix)
    digest = _assert_compiles_to(doc, path, first)
    again, second = _check(text, suffix)
    assert _assert_compiles_to(doc, again, second) == digest


@PROPERTIES
@given(data=st.data())
def test_json_round_trip(data: st.DataObject) -> None:
    doc = data.draw(valid_documents())
    text = json.dumps(doc, indent=data.draw(st.sampled_from([None, 2])))
    path, checked = _check(text, ".json")
    digest = _assert_compiles_to(doc, path, checked)
    _, from_yaml = _check(_unfolded_yaml(doc), ".yaml")
    assert from_yaml.workflow is not None
    assert from_yaml.workflow.hash == digest


# -- Starlark ------------------------------------------------------------------------------

# Python's keywords cover Starlark's reserved words but `load`; `kind` is set by the builtin.
STARLARK_RESERVED = frozenset(keyword.kwlist) | {"load", "kind"}
NODE_FIELDS = frozenset({"steps", "children", "candidates", "body", "then", "else"})
TRAILING_UNDERSCORE = frozenset({"as", "if", "else"})


def _star_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _star_value(value: Any) -> str:
    """A JSON value as a Starlark literal."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        assert math.isfinite(value)
        return repr(value)
    if isinstance(value, str):
        return _star_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_star_value(item) for item in value) + "]"
    assert isinstance(value, dict)
    items = (f"{_star_string(k)}: {_star_value(v)}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def _star_call(
    function: str, fields: dict[str, Any], indent: str, raw: dict[str, str] | None = None
) -> str:
    """``function(name = value, ...)``; fields that are no keyword go through ``**{...}``."""
    args, extra = [], []
    inner = indent + "    "
    for key, value in fields.items():
        if raw and key in raw:
            text = raw[key]
        elif key in NODE_FIELDS:
            text = _star_node(value, inner)
        else:
            text = _star_value(value)
        name = key + "_" if key in TRAILING_UNDERSCORE else key
        if name.isidentifier() and name.isascii() and name not in STARLARK_RESERVED:
            args.append(f"{inner}{name} = {text},\n")
        else:
            extra.append(f"{_star_string(key)}: {text}")
    if extra:
        args.append(f"{inner}**{{{', '.join(extra)}}},\n")
    return f"{function}(\n{''.join(args)}{indent})"


def _star_node(value: Any, indent: str = "") -> str:
    """A node as a builder call (lists of nodes as lists of calls; anything else as a literal)."""
    if isinstance(value, list):
        return "[" + ", ".join(_star_node(item, indent) for item in value) + "]"
    if isinstance(value, dict) and value.get("kind") in KINDS:
        fields = {k: v for k, v in value.items() if k != "kind"}
        return _star_call(str(value["kind"]), fields, indent)
    return _star_value(value)


def to_starlark(doc: dict[str, Any], *, bind_root: bool = True) -> str:
    """A ``.star`` source whose final ``workflow(...)`` call builds ``doc``."""
    if bind_root and "steps" in doc:
        root = f"root = {_star_node(doc['steps'])}\n\n"
        return root + _star_call("workflow", doc, "", raw={"steps": "root"}) + "\n"
    return _star_call("workflow", doc, "") + "\n"


@PROPERTIES
@given(data=st.data())
def test_starlark_compiles_to_the_same_document(data: st.DataObject) -> None:
    doc = data.draw(valid_documents())
    source = to_starlark(doc, bind_root=data.draw(st.booleans()))
    path, checked = _check(source, ".star")
    digest = _assert_compiles_to(doc, path, checked)
    _, from_yaml = _check(_unfolded_yaml(doc), ".yaml")
    assert from_yaml.workflow is not None
    assert from_yaml.workflow.hash == digest


# -- mutations -----------------------------------------------------------------------------

Path_ = tuple[Any, ...]
TEMPLATE_FIELDS = frozenset(
    {"prompt", "content", "expr", "over", "if", "until", "score", "expect", "cwd", "diversity_key"}
)
BROKEN = (
    "{{ x",
    "{{ outputs.nope }}",
    "{{ inputs.undeclared }}",
    "{{ env.UNDECLARED }}",
    "{{ candidate }}",
    "{{ sample }} {{ iteration }}",
    "{% if %}",
    "{% endif %}",
    "{% for x in %}",
    "{# open",
    "{{ 1 +* 2 }}",
    "{{ x | no_such_filter }}",
    "{{ outputs[inputs] }}",
    "{{ ((((((1 }}",
    "{{ '\\N{nope}' }}",
    "{% include 'other.txt' %}",
    "{% set outputs = 1 %}{{ outputs.x }}",
    "outputs.",
    "1 +",
    "a b",
    ")",
    "",
    " ",
)


def _locations(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Every place below ``value``: dict keys and list indexes, parents first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from _locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from _locations(item, (*path, index))


def _get(doc: Any, path: Path_) -> Any:
    for token in path:
        doc = doc[token]
    return doc


def _set(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _nodes(doc: Any) -> list[Path_]:
    return [
        p
        for p in [(), *_locations(doc)]
        if isinstance(_get(doc, p), dict) and "kind" in _get(doc, p)
    ]


def _pick(draw: Draw, paths: list[Path_]) -> Path_ | None:
    return draw(st.sampled_from(paths)) if paths else None


def _delete_key(draw: Draw, doc: Any) -> Any:
    path = _pick(draw, [p for p in _locations(doc) if isinstance(_get(doc, p[:-1]), dict)])
    if path is not None:
        del _get(doc, path[:-1])[path[-1]]
    return doc


OTHER_VALUES: tuple[Any, ...] = ("text", 7, -1, 0, 2.5, [], ["x"], {}, {"a": 1}, None, True, False)


def _retype(draw: Draw, doc: Any) -> Any:
    path = _pick(draw, list(_locations(doc)))
    if path is None:
        return doc
    old = _get(doc, path)
    new = draw(st.sampled_from([v for v in OTHER_VALUES if type(v) is not type(old)]))
    return _set(doc, path, copy.deepcopy(new))


def _unknown_key(draw: Draw, doc: Any) -> Any:
    dicts = [p for p in [(), *_locations(doc)] if isinstance(_get(doc, p), dict)]
    path = _pick(draw, dicts)
    if path is not None:
        key = draw(
            st.sampled_from(["unknown_field", "Kind", "ids", "as_", ""]) | st.text(max_size=8)
        )
        _get(doc, path).setdefault(key, copy.deepcopy(draw(st.sampled_from(OTHER_VALUES))))
    return doc


def _all_ids(doc: Any) -> list[str]:
    return [_get(doc, p)["id"] for p in _nodes(doc) if isinstance(_get(doc, p).get("id"), str)]


def _duplicate_id(draw: Draw, doc: Any) -> Any:
    nodes = _nodes(doc)
    ids = _all_ids(doc)
    path = _pick(draw, nodes)
    if path is not None:
        _get(doc, path)["id"] = draw(st.sampled_from([*ids, "", "1bad", "a-b", "x[1]"]))
    return doc


def _rename_kind(draw: Draw, doc: Any) -> Any:
    path = _pick(draw, _nodes(doc))
    if path is not None:
        _get(doc, path)["kind"] = draw(
            st.sampled_from([*KINDS, "", "Leaf", "workflow"]) | st.text()
        )
    return doc


def _break_template(draw: Draw, doc: Any) -> Any:
    places = [
        p
        for p in _locations(doc)
        if isinstance(_get(doc, p), str)
        and (p[-1] in TEMPLATE_FIELDS or (len(p) > 1 and p[-2] == "run"))
    ]
    path = _pick(draw, places)
    if path is None:
        return doc
    if draw(st.booleans()):
        return _set(doc, path, draw(st.sampled_from(BROKEN)))
    # Read some node, wherever it is: itself, an enclosing node, a later or concurrent one.
    target = draw(st.sampled_from(_all_ids(doc) or ["nope"]))
    form = draw(st.sampled_from(["outputs.{}", "{{{{ outputs.{} }}}}", "outputs['{}'] | length"]))
    return _set(doc, path, form.format(target))


BOUNDS = ("max_children", "max_iterations", "count", "max_items", "attempts", "max_tokens")


def _bad_bound(draw: Draw, doc: Any) -> Any:
    places = [p for p in _locations(doc) if p[-1] in BOUNDS]
    value = draw(st.sampled_from([0, -1, 10**12, 1.5]))
    path = _pick(draw, places)
    if path is not None:
        return _set(doc, path, value)
    target = _pick(draw, _nodes(doc))
    if target is not None:
        _get(doc, target)["max_children"] = value
    return doc


def _node_to_list(draw: Draw, doc: Any) -> Any:
    path = _pick(draw, _nodes(doc))
    if path is None:
        return doc
    node = _get(doc, path)
    return _set(doc, path, draw(st.sampled_from([[node], list(node), [node, node]])))


def _rewire_inputs(draw: Draw, doc: Any) -> Any:
    readers = [p for p in _nodes(doc) if isinstance(_get(doc, p).get("inputs"), list)]
    path = _pick(draw, readers)
    if path is not None:
        ids = _all_ids(doc)
        _get(doc, path)["inputs"] = draw(
            st.lists(st.sampled_from([*ids, "nope"]), min_size=1, max_size=3)
        )
    return doc


def _replace_root(draw: Draw, doc: Any) -> Any:
    return draw(st.sampled_from([[doc], "workflow", 42, None, []]))


# The first three keep the document schema-valid, so the semantic checks see them; they are
# listed twice to come up as often as the rest together.
SEMANTIC_MUTATIONS = (_duplicate_id, _break_template, _rewire_inputs)
MUTATIONS = (
    *SEMANTIC_MUTATIONS,
    *SEMANTIC_MUTATIONS,
    _delete_key,
    _retype,
    _unknown_key,
    _rename_kind,
    _bad_bound,
    _node_to_list,
    _replace_root,
)


WORKFLOW_CHECK = compile_check(load_schema("workflow.schema.json"))
WORKFLOW_VALIDATOR = Draft202012Validator(load_schema("workflow.schema.json"))


@st.composite
def mutated_documents(draw: Draw) -> Any:
    """A valid document with one to three random mutations."""
    doc = copy.deepcopy(draw(valid_documents()))
    for _ in range(draw(st.integers(1, 3))):
        doc = draw(st.sampled_from(MUTATIONS))(draw, doc)
    return doc


@PROPERTIES
@given(doc=mutated_documents())
def test_mutated_documents_never_raise(doc: Any) -> None:
    # Validation trusts the compiled schema check for a valid document (runner.schemas).
    assert WORKFLOW_CHECK is not None
    assert WORKFLOW_CHECK(doc) == WORKFLOW_VALIDATOR.is_valid(doc), doc
    path, checked = _check(_unfolded_yaml(doc), ".yaml")
    _assert_well_formed(path, checked)
    if checked.workflow is not None:  # a mutation can leave the document valid
        assert to_document(checked.workflow) == doc
    path, checked = _check(json.dumps(doc), ".json")
    _assert_well_formed(path, checked)


@PROPERTIES
@given(data=st.data())
def test_a_schema_error_in_a_node_brings_no_other_error(data: st.DataObject) -> None:
    """The semantic checks run on a schema-invalid document too, and a field only the schema
    minds (an unknown one, or a node's malformed one) makes no error of any other rule."""
    doc = copy.deepcopy(data.draw(valid_documents()))
    nodes = _nodes(doc)
    retyped: set[tuple[int, str]] = set()
    for _ in range(data.draw(st.integers(1, 3))):
        node = _get(doc, data.draw(st.sampled_from(nodes)))
        if data.draw(st.booleans()):
            node.setdefault(data.draw(st.sampled_from(["unknown_field", "Kind", "as_"])), 1)
        else:
            fields = sorted(set(node) - {"kind"})
            if not fields:
                continue  # an output schema's property named "kind", not a node
            field = data.draw(st.sampled_from(fields))
            if field in ("steps", "children", "candidates", "body", "then", "else"):
                continue  # its nodes would go: reads of them are not checked, rightly
            if (id(node), field) in retyped:
                continue  # retyped twice, a role could be a string again: a valid type
            retyped.add((id(node), field))
            old = node[field]
            node[field] = next(v for v in OTHER_VALUES if type(v) is not type(old))
    _, checked = _check(_unfolded_yaml(doc), ".yaml")
    assume(checked.workflow is None)
    rendered = "\n".join(d.render() for d in checked.diagnostics)
    assert {d.rule for d in checked.diagnostics} == {"schema"}, rendered


@PROPERTIES
@given(doc=mutated_documents())
def test_mutated_starlark_never_raises(doc: Any) -> None:
    assume(isinstance(doc, dict))
    path, checked = _check(to_starlark(doc, bind_root=False), ".star")
    _assert_well_formed(path, checked)


INSERTED = st.sampled_from(list("!&*%@`|>#-:?,[]{}'\"\\ \t\n\r~^$0aZ.;<=")) | _chars(False)


@PROPERTIES
@given(data=st.data())
def test_mutated_text_never_raises(data: st.DataObject) -> None:
    doc = data.draw(valid_documents())
    suffix = data.draw(st.sampled_from([".yaml", ".json"]))
    text = json.dumps(doc, indent=2) if suffix == ".json" else _yaml_text(data.draw, doc)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:at]
        else:
            text = text[:at] + data.draw(INSERTED) + text[at:]
    path, checked = _check(text, suffix)
    _assert_well_formed(path, checked)


# -- regression tests ----------------------------------------------------------------------

LEAF = {"kind": "leaf", "id": "a", "role": "r", "prompt": "hi"}
MINIMAL = {"version": 1, "name": "x", "roles": {"r": {}}, "steps": LEAF}


def test_minimal_document_round_trips() -> None:
    for text, suffix in (
        (
            yaml.dump(  # quotes strings such as "1e3", which YAML 1.2 reads as numbers
                Dumper=Dumper, data=MINIMAL
            ),
            ".yaml",
        ),
        (json.dumps(MINIMAL), ".json"),
    ):
        path, checked = _check(text, suffix)
        _assert_compiles_to(MINIMAL, path, checked)


# Fixed bugs.


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nname: x\nsteps: {kind: !leaf , id: a}\n",
        "version: !!int one\n",
        "version: !!bool maybe\n",
        "version: !!float x\n",
        "<<: 1\n",
    ],
)
def test_yaml_tags_give_diagnostics(text: str) -> None:
    path, checked = _check(text, ".yaml")
    assert checked.workflow is None
    _assert_well_formed(path, checked)


@pytest.mark.parametrize("kind", ["integer", "number"])
def test_false_is_not_a_number_default(kind: str) -> None:
    doc = {**MINIMAL, "inputs": {"n": {"type": kind, "default": False}}}
    _, checked = _check(
        yaml.dump(  # quotes strings such as "1e3", which YAML 1.2 reads as numbers
            Dumper=Dumper, data=doc
        ),
        ".yaml",
    )
    assert [d.pointer for d in checked.diagnostics] == ["/inputs/n/default"]


def test_node_as_list_gets_one_plain_diagnostic() -> None:
    doc = {**MINIMAL, "steps": [LEAF]}
    _, checked = _check(
        yaml.dump(  # quotes strings such as "1e3", which YAML 1.2 reads as numbers
            Dumper=Dumper, data=doc
        ),
        ".yaml",
    )
    assert [d.pointer for d in checked.diagnostics] == ["/steps"]
    assert "valid under each of" not in checked.diagnostics[0].message


def test_non_string_key_message() -> None:
    _, checked = _check("? [a]\n: 1\n", ".yaml")
    assert checked.diagnostics
    assert not any("ScalarNode" in d.message for d in checked.diagnostics)


# Open bugs: these fail today.


@pytest.mark.parametrize("number", ["1e-05", "2E-1", "1.5e0"])
def test_json_exponent_numbers_are_numbers(number: str) -> None:
    text = json.dumps(MINIMAL).replace('"prompt": "hi"', f'"prompt": "hi", "temperature": {number}')
    path, checked = _check(text, ".json")
    expected = {**MINIMAL, "steps": {**LEAF, "temperature": float(number)}}
    _assert_compiles_to(expected, path, checked)


def test_json_surrogate_pair_escapes() -> None:
    doc = {**MINIMAL, "description": "\U0001f600"}
    path, checked = _check(json.dumps(doc), ".json")
    _assert_compiles_to(doc, path, checked)


@pytest.mark.parametrize("ch", ["\x7f", "\x80", "\ufffe"])
def test_json_raw_characters_yaml_forbids(ch: str) -> None:
    doc = {**MINIMAL, "description": f"a{ch}b"}
    path, checked = _check(json.dumps(doc, ensure_ascii=False), ".json")
    _assert_compiles_to(doc, path, checked)


def _alias_bomb(levels: int) -> str:
    """A valid workflow whose input defaults nest ``levels`` lists of ten aliases each."""
    lists = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    lists += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    inputs = "".join(f"  i{i}: {{type: array, default: {v}}}\n" for i, v in enumerate(lists))
    return (
        "version: 1\nname: x\nroles: {r: {}}\n"
        "steps: {kind: leaf, id: a, role: r, prompt: hi}\ninputs:\n" + inputs
    )


def test_alias_expansion_is_bounded() -> None:
    path, checked = _check(_alias_bomb(5), ".yaml")
    assert checked.workflow is None
    _assert_well_formed(path, checked)
