"""Semantic rules: each fires on a bad workflow, where the source puts the offending field, with a
message and a fix; each stays quiet on a closely related good workflow."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import position, rendered

from runner.compiler.pipeline import Checked, check_file
from runner.compiler.semantic import RoleCapabilities
from runner.config import load_config
from runner.errors import Diagnostic

HEADER = """\
version: 1
name: demo
roles:
  writer: {}
"""


def doc(steps: str, *, top: str = "", tests: str = "") -> str:
    """A workflow: the header, ``top`` fields, the root node ``steps`` and ``tests``."""
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ")
    return HEADER + textwrap.dedent(top).lstrip("\n") + "steps:\n" + body + "\n" + tests


def seq(*steps: str, permissions: str = "") -> str:
    """A sequence ``main`` of the given one-line nodes."""
    extra = f"permissions: {permissions}\n" if permissions else ""
    return "kind: sequence\nid: main\n" + extra + "steps:\n" + "".join(f"  - {s}\n" for s in steps)


def branch(*children: str, isolation: str = "") -> str:
    """A branch ``both`` of the given one-line nodes."""
    extra = f"isolation: {isolation}\n" if isolation else ""
    return (
        "kind: branch\nid: both\n" + extra + "children:\n" + "".join(f"  - {c}\n" for c in children)
    )


def leaf(id_: str, prompt: str = "Write it.", extra: str = "") -> str:
    """A one-line leaf played by ``writer``."""
    return f"{{kind: leaf, id: {id_}, role: writer, prompt: {prompt}{extra}}}"


def check(
    tmp_path: Path,
    text: str,
    *,
    name: str = "workflow.yaml",
    capabilities: RoleCapabilities | None = None,
) -> Checked:
    """Write ``text`` to ``tmp_path/name`` and check that file."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return check_file(str(path), capabilities=capabilities)


def only(checked: Checked) -> Diagnostic:
    assert len(checked.diagnostics) == 1, rendered(checked)
    return checked.diagnostics[0]


@dataclass(frozen=True)
class Case:
    """A bad workflow, a closely related good one, and what the one diagnostic must say."""

    bad: str
    good: str
    rule: str
    pointer: str
    at: str
    """The text where the diagnostic points (unique in ``bad``)."""
    phrase: str
    """A key phrase of the message."""
    hint: str = ""
    """A phrase of the hint ("" for any hint)."""


LOOP = """
kind: loop_until
id: polish
max_iterations: 3
until: "{until}"
body:
  kind: sequence
  id: rounds
  steps:
    - {kind: leaf, id: attempt, role: writer, prompt: "Try {{ iteration }}."}
    - {kind: leaf, id: review, role: writer, prompt: Review it.}
"""

ONE = '{kind: leaf, id: one, role: writer, prompt: "{{ item }}"}'
PAIR = "{kind: sequence, id: pair, steps: [" + leaf("first", "One.") + ", " + leaf("second") + "]}"


def expand(max_children: int, *, extra: str = "", body: str = ONE) -> str:
    """An expand ``fan`` over two items, as ``item``, of ``body``."""
    return (
        f'kind: expand\nid: fan\nover: "[1, 2]"\nas: item\nmax_children: {max_children}\n'
        f"{extra}body: {body}\n"
    )


FAN = '{kind: expand, id: fan, over: "[1, 2]", as: item, max_children: 2, body: ' + ONE + "}"

TOURNAMENT = """
kind: tournament
id: best
count: 3
body:
  kind: sequence
  id: attempt
  steps:
    - {kind: leaf, id: draft, role: writer, prompt: "Draft DRAFT."}
    - {kind: leaf, id: polish, role: writer, prompt: Polish it.}
judge: {role: JUDGE, prompt: "Score {{ candidate }}."}
"""


def tournament(*, draft: str = "{{ sample }}", judge: str = "writer") -> str:
    """A tournament ``best`` of three two-leaf attempts, judged by the role ``judge``."""
    return TOURNAMENT.replace("DRAFT", draft).replace("JUDGE", judge)


COND = """
kind: cond
id: check
if: "{condition}"
then:
  kind: sequence
  id: long_way
  steps:
    - {kind: leaf, id: draft, role: writer, prompt: Draft.}
    - {kind: leaf, id: polish, role: writer, prompt: Polish.}
else: {kind: leaf, id: short_way, role: writer, prompt: Be brief.}
"""

REFERENCES = {
    "reduce-inputs-later-node": Case(
        bad=doc(
            seq(
                "{kind: reduce, id: merge, inputs: [draft], role: writer, prompt: Merge.}",
                leaf("draft"),
            )
        ),
        good=doc(
            seq(
                leaf("draft"),
                "{kind: reduce, id: merge, inputs: [draft], role: writer, prompt: Merge.}",
            )
        ),
        rule="references",
        pointer="/steps/steps/0/inputs/0",
        at="draft]",
        phrase="reduce 'merge' reads 'draft', but 'draft' runs later in sequence 'main'",
        hint="Move 'draft' before 'merge' in sequence 'main',",
    ),
    "prompt-later-node": Case(
        bad=doc(seq(leaf("draft", '"{{ outputs.polish }}"'), leaf("polish"))),
        good=doc(seq(leaf("polish"), leaf("draft", '"{{ outputs.polish }}"'))),
        rule="references",
        pointer="/steps/steps/0/prompt",
        at='"{{ outputs.polish }}"',
        phrase="reads outputs.polish, but 'polish' runs later in sequence 'main'",
        hint="Move 'polish' before 'draft' in sequence 'main',",
    ),
    "concurrent-branch-sibling": Case(
        bad=doc(branch(leaf("draft"), leaf("polish", '"{{ outputs.draft }}"'))),
        good=doc(seq(leaf("draft"), leaf("polish", '"{{ outputs.draft }}"'))),
        rule="references",
        pointer="/steps/children/1/prompt",
        at='"{{ outputs.draft }}"',
        phrase="'draft' may run at the same time (both under branch 'both')",
        hint="Read 'draft' from a node that runs after it, after branch 'both', or put the two "
        "in a sequence.",
    ),
    "itself": Case(
        bad=doc(seq(leaf("draft"), leaf("polish", '"{{ outputs.polish }}"'))),
        good=doc(seq(leaf("draft"), leaf("polish", '"{{ outputs.draft }}"'))),
        rule="references",
        pointer="/steps/steps/1/prompt",
        at='"{{ outputs.polish }}"',
        phrase="'polish' is this node itself",
        hint="a node cannot read its own output.",
    ),
    "ancestor": Case(
        bad=doc(seq(leaf("draft", '"{{ outputs.main }}"'))),
        good=doc(seq(leaf("draft")), tests="tests: [{name: done, expect: outputs.main}]\n"),
        rule="references",
        pointer="/steps/steps/0/prompt",
        at='"{{ outputs.main }}"',
        phrase="'main' encloses this node and has not finished",
    ),
    "inside-a-later-sibling-sequence": Case(
        bad=doc(
            seq(
                leaf("polish", '"{{ outputs.draft }}"'),
                f"{{kind: sequence, id: part, steps: [{leaf('draft')}]}}",
            )
        ),
        good=doc(
            seq(
                f"{{kind: sequence, id: part, steps: [{leaf('draft')}]}}",
                leaf("polish", '"{{ outputs.draft }}"'),
            )
        ),
        rule="references",
        pointer="/steps/steps/0/prompt",
        at='"{{ outputs.draft }}"',
        phrase="'draft' runs later in sequence 'main'",
        hint="Move 'part' before 'polish' in sequence 'main',",
    ),
    "inside-an-expand-body": Case(
        bad=doc(seq(FAN, "{kind: reduce, id: merge, inputs: [one], expr: '1'}")),
        good=doc(seq(FAN, "{kind: reduce, id: merge, inputs: [fan], expr: '1'}")),
        rule="references",
        pointer="/steps/steps/1/inputs/0",
        at="one]",
        phrase="'one' runs once per item of expand 'fan'; read outputs.fan (the list) instead",
        hint="Read outputs.fan instead of outputs.one.",
    ),
    "inside-a-cond-arm": Case(
        bad=doc(
            seq(
                "{kind: cond, id: check, if: 'true', then: " + leaf("yes_arm") + "}",
                leaf("after", '"{{ outputs.yes_arm }}"'),
            )
        ),
        good=doc(
            seq(
                "{kind: cond, id: check, if: 'true', then: " + leaf("yes_arm") + "}",
                leaf("after", '"{{ outputs.check }}"'),
            )
        ),
        rule="references",
        pointer="/steps/steps/1/prompt",
        at='"{{ outputs.yes_arm }}"',
        phrase="'yes_arm' is inside cond 'check' and may not have run; read outputs.check instead",
        hint="Read outputs.check instead of outputs.yes_arm.",
    ),
    "unknown-id": Case(
        bad=doc(seq(leaf("draft"), "{kind: reduce, id: merge, inputs: [drafts], expr: '1'}")),
        good=doc(seq(leaf("draft"), "{kind: reduce, id: merge, inputs: [draft], expr: '1'}")),
        rule="references",
        pointer="/steps/steps/1/inputs/0",
        at="drafts]",
        phrase="no node has the id 'drafts'; did you mean 'draft'?",
        hint="Write 'draft' instead of 'drafts'.",
    ),
    "computed-outputs-key": Case(
        bad=doc(
            seq(leaf("draft"), leaf("polish", '"{{ outputs[inputs.which] }}"')),
            top="inputs: {which: {type: string}}\n",
        ),
        good=doc(
            seq(leaf("draft"), leaf("polish", "\"{{ outputs['draft'] }}\"")),
            top="inputs: {which: {type: string}}\n",
        ),
        rule="references",
        pointer="/steps/steps/1/prompt",
        at='"{{ outputs[',
        phrase="reads outputs[...] with a computed key, which cannot be checked before the run",
        hint="Name the node",
    ),
    "loop-until-reads-a-later-node": Case(
        bad=doc(
            seq(
                "{kind: loop_until, id: polish, max_iterations: 3, until: outputs.after, "
                "body: " + leaf("attempt") + "}",
                leaf("after"),
            )
        ),
        good=doc(
            seq(
                "{kind: loop_until, id: polish, max_iterations: 3, until: outputs.attempt, "
                "body: " + leaf("attempt") + "}",
                leaf("after"),
            )
        ),
        rule="references",
        pointer="/steps/steps/0/until",
        at="outputs.after,",
        phrase="reads outputs.after, but 'after' runs later in sequence 'main'",
    ),
    "test-reads-inside-an-expand": Case(
        bad=doc(FAN, tests="tests: [{name: done, expect: outputs.one}]\n"),
        good=doc(FAN, tests="tests: [{name: done, expect: outputs.fan | length == 2}]\n"),
        rule="references",
        pointer="/tests/0/expect",
        at="outputs.one}",
        phrase="'one' runs once per item of expand 'fan'",
    ),
}

EXPRESSIONS = {
    "template-syntax-error": Case(
        bad=doc(leaf("draft", '"{% if %}yes{% endif %}"')),
        good=doc(leaf("draft", '"{% if true %}yes{% endif %}"')),
        rule="expressions",
        pointer="/steps/prompt",
        at='"{% if',
        phrase="the template does not compile",
    ),
    "expression-syntax-error": Case(
        bad=doc(COND.replace("{condition}", "1 +")),
        good=doc(COND.replace("{condition}", "1 + 1")),
        rule="expressions",
        pointer="/steps/if",
        at='"1 +',
        phrase="the expression does not compile",
    ),
    "unknown-filter": Case(
        bad=doc(
            leaf("draft", '"{{ inputs.topic | shout }}"'), top="inputs: {topic: {type: string}}\n"
        ),
        good=doc(
            leaf("draft", '"{{ inputs.topic | upper }}"'), top="inputs: {topic: {type: string}}\n"
        ),
        rule="expressions",
        pointer="/steps/prompt",
        at='"{{ inputs.topic',
        phrase="No filter named 'shout'",
    ),
    "random-filter-unavailable": Case(
        bad=doc(
            leaf("draft", '"{{ inputs.topics | random }}"'), top="inputs: {topics: {type: array}}\n"
        ),
        good=doc(
            leaf("draft", '"{{ inputs.topics | first }}"'), top="inputs: {topics: {type: array}}\n"
        ),
        rule="expressions",
        pointer="/steps/prompt",
        at='"{{ inputs.topics',
        phrase="No filter named 'random'",
    ),
    "expand-variable-outside-the-body": Case(
        bad=doc(seq(FAN, leaf("after", '"Last {{ item }}"'))),
        good=doc(seq(FAN, leaf("after", '"Last {{ outputs.fan | last }}"'))),
        rule="expressions",
        pointer="/steps/steps/1/prompt",
        at='"Last',
        phrase="the template reads 'item', which is not defined here",
        hint="Names in scope: env, inputs, outputs.",
    ),
    "iteration-outside-a-loop": Case(
        bad=doc(seq(leaf("after", '"Round {{ iteration }}"'))),
        good=doc(LOOP.replace("{until}", "iteration >= 2")),
        rule="expressions",
        pointer="/steps/steps/0/prompt",
        at='"Round',
        phrase="the template reads 'iteration', which is not defined here",
    ),
    "candidate-outside-a-judge": Case(
        bad=doc(tournament(draft="{{ candidate }}")),
        good=doc(tournament()),
        rule="expressions",
        pointer="/steps/body/steps/0/prompt",
        at='"Draft',
        phrase="the template reads 'candidate', which is not defined here",
    ),
    "undeclared-input": Case(
        bad=doc(leaf("draft", '"{{ inputs.topic }}"')),
        good=doc(leaf("draft", '"{{ inputs.topic }}"'), top="inputs: {topic: {type: string}}\n"),
        rule="expressions",
        pointer="/steps/prompt",
        at='"{{ inputs.topic }}"',
        phrase="reads inputs.topic, which is not declared",
        hint="Declare it under inputs, e.g. topic: {type: string}.",
    ),
    "misspelled-input": Case(
        bad=doc(leaf("draft", '"{{ inputs.topci }}"'), top="inputs: {topic: {type: string}}\n"),
        good=doc(leaf("draft", '"{{ inputs.topic }}"'), top="inputs: {topic: {type: string}}\n"),
        rule="expressions",
        pointer="/steps/prompt",
        at='"{{ inputs.topci }}"',
        phrase="reads inputs.topci, which is not declared",
        hint="Write inputs.topic, which is declared, or declare topci under inputs.",
    ),
    "undeclared-env": Case(
        bad=doc(leaf("draft", '"{{ env.GREETING }}"')),
        good=doc(leaf("draft", '"{{ env.GREETING }}"'), top="env: [GREETING]\n"),
        rule="expressions",
        pointer="/steps/prompt",
        at='"{{ env.GREETING }}"',
        phrase="reads env.GREETING, which the workflow does not declare",
        hint="List GREETING under env to let the workflow read it.",
    ),
}

TEACHER = "{kind: teacher_review, id: lessons, inputs: [draft]}"

ROLES = {
    "undeclared-leaf-role": Case(
        bad=doc("{kind: leaf, id: draft, role: writr, prompt: Hi.}"),
        good=doc("{kind: leaf, id: draft, role: writer, prompt: Hi.}"),
        rule="roles",
        pointer="/steps/role",
        at="writr",
        phrase="role 'writr' is not declared",
        hint="Did you mean 'writer'?",
    ),
    "undeclared-reduce-role": Case(
        bad=doc(
            seq(
                leaf("draft"),
                "{kind: reduce, id: m, inputs: [draft], role: editor, prompt: Merge.}",
            )
        ),
        good=doc(
            seq(
                leaf("draft"),
                "{kind: reduce, id: m, inputs: [draft], role: writer, prompt: Merge.}",
            )
        ),
        rule="roles",
        pointer="/steps/steps/1/role",
        at="editor",
        phrase="role 'editor' is not declared",
        hint="Declare it under roles.",
    ),
    "undeclared-judge-role": Case(
        bad=doc(tournament(judge="critic")),
        good=doc(tournament()),
        rule="roles",
        pointer="/steps/judge/role",
        at="critic",
        phrase="role 'critic' is not declared",
    ),
    "undeclared-default-teacher-role": Case(
        bad=doc(seq(leaf("draft"), TEACHER)),
        good=doc(seq(leaf("draft"), TEACHER)).replace(
            "  writer: {}", "  writer: {}\n  teacher: {}"
        ),
        rule="roles",
        pointer="/steps/steps/1/role",
        at="{kind: teacher_review",
        phrase="role 'teacher' is not declared",
    ),
}

DOCUMENT = {
    "input-default-of-the-wrong-type": Case(
        bad=doc(leaf("draft"), top="inputs: {rounds: {type: integer, default: three}}\n"),
        good=doc(leaf("draft"), top="inputs: {rounds: {type: integer, default: 3}}\n"),
        rule="schema",
        pointer="/inputs/rounds/default",
        at="three",
        phrase="the default of input 'rounds' is not of type integer",
    ),
    "invalid-output-schema": Case(
        bad=doc(leaf("draft", extra=", output: {type: objekt}")),
        good=doc(leaf("draft", extra=", output: {type: object}")),
        rule="schema",
        pointer="/steps/output",
        at="{type: objekt}",
        phrase="output is not a valid JSON Schema",
        hint="Use one of the JSON Schema types: string, integer, number, boolean, array, object",
    ),
    "duplicate-sibling-ids": Case(
        bad=doc(seq(leaf("draft"), leaf("draft", "Again."))),
        good=doc(seq(leaf("draft"), leaf("redraft", "Again."))),
        rule="ids",
        pointer="/steps/steps/1/id",
        at="draft, role: writer, prompt: Again.",
        phrase="the id 'draft' is already used by the leaf at /steps/steps/0",
        hint="Rename this leaf, say to 'draft_2': every node needs its own id.",
    ),
    # The second node's reads are checked against where the first stands; the id is the error.
    "duplicate-id-reading-a-node-between-the-two": Case(
        bad=doc(seq(leaf("draft"), leaf("notes"), leaf("draft", '"{{ outputs.notes }}"'))),
        good=doc(seq(leaf("draft"), leaf("notes"), leaf("redraft", '"{{ outputs.notes }}"'))),
        rule="ids",
        pointer="/steps/steps/2/id",
        at='draft, role: writer, prompt: "{{ outputs.notes }}"',
        phrase="the id 'draft' is already used by the leaf at /steps/steps/0",
    ),
    "duplicate-id-of-a-branch-reading-its-child": Case(
        bad=doc(
            seq(
                "{kind: branch, id: draft, children: [{kind: leaf, id: x, role: writer, "
                "prompt: x}]}",
                leaf("draft", '"{{ outputs.x }}"'),
                "{kind: reduce, id: pick, inputs: [draft], expr: outputs.draft}",
            )
        ),
        good=doc(
            seq(
                "{kind: branch, id: draft, children: [{kind: leaf, id: x, role: writer, "
                "prompt: x}]}",
                leaf("redraft", '"{{ outputs.x }}"'),
                "{kind: reduce, id: pick, inputs: [draft], expr: outputs.draft}",
            )
        ),
        rule="ids",
        pointer="/steps/steps/1/id",
        at='draft, role: writer, prompt: "{{ outputs.x }}"',
        phrase="the id 'draft' is already used by the branch at /steps/steps/0",
    ),
    "duplicate-id-across-an-expand-body": Case(
        bad=doc(seq(leaf("one", "First."), FAN)),
        good=doc(seq(leaf("first", "First."), FAN)),
        rule="ids",
        pointer="/steps/steps/1/body/id",
        at='one, role: writer, prompt: "{{ item }}"',
        phrase="the id 'one' is already used by the leaf at /steps/steps/0",
    ),
}


def leaves(limit: int) -> str:
    """A workflow budget of ``limit`` model calls."""
    return f"budget: {{leaves: {limit}}}\n"


SHAPE = {
    "expand-times-body": Case(
        bad=doc(expand(10, body=PAIR), top=leaves(19)),
        good=doc(expand(10, body=PAIR), top=leaves(20)),
        rule="bounds",
        pointer="/budget/leaves",
        at="19}",
        phrase="the workflow can launch up to 20 model calls",
        hint="Raise budget.leaves to 20",
    ),
    "loops-multiplied": Case(
        bad=doc(LOOP.replace("{until}", "true"), top=leaves(5)),
        good=doc(LOOP.replace("{until}", "true"), top=leaves(6)),
        rule="bounds",
        pointer="/budget/leaves",
        at="5}",
        phrase="can launch up to 6 model calls",
        hint="Raise budget.leaves to 6",
    ),
    "both-cond-arms-counted": Case(
        bad=doc(COND.replace("{condition}", "true"), top=leaves(2)),
        good=doc(COND.replace("{condition}", "true"), top=leaves(3)),
        rule="bounds",
        pointer="/budget/leaves",
        at="2}",
        phrase="can launch up to 3 model calls",
    ),
    "tournament-count-times-body-plus-judge": Case(
        bad=doc(
            tournament(),
            top=leaves(8),
        ),
        good=doc(
            tournament(),
            top=leaves(9),
        ),
        rule="bounds",
        pointer="/budget/leaves",
        at="8}",
        phrase="can launch up to 9 model calls",
    ),
    "node-level-budget-leaves": Case(
        bad=doc(expand(4, extra="budget: {leaves: 3}\n")),
        good=doc(expand(4, extra="budget: {leaves: 4}\n")),
        rule="bounds",
        pointer="/steps/budget/leaves",
        at="3}",
        phrase="expand 'fan' can launch up to 4 model calls",
    ),
}

WRITER = '{kind: leaf, id: one, role: writer, prompt: "{{ item }}", writes: [src]}'

WRITES = {
    "overlapping-branch-children": Case(
        bad=doc(
            branch(leaf("api", extra=", writes: [src/api]"), leaf("rest", extra=", writes: [src]"))
        ),
        good=doc(
            branch(
                leaf("api", extra=", writes: [src/api]"),
                leaf("rest", extra=", writes: [src/apiv2]"),
            )
        ),
        rule="writes",
        pointer="/steps/children/0/writes",
        at="[src/api]",
        phrase="'api' writes 'src/api', which overlaps 'src' written by 'rest'",
        hint="isolation: worktree on 'both'",
    ),
    "expand-body-copies": Case(
        bad=doc(expand(2, body=WRITER)),
        good=doc(expand(2, extra="isolation: worktree\n", body=WRITER)),
        rule="writes",
        pointer="/steps/body/writes",
        at="[src]",
        phrase="overlaps 'src' written by other copies of itself",
    ),
}

COMMAND = "{kind: command, id: tests, run: [pytest, -q]}"
TEMPLATED = "{kind: command, id: tests, run: [pytest, '{{ inputs.target }}']}"

PERMISSIONS = {
    "command-not-admitted": Case(
        bad=doc(COMMAND, top="permissions: {commands: ['make *']}\n"),
        good=doc(COMMAND, top="permissions: {commands: ['pytest -q *']}\n"),
        rule="permissions",
        pointer="/steps/run",
        at="[pytest, -q]",
        phrase="command 'tests' runs 'pytest -q', which no permissions.commands entry admits",
        hint="to permissions.commands",
    ),
    "no-permissions-at-all": Case(
        bad=doc(COMMAND),
        good=doc(COMMAND, top="permissions: {commands: ['pytest -q *']}\n"),
        rule="permissions",
        pointer="/steps/run",
        at="[pytest, -q]",
        phrase="no permissions.commands admit any command",
        hint="'pytest -q'",
    ),
    "templated-command-never-admissible": Case(
        bad=doc(
            TEMPLATED, top="inputs: {target: {type: string}}\npermissions: {commands: ['make *']}\n"
        ),
        good=doc(
            TEMPLATED,
            top="inputs: {target: {type: string}}\npermissions: {commands: ['pytest *']}\n",
        ),
        rule="permissions",
        pointer="/steps/run",
        at="[pytest,",
        phrase="runs 'pytest *' (templated items as *), which no permissions.commands entry",
    ),
    "child-commands-wider": Case(
        bad=doc(
            seq(COMMAND, permissions="{commands: ['*']}"),
            top="permissions: {commands: ['pytest -q *']}\n",
        ),
        good=doc(
            seq(COMMAND, permissions="{commands: ['pytest -q']}"),
            top="permissions: {commands: ['pytest -q *']}\n",
        ),
        rule="permissions",
        pointer="/steps/permissions/commands",
        at="['*']",
        phrase="permissions.commands '*' is wider than the enclosing permissions allow",
        hint="only narrow",
    ),
    "child-writes-wider": Case(
        bad=doc(
            seq(leaf("draft"), permissions="{writes: [src]}"),
            top="permissions: {writes: [src/api]}\n",
        ),
        good=doc(
            seq(leaf("draft"), permissions="{writes: [src/api/v1]}"),
            top="permissions: {writes: [src/api]}\n",
        ),
        rule="permissions",
        pointer="/steps/permissions/writes",
        at="[src]",
        phrase="permissions.writes 'src' is outside the enclosing permissions (src/api)",
    ),
    "node-writes-outside-permissions": Case(
        bad=doc(leaf("draft", extra=", writes: [docs]"), top="permissions: {writes: [src]}\n"),
        good=doc(leaf("draft", extra=", writes: [src/api]"), top="permissions: {writes: [src]}\n"),
        rule="permissions",
        pointer="/steps/writes",
        at="[docs]",
        phrase="writes 'docs' is outside permissions.writes (src)",
    ),
}

BUDGETS = {
    "child-tokens-above-parent": Case(
        bad=doc(
            seq(leaf("draft", extra=", budget: {tokens: 2000}")), top="budget: {tokens: 1000}\n"
        ),
        good=doc(
            seq(leaf("draft", extra=", budget: {tokens: 500}")), top="budget: {tokens: 1000}\n"
        ),
        rule="budget",
        pointer="/steps/steps/0/budget/tokens",
        at="2000}",
        phrase="budget.tokens 2000 exceeds the enclosing limit 1000",
        hint="Lower it to at most 1000",
    ),
    "child-cost-above-parent": Case(
        bad=doc(
            seq(leaf("draft", extra=", budget: {cost_usd: 1.5}")), top="budget: {cost_usd: 1.0}\n"
        ),
        good=doc(
            seq(leaf("draft", extra=", budget: {cost_usd: 0.5}")), top="budget: {cost_usd: 1.0}\n"
        ),
        rule="budget",
        pointer="/steps/steps/0/budget/cost_usd",
        at="1.5}",
        phrase="budget.cost_usd 1.5 exceeds the enclosing limit 1.0",
    ),
}

CASES = {
    **REFERENCES,
    **EXPRESSIONS,
    **ROLES,
    **DOCUMENT,
    **SHAPE,
    **WRITES,
    **PERMISSIONS,
    **BUDGETS,
}

QUIET = {
    "earlier-sibling": doc(seq(leaf("draft"), leaf("polish", '"{{ outputs.draft }}"'))),
    "inside-an-earlier-sibling-sequence": doc(
        seq(
            f"{{kind: sequence, id: part, steps: [{leaf('draft')}]}}",
            "{kind: reduce, id: merge, inputs: [draft, part], expr: outputs.draft}",
        )
    ),
    "loop-until-reads-its-body": doc(LOOP.replace("{until}", "outputs.review == 'ok'")),
    "judge-reads-candidate": doc(tournament()),
    "tests-read-top-level-nodes": doc(
        seq(leaf("draft"), FAN),
        tests="tests:\n  - {name: all, expect: outputs.main and outputs.draft and outputs.fan}\n",
    ),
    "branch-overlap-in-worktrees": doc(
        branch(
            leaf("api", extra=", writes: [src/api]"),
            leaf("rest", extra=", writes: [src]"),
            isolation="worktree",
        )
    ),
    "sequential-overlapping-writes": doc(
        seq(leaf("api", extra=", writes: [src/api]"), leaf("rest", extra=", writes: [src]"))
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fires_at_the_offending_field(tmp_path: Path, case: Case) -> None:
    checked = check(tmp_path, case.bad)
    assert checked.workflow is None
    found = only(checked)
    assert case.phrase in found.message
    assert (found.rule, found.pointer, found.line, found.col) == (
        case.rule,
        case.pointer,
        *position(case.bad, case.at),
    )
    assert found.file == str(tmp_path / "workflow.yaml")
    assert found.hint
    assert case.hint in found.hint


@pytest.mark.parametrize(
    "text", [*(c.good for c in CASES.values()), *QUIET.values()], ids=[*CASES, *QUIET]
)
def test_quiet_on_the_good_workflow(tmp_path: Path, text: str) -> None:
    checked = check(tmp_path, text)
    assert rendered(checked) == []
    assert checked.workflow is not None


@pytest.mark.parametrize("kind", ["integer", "number"])
def test_false_is_not_a_numeric_default(tmp_path: Path, kind: str) -> None:
    text = doc(leaf("draft"), top=f"inputs: {{rounds: {{type: {kind}, default: false}}}}\n")
    found = only(check(tmp_path, text))
    assert (found.rule, found.pointer) == ("schema", "/inputs/rounds/default")


def test_child_star_is_wider_than_parent_question_mark(tmp_path: Path) -> None:
    text = doc(
        seq(COMMAND, permissions="{commands: ['git diff *']}"),
        top="permissions: {commands: ['git diff ?']}\n",
    )
    found = [(d.rule, d.pointer) for d in check(tmp_path, text).diagnostics]
    assert ("permissions", "/steps/permissions/commands") in found


def test_node_cannot_grant_commands_the_workflow_never_allowed(tmp_path: Path) -> None:
    text = doc(seq(COMMAND, permissions="{commands: ['*']}"))
    found = only(check(tmp_path, text))
    assert (found.rule, found.pointer) == ("permissions", "/steps/permissions/commands")


NEEDS = doc(leaf("draft")).replace("writer: {}", "writer: {needs: [json_mode]}")

OPENAI = """\
providers:
  local:
    type: openai
    base_url: http://127.0.0.1:8911/v1
    api_key_env: LOCAL_LLM_KEY
    models:
      small: {{capabilities: [{capabilities}]}}
roles:
  writer: {{provider: local, model: small}}
"""


def capabilities(tmp_path: Path, config: str) -> RoleCapabilities:
    path = tmp_path / "branchleaf.yaml"
    path.write_text(config, encoding="utf-8")
    return load_config(str(path)).capabilities


def test_role_needs_unmet_by_the_configured_model(tmp_path: Path) -> None:
    caps = capabilities(tmp_path, OPENAI.format(capabilities="tools"))
    found = only(check(tmp_path, NEEDS, capabilities=caps))
    assert (found.rule, found.pointer) == ("roles", "/roles/writer/needs")
    assert (found.line, found.col) == position(NEEDS, "[json_mode]")
    assert "role 'writer' needs json_mode, which provider 'local', model 'small'" in found.message
    assert found.hint == (
        "Map roles.writer in branchleaf.yaml to a model whose capabilities include json_mode."
    )


@pytest.mark.parametrize(
    "config",
    [
        OPENAI.format(capabilities="tools, json_mode"),
        "roles:\n  writer: {provider: mock}\n",
        "providers:\n  fake: {type: mock}\nroles:\n  default: {provider: fake}\n",
    ],
    ids=["openai-with-json-mode", "mock", "mock-as-default"],
)
def test_role_needs_met(tmp_path: Path, config: str) -> None:
    checked = check(tmp_path, NEEDS, capabilities=capabilities(tmp_path, config))
    assert rendered(checked) == []


def nested(depth: int) -> str:
    """``depth`` sequences, each the only step of the one above, around one leaf."""
    lines = []
    for level in range(depth):
        pad = "  " * (2 * level)
        lines += [f"{pad}kind: sequence", f"{pad}id: level{level}", f"{pad}steps:", f"{pad}  -"]
    pad = "  " * (2 * depth)
    lines += [f"{pad}kind: leaf", f"{pad}id: deepest", f"{pad}role: writer", f"{pad}prompt: Hi."]
    return doc("\n".join(lines))


def test_depth_limit_fires(tmp_path: Path) -> None:
    text = nested(33)
    found = only(check(tmp_path, text))
    assert found.rule == "bounds"
    assert found.pointer == "/steps" + "/steps/0" * 33
    assert (found.line, found.col) == position(text, "kind: leaf")
    assert "nest 34 deep, more than the limit of 32" in found.message
    assert found.hint


def test_depth_limit_quiet(tmp_path: Path) -> None:
    assert rendered(check(tmp_path, nested(30))) == []


MANY = """\
version: 1
name: demo
roles:
  writer: {}
budget: {tokens: 1000}
steps:
  kind: branch
  id: both
  children:
    - {kind: leaf, id: api, role: writer, prompt: "{{ outputs.rest }}", writes: [src]}
    - {kind: leaf, id: rest, role: editor, prompt: Hi., writes: [src/api]}
    - {kind: leaf, id: docs, role: writer, prompt: Hi., budget: {tokens: 5000}}
"""


def test_every_semantic_error_is_reported_in_one_pass(tmp_path: Path) -> None:
    checked = check(tmp_path, MANY)
    assert [(d.rule, d.pointer, d.line) for d in checked.diagnostics] == [
        ("references", "/steps/children/0/prompt", 10),
        ("writes", "/steps/children/0/writes", 10),
        ("roles", "/steps/children/1/role", 11),
        ("budget", "/steps/children/2/budget/tokens", 12),
    ]
    assert all(d.hint for d in checked.diagnostics)


LIB = """\
def review(id, role):
    return leaf(
        id = id,
        role = role,
        prompt = "Review it.",
    )
"""

STAR = """\
load("lib.star", "review")

workflow(
    name = "demo",
    roles = {"writer": {}},
    steps = sequence(
        id = "main",
        steps = [
            leaf(id = "draft", role = "writer", prompt = "PROMPT"),
            review("check", "ROLE"),
            leaf(id = "LAST", role = "writer", prompt = "Polish."),
        ],
    ),
)
"""


def star(
    tmp_path: Path, *, prompt: str = "Draft.", role: str = "writer", last: str = "polish"
) -> tuple[str, Checked]:
    """The Starlark workflow above, loading ``lib.star``, and what checking it finds."""
    (tmp_path / "lib.star").write_text(LIB, encoding="utf-8")
    text = STAR.replace("PROMPT", prompt).replace("ROLE", role).replace("LAST", last)
    return text, check(tmp_path, text, name="workflow.star")


def test_starlark_reference_points_at_the_builtin_call(tmp_path: Path) -> None:
    text, checked = star(tmp_path, prompt="{{ outputs.polish }}")
    found = only(checked)
    assert (found.rule, found.pointer) == ("references", "/steps/steps/0/prompt")
    assert found.file == str(tmp_path / "workflow.star")
    assert (found.line, found.col) == position(text, 'leaf(id = "draft"')
    assert "'polish' runs later in sequence 'main'" in found.message
    assert found.hint


def test_starlark_node_built_in_a_loaded_function_points_into_that_file(tmp_path: Path) -> None:
    _, checked = star(tmp_path, role="critic")
    found = only(checked)
    assert (found.rule, found.pointer) == ("roles", "/steps/steps/1/role")
    assert Path(found.file).resolve() == (tmp_path / "lib.star").resolve()
    assert (found.line, found.col) == position(LIB, "leaf(")
    assert "role 'critic' is not declared" in found.message
    assert found.hint


def test_starlark_duplicate_id_points_at_the_second_call(tmp_path: Path) -> None:
    text, checked = star(tmp_path, last="draft")
    found = only(checked)
    assert (found.rule, found.pointer) == ("ids", "/steps/steps/2/id")
    assert found.file == str(tmp_path / "workflow.star")
    assert (found.line, found.col) == position(
        text, 'leaf(id = "draft", role = "writer", prompt = "Polish.")'
    )
    assert "the id 'draft' is already used" in found.message


def test_starlark_quiet(tmp_path: Path) -> None:
    _, checked = star(tmp_path)
    assert rendered(checked) == []
    assert checked.workflow is not None
