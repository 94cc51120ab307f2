"""The seams between the executor and durable state: the memo, the run's journal, and the
answers of a recorded run (for replay and resume). ``runner.store`` implements them over
SQLite; an engine without them runs everything live and records nothing."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, Protocol

from runner import ir
from runner.executor.commands import CommandResult
from runner.executor.results import NodeResult, Spend
from runner.keys import CallKey
from runner.providers.base import ModelReply, ModelRequest

Source = Literal["live", "memo", "trace"]
"""Where an answer came from: the provider (or the command itself), the memo, or a trace."""


class Memo(Protocol):
    """Replies of earlier calls by key, shared across nodes, branches and runs."""

    def get(self, key: str) -> tuple[ModelReply, float] | None:
        """The reply stored under ``key`` and what it cost, if any."""

    def put(self, key: CallKey, reply: ModelReply, *, cost_usd: float, path: str) -> None:
        """Store a live reply under its key."""

    def forget(self, key: str) -> None:
        """Drop the entry under ``key`` (its reply did not fit the schema of the node that read
        it), if there is one."""


class Journal(Protocol):
    """The record of one run: its events in the trace store, its counters in the run list."""

    def node_started(self, path: str, position: str, node: ir.Node) -> None:
        """A node (or copy) started."""

    def node_finished(self, result: NodeResult) -> None:
        """A node (or copy) ended."""

    def model_call(
        self,
        *,
        path: str,
        position: str,
        request: ModelRequest,
        key: CallKey | str,
        reply: ModelReply,
        spend: Spend,
        source: Source,
        retried: tuple[dict[str, Any], ...] = (),
        paid: bool = True,
    ) -> None:
        """A model call was answered (``key``: its key, or why it has none; ``paid``: whether
        a live answer would cost something to ask for again)."""

    def command(
        self, *, path: str, position: str, key: str, result: CommandResult, source: Source
    ) -> None:
        """A command ended (or was answered from a trace)."""

    unsaved: bool
    """Whether a paid live answer was recorded since the last :meth:`durable`."""

    def durable(self) -> Awaitable[None]:
        """Done once everything recorded so far is safe from a crash."""


class Answers(Protocol):
    """What a recorded run answered, by node path and key."""

    strict: bool
    """Replay: what is not recorded diverges. Resume: it runs live."""

    def reply(self, path: str, key: str | None) -> tuple[ModelReply, Spend] | None:
        """The recorded reply of the call with ``key`` at ``path``, and what it cost."""

    def command(self, path: str, key: str) -> CommandResult | None:
        """The recorded result of the command with ``key`` at ``path``."""

    def missed_call(self, path: str, key: CallKey | None) -> str:
        """Why no reply is recorded for this call: the nearest recorded one, as a diff."""

    def missed_command(self, path: str, argv: tuple[str, ...]) -> str:
        """Why no result is recorded for this command, as a diff."""

    def decided(self, path: str, decision: Any) -> str | None:
        """How a replayed control decision differs from the recorded one, as soon as it is
        made (``None``: it does not)."""

    def check(self, path: str, output: Any, decision: Any) -> str | None:
        """How a replayed node's output or decision differs from the recorded ones (``None``:
        they do not)."""
