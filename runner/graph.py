"""Mermaid flowchart of a workflow's node tree, optionally coloured by run status.

One Mermaid node per IR node (generated copies are not drawn: the graph shows the document),
containment edges parent -> child, and dashed data edges for ``reduce``/``teacher_review`` inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise

from runner import ir
from runner.plural import plural
from runner.tree import children, walk

SHAPES: dict[str, tuple[str, str]] = {
    "leaf": ("[", "]"),  # rectangle: the plain unit of work
    "command": ("[[", "]]"),  # subroutine: a tool the runner runs itself
    "sequence": ("([", "])"),  # stadium
    "branch": ("[/", "/]"),  # parallelogram
    "expand": ("[\\", "\\]"),  # parallelogram leaning the other way: branch's dynamic sibling
    "cond": ("{", "}"),  # rhombus: the usual decision shape
    "loop_until": ("{{", "}}"),  # hexagon
    "reduce": ("[/", "\\]"),  # trapezoid: many inputs narrowed into one
    "tournament": (">", "]"),  # asymmetric flag: one winner
    "pareto": ("[(", ")]"),  # cylinder: a kept set of results
    "teacher_review": ("((", "))"),  # circle
}
"""Opening and closing Mermaid shape delimiters per node kind; the label sits between them."""

CONTROL_KINDS = frozenset(
    {"sequence", "branch", "expand", "cond", "loop_until", "tournament", "pareto"}
)
"""Kinds that only arrange other nodes; they share one neutral colour."""

_CONTROL_STYLE = "fill:#f3f3f3,stroke:#8a8a8a,color:#333"
KIND_STYLES: dict[str, str] = {
    "leaf": "fill:#e8f0f8,stroke:#5b7a99,color:#1f2d3a",
    "command": "fill:#eaf3ea,stroke:#5f8a5f,color:#1f331f",
    "reduce": "fill:#f1ecf6,stroke:#7d6a96,color:#2d2438",
    "teacher_review": "fill:#f7f0e4,stroke:#9a7b4f,color:#3a2e1c",
    **dict.fromkeys(sorted(CONTROL_KINDS), _CONTROL_STYLE),
}
"""``classDef`` style per node kind."""

STATUS_STYLES: dict[str, str] = {
    "pending": "fill:#f5f5f5,stroke:#b0b0b0,color:#666",
    "running": "fill:#dbeafe,stroke:#3b82f6,color:#1e3a8a",
    "succeeded": "fill:#dcfce7,stroke:#16a34a,color:#14532d",
    "failed": "fill:#fee2e2,stroke:#dc2626,color:#7f1d1d",
    "skipped": "fill:#f3f4f6,stroke:#9ca3af,color:#4b5563,stroke-dasharray:4 2",
    "cancelled": "fill:#e5e7eb,stroke:#6b7280,color:#374151,stroke-dasharray:4 2",
    "budget_exceeded": "fill:#ffedd5,stroke:#ea580c,color:#7c2d12",
    "stuck": "fill:#fef9c3,stroke:#ca8a04,color:#713f12",
    "replay_diverged": "fill:#fae8ff,stroke:#a21caf,color:#701a75",
    "provider_failed": "fill:#e0f2fe,stroke:#0369a1,color:#0c4a6e,stroke-dasharray:4 2",
    # Not a status of its own: a node whose every copy failed and was gone on without.
    "tolerated": "fill:#fef3c7,stroke:#d97706,color:#78350f,stroke-dasharray:4 2",
}
"""``classDef`` style per node status."""

MAX_DETAIL = 40
"""Longest second label line, in characters, before it is cut with an ellipsis."""

# "#" goes first: every other replacement introduces one. "&", "<" and ">" are escaped too
# because Mermaid renders labels as HTML.
_ESCAPES = (("#", "#35;"), ('"', "#quot;"), ("&", "#amp;"), ("<", "#lt;"), (">", "#gt;"))
_TIMES = "\N{MULTIPLICATION SIGN}"  # spelled out: it looks like an "x"
_UNSAFE_ID_CHAR = re.compile(r"[^A-Za-z0-9_]")


def mermaid(workflow: ir.Workflow, statuses: Mapping[str, str] | None = None) -> str:
    """A Mermaid ``flowchart TD`` of ``workflow``, coloured by ``statuses`` when given."""
    nodes = [visit.node for visit in walk(workflow.steps)]
    known = {node.id for node in nodes}
    # Statuses of ids that are not drawn (derived copies such as ``review_one[3]``) are ignored.
    status_of = {k: v for k, v in (statuses or {}).items() if k in known}
    unknown = sorted(set(status_of.values()) - STATUS_STYLES.keys())
    if unknown:
        raise ValueError(f"unknown node status: {', '.join(unknown)}")

    lines = ["flowchart TD"]
    lines.extend(_declaration(node) for node in nodes)
    for node in nodes:
        lines.extend(_edges(node, known))

    kinds = [kind for kind in SHAPES if any(n.kind == kind for n in nodes)]
    used_statuses = [s for s in STATUS_STYLES if s in status_of.values()]
    # Status classes are defined after kind classes so that they also win in the stylesheet.
    lines.extend(f"classDef {kind} {KIND_STYLES[kind]}" for kind in kinds)
    lines.extend(f"classDef {status} {STATUS_STYLES[status]}" for status in used_statuses)
    # A node with a status gets only its status class, so the colour never depends on the
    # renderer's rule for nodes in two classes.
    for kind in kinds:
        ids = [mermaid_id(n.id) for n in nodes if n.kind == kind and n.id not in status_of]
        if ids:
            lines.append(f"class {','.join(ids)} {kind}")
    lines.extend(f"class {mermaid_id(n.id)} {status_of[n.id]}" for n in nodes if n.id in status_of)
    return "\n".join(lines[:1] + ["    " + line for line in lines[1:]]) + "\n"


def mermaid_id(node_id: str) -> str:
    """The Mermaid node id of a workflow node id, safe from Mermaid keywords such as ``end``."""
    # Valid ids never contain other characters; the hex escape keeps odd ones parseable.
    return "n_" + _UNSAFE_ID_CHAR.sub(lambda m: f"_{ord(m.group()):x}_", node_id)


def escape(text: str) -> str:
    """``text`` made safe inside a double-quoted Mermaid label, on one line."""
    text = " ".join(text.split())
    for raw, code in _ESCAPES:
        text = text.replace(raw, code)
    return text


def summary(node: ir.Node) -> str:
    """The second label line: the node's kind and its most telling detail, cut short."""
    text = " ".join(_describe(node).split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _describe(node: ir.Node) -> str:
    if isinstance(node, ir.Leaf):
        return f"leaf · {node.role}"
    if isinstance(node, ir.Command):
        return f"command · {node.run[0]}" if node.run else "command"
    if isinstance(node, ir.Sequence):
        return f"sequence · {plural(len(node.steps), 'step')}"
    if isinstance(node, ir.Branch):
        return f"branch · {plural(len(node.children), 'child', 'children')}"
    if isinstance(node, ir.Expand):
        return f"expand ≤ {node.max_children} · {node.over}"
    if isinstance(node, ir.Cond):
        return f"cond · {node.if_}"
    if isinstance(node, ir.LoopUntil):
        return f"loop_until ≤ {node.max_iterations}"
    if isinstance(node, ir.Reduce):
        return f"reduce · {node.role or node.expr or ''}"
    if isinstance(node, ir.Tournament):
        scorer = f"judge {node.judge.role}" if node.judge is not None else "score"
        return f"tournament {_size(node)} · {scorer}"
    if isinstance(node, ir.Pareto):
        return f"pareto {_size(node)} · {plural(len(node.objectives), 'objective')}"
    return f"teacher_review · {node.role or ir.DEFAULT_TEACHER_ROLE}"


def _size(node: ir.Tournament | ir.Pareto) -> str:
    if node.count is not None:
        return f"{_TIMES} {node.count}"
    return f"of {len(node.candidates or ())}"


def _declaration(node: ir.Node) -> str:
    opening, closing = SHAPES[node.kind]
    label = f"{escape(node.id)}<br/>{escape(summary(node))}"
    return f'{mermaid_id(node.id)}{opening}"{label}"{closing}'


def _edges(node: ir.Node, known: set[str]) -> list[str]:
    """Edges leaving ``node`` toward its children, plus data edges into it."""
    src = mermaid_id(node.id)
    out: list[str] = []
    if isinstance(node, ir.Sequence):
        steps = [mermaid_id(step.id) for step in node.steps]
        out.extend(f"{src} --> {first}" for first in steps[:1])
        out.extend(f"{a} --> {b}" for a, b in pairwise(steps))
    elif isinstance(node, ir.Cond):
        out.append(f"{src} -- then --> {mermaid_id(node.then.id)}")
        if node.else_ is not None:
            out.append(f"{src} -- else --> {mermaid_id(node.else_.id)}")
    elif isinstance(node, ir.LoopUntil):
        body = mermaid_id(node.body.id)
        out += [f"{src} --> {body}", f"{body} -. until .-> {src}"]
    elif isinstance(node, ir.Expand):
        # ``as`` is an identifier by schema; edge text is unquoted, so keep it that way.
        out.append(
            f"{src} -- each {_UNSAFE_ID_CHAR.sub('_', node.as_)} --> {mermaid_id(node.body.id)}"
        )
    elif isinstance(node, ir.Tournament | ir.Pareto) and node.body is not None:
        label = f"{_TIMES} {node.count}" if node.count is not None else "body"
        out.append(f"{src} -- {label} --> {mermaid_id(node.body.id)}")
    else:
        out.extend(f"{src} --> {mermaid_id(child.node.id)}" for child in children(node))
    if isinstance(node, ir.Reduce | ir.TeacherReview):
        # An unknown input is a validation error elsewhere; drawing it would invent a node.
        out.extend(f"{mermaid_id(i)} -.-> {src}" for i in node.inputs if i in known)
    return out
