"""The typed intermediate representation every workflow compiles to.

Types only: building the IR from a document lives in ``runner.compiler.build``, walking it in
``runner.tree``. Optional fields are ``None`` when the document leaves them out, so that
document -> IR -> document gives back exactly what was written; the defaults the executor applies
are the module constants below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Memo = Literal["on", "off", "read"]
Isolation = Literal["shared", "state", "worktree"]
Ordering = Literal["score_then_cost", "cost_then_score"]
Goal = Literal["max", "min"]
InputType = Literal["string", "integer", "number", "boolean", "array", "object"]
MessageRole = Literal["system", "user", "assistant"]

DEFAULT_MEMO: Memo = "on"
DEFAULT_ISOLATION: Isolation = "shared"
DEFAULT_CANDIDATE_ISOLATION: Isolation = "state"
DEFAULT_ORDERING: Ordering = "score_then_cost"
DEFAULT_PARETO_MAX_ITEMS = 8
DEFAULT_TEACHER_ROLE = "teacher"

FrozenJson = Any
"""A JSON value made deeply immutable by :func:`runner.canonical.freeze`."""


def instance_id(node_id: str, indices: tuple[int, ...]) -> str:
    """The derived id of one generated copy of a node: ``review_one[3]``, ``fix[1][0]``."""
    if not indices:
        return node_id
    if len(indices) == 1:  # the usual copy: one expand or candidate level
        return f"{node_id}[{indices[0]}]"
    return node_id + "".join(f"[{index}]" for index in indices)


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Resource limits; ``None`` means no limit at this level."""

    tokens: int | None = None
    """Prompt plus completion tokens."""
    cost_usd: float | None = None
    """Dollars at the configured prices."""
    wall_s: float | None = None
    """Wall-clock seconds."""
    leaves: int | None = None
    """Model calls launched."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Concurrency:
    """Strict bounds on work in flight."""

    branches: int | None = None
    """Concurrent children of fan-out nodes."""
    leaves: int | None = None
    """Model calls and commands in flight."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Permissions:
    """What a workflow or subtree may do; ``None`` inherits the parent's."""

    commands: tuple[str, ...] | None = None
    """Globs over command lines that ``command`` nodes may run."""
    writes: tuple[str, ...] | None = None
    """Path globs nodes may declare in ``writes``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """Retries of a failed node."""

    attempts: int
    """Total attempts, the first included."""
    backoff_s: float | None = None
    """Wait before the second attempt, doubled for each later one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSpec:
    """A declared workflow input."""

    type: InputType
    """JSON type of the value."""
    default: FrozenJson = None
    """Value used when the run gives none (``has_default`` tells a null default from none)."""
    has_default: bool = False
    """Whether the document gave a default."""
    description: str | None = None
    """What the input means."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Role:
    """A role leaves are played by."""

    needs: tuple[str, ...] | None = None
    """Capabilities the model behind the role must have."""
    description: str | None = None
    """What the role does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Test:
    """An assertion checked after the run."""

    name: str
    """The JUnit test case name."""
    expect: str
    """Expression that must be true."""
    description: str | None = None
    """What it checks."""
    repeat: int | None = None
    """Runs ``ci`` checks it over (``None``: one)."""
    pass_rate: float | None = None
    """The share of those runs that must pass (``None``: all)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """An evaluation case: a named set of input values for one run of the workflow."""

    name: str
    """Unique among the cases; the split rule orders cases by it."""
    inputs: FrozenJson
    """Input values by name, typed as declared (inputs left out take their defaults)."""
    description: str | None = None
    """What the case checks."""
    source: str = field(default="", compare=False)
    """The cases file it was read from (empty for a workflow's own cases)."""
    source_line: int | None = field(default=None, compare=False)
    """The 1-based line of its entry in that file, where known."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CiSettings:
    """How ``branchleaf ci`` runs the workflow live; ``run`` and replays ignore it."""

    inputs: FrozenJson = None
    """Input values by name, typed as declared, given as ``--input`` would give them."""
    mock_script: str | None = None
    """The mock provider's script, relative to the workflow file's folder."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One chat message of a leaf."""

    role: MessageRole
    """Who speaks."""
    content: str
    """Template of the text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Judge:
    """The model call that scores a tournament candidate."""

    role: str
    """Role that judges."""
    prompt: str
    """Template; ``candidate`` is the output scored."""
    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int | None = None
    """Reply token bound."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Objective:
    """One objective of a Pareto selection."""

    name: str
    """Shown in reports."""
    expr: str
    """Expression over ``candidate``."""
    goal: Goal
    """Whether larger or smaller is better."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBase:
    """Fields every node kind has."""

    id: str
    """Unique in the workflow."""
    description: str | None = None
    """What the node is for."""
    budget: Budget | None = None
    """Limits for this subtree."""
    permissions: Permissions | None = None
    """Permissions for this subtree."""
    timeout_s: float | None = None
    """Wall-clock limit of one attempt."""
    retry: Retry | None = None
    """Retries after a failure."""
    memo: Memo | None = None
    """Memo use of the calls under this node."""
    writes: tuple[str, ...] | None = None
    """Write scope, repository-relative globs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaf(NodeBase):
    """One model call."""

    kind: Literal["leaf"] = "leaf"
    role: str
    """Role that answers."""
    prompt: str | None = None
    """User message template (or ``messages``)."""
    messages: tuple[Message, ...] | None = None
    """Full chat as templates (or ``prompt``)."""
    output: FrozenJson = None
    """JSON Schema the reply must satisfy."""
    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int | None = None
    """Reply token bound."""
    sample: int | None = None
    """Rollout index, part of the memo key."""
    allow_fail: bool | None = None
    """A failure is tolerated: the output is a failure marker and the run goes on."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Command(NodeBase):
    """A deterministic tool step."""

    kind: Literal["command"] = "command"
    run: tuple[str, ...]
    """Argv templates, no shell."""
    cwd: str | None = None
    """Working directory template."""
    env: FrozenJson = None
    """Extra environment variables, name to template."""
    allow_fail: bool | None = None
    """A non-zero exit does not fail the node."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sequence(NodeBase):
    """Children in order."""

    kind: Literal["sequence"] = "sequence"
    steps: tuple[Node, ...]
    """The children."""
    concurrency: Concurrency | None = None
    """Bounds for the subtree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch(NodeBase):
    """Children at the same time."""

    kind: Literal["branch"] = "branch"
    children: tuple[Node, ...]
    """The children."""
    isolation: Isolation | None = None
    """How children are kept apart."""
    fail_fast: bool | None = None
    """Cancel siblings on the first failure."""
    min_successes: int | None = None
    """Children that must succeed for it to go on; the others' failures are tolerated."""
    concurrency: Concurrency | None = None
    """Bounds for the subtree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Expand(NodeBase):
    """Dynamic fan-out over a list."""

    kind: Literal["expand"] = "expand"
    over: str
    """Expression yielding the items."""
    as_: str = field(metadata={"doc": "as"})
    """Variable bound to each item."""
    body: Node
    """Template node copied per item."""
    max_children: int
    """Upper bound on items."""
    isolation: Isolation | None = None
    """How copies are kept apart."""
    fail_fast: bool | None = None
    """Cancel siblings on the first failure."""
    min_successes: int | None = None
    """Children that must succeed for it to go on; the others' failures are tolerated."""
    concurrency: Concurrency | None = None
    """Bounds for the subtree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Cond(NodeBase):
    """A conditional."""

    kind: Literal["cond"] = "cond"
    if_: str = field(metadata={"doc": "if"})
    """The condition expression."""
    then: Node
    """Runs when true."""
    else_: Node | None = field(default=None, metadata={"doc": "else"})
    """Runs when false."""
    concurrency: Concurrency | None = None
    """Bounds for the subtree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopUntil(NodeBase):
    """A bounded loop."""

    kind: Literal["loop_until"] = "loop_until"
    body: Node
    """Run once per iteration."""
    until: str
    """Stop condition, checked after each iteration."""
    max_iterations: int
    """Upper bound on iterations."""
    concurrency: Concurrency | None = None
    """Bounds for the subtree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reduce(NodeBase):
    """Fan-in by expression or synthesis call."""

    kind: Literal["reduce"] = "reduce"
    inputs: tuple[str, ...]
    """Ids of the nodes combined."""
    expr: str | None = None
    """Expression computing the output."""
    role: str | None = None
    """Role of the synthesis call."""
    prompt: str | None = None
    """Synthesis prompt template."""
    output: FrozenJson = None
    """JSON Schema of the synthesis reply."""
    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int | None = None
    """Reply token bound."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tournament(NodeBase):
    """Candidates scored, one winner."""

    kind: Literal["tournament"] = "tournament"
    candidates: tuple[Node, ...] | None = None
    """Explicit candidates (or ``count`` + ``body``)."""
    count: int | None = None
    """Number of samples of ``body``."""
    body: Node | None = None
    """Node sampled ``count`` times."""
    judge: Judge | None = None
    """Model call scoring each candidate (or ``score``)."""
    score: str | None = None
    """Expression scoring each candidate (or ``judge``)."""
    ordering: Ordering | None = None
    """How the winner is picked."""
    min_score: float | None = None
    """Lowest score that can win."""
    min_successes: int | None = None
    """Candidates that must succeed for it to go on; the others' failures are tolerated."""
    isolation: Isolation | None = None
    """How candidates are kept apart."""
    concurrency: Concurrency | None = None
    """Bounds for the subtree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pareto(NodeBase):
    """Candidates scored, the non-dominated set kept."""

    kind: Literal["pareto"] = "pareto"
    candidates: tuple[Node, ...] | None = None
    """Explicit candidates (or ``count`` + ``body``)."""
    count: int | None = None
    """Number of samples of ``body``."""
    body: Node | None = None
    """Node sampled ``count`` times."""
    objectives: tuple[Objective, ...]
    """The objectives."""
    max_items: int | None = None
    """Upper bound on the frontier."""
    diversity_key: str | None = None
    """Tie-break expression."""
    min_successes: int | None = None
    """Candidates that must succeed for it to go on; the others' failures are tolerated."""
    isolation: Isolation | None = None
    """How candidates are kept apart."""
    concurrency: Concurrency | None = None
    """Bounds for the subtree."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TeacherReview(NodeBase):
    """Proposes lessons from earlier results."""

    kind: Literal["teacher_review"] = "teacher_review"
    inputs: tuple[str, ...]
    """Ids of the nodes reviewed."""
    role: str | None = None
    """Role proposing lessons (default ``teacher``)."""
    prompt: str | None = None
    """Extra instructions template."""
    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int | None = None
    """Reply token bound."""


Node = (
    Leaf
    | Command
    | Sequence
    | Branch
    | Expand
    | Cond
    | LoopUntil
    | Reduce
    | Tournament
    | Pareto
    | TeacherReview
)

NODE_TYPES: dict[str, type[Node]] = {
    "leaf": Leaf,
    "command": Command,
    "sequence": Sequence,
    "branch": Branch,
    "expand": Expand,
    "cond": Cond,
    "loop_until": LoopUntil,
    "reduce": Reduce,
    "tournament": Tournament,
    "pareto": Pareto,
    "teacher_review": TeacherReview,
}
"""Node class by ``kind``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """A compiled, validated workflow."""

    version: int
    """Language version (1)."""
    name: str
    """Workflow name."""
    steps: Node
    """The root node."""
    description: str | None = None
    """What the workflow does."""
    inputs: tuple[tuple[str, InputSpec], ...] | None = None
    """Declared inputs, in document order."""
    env: tuple[str, ...] | None = None
    """Environment variables expressions may read."""
    roles: tuple[tuple[str, Role], ...] | None = None
    """Declared roles, in document order."""
    budget: Budget | None = None
    """Run limits."""
    concurrency: Concurrency | None = None
    """Run concurrency bounds."""
    permissions: Permissions | None = None
    """Run permissions."""
    tests: tuple[Test, ...] | None = None
    """Post-run assertions."""
    cases: tuple[Case, ...] | None = None
    """Evaluation cases of the learning loop, in document order."""
    metric: str | None = None
    """Expression scoring a case's run with a number (higher is better)."""
    ci: CiSettings | None = None
    """Inputs and mock script ``branchleaf ci`` runs it with."""
    hash: str = ""
    """SHA-256 of the canonical JSON document."""
    source: str = ""
    """File the workflow was compiled from, as given."""
