"""What a run produces: per-node results, test results and the run's totals."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.status import Status


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    """Model usage summed over calls."""

    calls: int = 0
    """Model calls that reached a provider."""
    prompt_tokens: int = 0
    """Prompt tokens."""
    completion_tokens: int = 0
    """Completion tokens."""
    cached_prompt_tokens: int = 0
    """Prompt tokens the provider served from its own prompt cache."""
    cost_usd: float = 0.0
    """Dollars."""
    memo_hits: int = 0
    """Calls answered by the memo (or shared with an identical call in flight)."""
    memo_misses: int = 0
    """Calls the memo could have answered but had no entry for."""
    saved_tokens: int = 0
    """Tokens the memo's answers would have cost."""
    saved_usd: float = 0.0
    """Dollars the memo's answers would have cost."""

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @staticmethod
    def total(spends: Iterable[Spend]) -> Spend:
        """The sum of many (one Spend made rather than one per term)."""
        total = SpendSum()
        for spend in spends:
            total.add(spend)
        return total.spend()

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            memo_hits=self.memo_hits + other.memo_hits,
            memo_misses=self.memo_misses + other.memo_misses,
            saved_tokens=self.saved_tokens + other.saved_tokens,
            saved_usd=self.saved_usd + other.saved_usd,
        )


@dataclass(slots=True)
class SpendSum:
    """Running sums of spends, added to in place: one add per term, one Spend at the end."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cost_usd: float = 0.0
    memo_hits: int = 0
    memo_misses: int = 0
    saved_tokens: int = 0
    saved_usd: float = 0.0

    def add(self, spend: Spend) -> None:
        """Add one spend."""
        self.calls += spend.calls
        self.prompt_tokens += spend.prompt_tokens
        self.completion_tokens += spend.completion_tokens
        self.cached_prompt_tokens += spend.cached_prompt_tokens
        self.cost_usd += spend.cost_usd
        self.memo_hits += spend.memo_hits
        self.memo_misses += spend.memo_misses
        self.saved_tokens += spend.saved_tokens
        self.saved_usd += spend.saved_usd

    def spend(self) -> Spend:
        """The sum so far."""
        return Spend(
            calls=self.calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens,
            cost_usd=self.cost_usd,
            memo_hits=self.memo_hits,
            memo_misses=self.memo_misses,
            saved_tokens=self.saved_tokens,
            saved_usd=self.saved_usd,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeResult:
    """How one node (or one copy of it) ended."""

    path: str
    """Where it ran: derived id with its copy indices and loop iterations (``fix@1/check``)."""
    node_id: str
    """The node's id in the workflow."""
    kind: str
    """The node kind."""
    status: Status
    """Its terminal status."""
    output: Any = None
    """Its output (JSON-like), when it succeeded."""
    error: str | None = None
    """Why it did not succeed."""
    attempts: int = 1
    """Attempts made, retries included."""
    failures: tuple[str, ...] = ()
    """Why each attempt before the last failed (a node ``retry`` ran it again)."""
    duration_s: float = 0.0
    """Wall time from start to end."""
    spend: Spend = Spend()
    """Model usage of this node's own calls."""
    decision: Any = None
    """Control decision made (cond arm, loop iterations, expand items, winner, frontier)."""
    position: str = ""
    """Where its end sits in the run's logical order (see ``runner.plan``)."""
    provider_failure: str | None = None
    """For a node a provider failure stopped (``provider_failed``), the sentence naming that
    failure, the same for every call it stopped (``runner.providers.outage``)."""
    tolerated: bool = False
    """A failure the run goes on without (``allow_fail``, ``min_successes``): it does not
    count toward the run's status."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    """One workflow test after the run."""

    name: str
    """The test's name."""
    passed: bool
    """Whether its expectation held."""
    message: str | None = None
    """Why it failed, or the error evaluating it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """A finished run."""

    workflow: str
    """Workflow name."""
    workflow_hash: str
    """SHA-256 of its document."""
    status: Status
    """The run's status, by precedence over its nodes."""
    reason: str | None
    """What decided a status other than succeeded."""
    output: Any
    """The root node's output."""
    outputs: dict[str, Any]
    """Outputs of every node readable after the run, by id."""
    nodes: tuple[NodeResult, ...]
    """Every node and copy that ended, in the order they ended."""
    tests: tuple[TestResult, ...]
    """The workflow tests."""
    spend: Spend
    """Usage of the whole run."""
    duration_s: float
    """Wall time of the run."""
    total_nodes: int
    """Nodes and copies known at the end (the done/total denominator)."""

    @property
    def passed(self) -> bool:
        """Whether every node succeeded (or was skipped) and every test passed."""
        return self.status is Status.SUCCEEDED and all(test.passed for test in self.tests)


class NodeFailed(Exception):
    """A node ended without success; carries the status, the reason and, through containers
    that failed because a child did, the reason of the innermost failure (``cause``); for a
    provider failure, the sentence naming it (:attr:`NodeResult.provider_failure`)."""

    def __init__(
        self,
        status: Status,
        reason: str,
        cause: str | None = None,
        *,
        provider_failure: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.cause = cause or reason
        self.provider_failure = provider_failure


def failure_marker(error: str) -> dict[str, Any]:
    """What a tolerated failed node reads as to ``reduce``, expressions and tests."""
    return {"failed": True, "error": error}


def is_failure_marker(value: Any) -> bool:
    """Whether ``value`` is a failure marker: an object of exactly ``failed: true`` and a
    string ``error`` (a successful output of that very shape reads as one too)."""
    return (
        isinstance(value, Mapping)
        and len(value) == 2
        and value.get("failed") is True
        and isinstance(value.get("error"), str)
    )
