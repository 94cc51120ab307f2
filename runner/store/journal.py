"""A run's journal: its events in the trace store and its counters in the run list.

Events are queued on the writer as they happen: a node's start and end (with its status,
output, decision and usage), every model call with its request and reply and where the answer
came from, every command with its result. Each event carries its logical position
(``runner.order``), so the trace reads the same whatever the timing was. The counters shown by
``runs`` are written with every group of rows the writer commits.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable
from typing import Any

from runner import ir
from runner.canonical import compact_json
from runner.executor.commands import CommandResult
from runner.executor.recording import Source
from runner.executor.results import NodeResult, Spend, SpendSum
from runner.keys import CallKey
from runner.providers.base import ModelReply, ModelRequest, Usage
from runner.store.runs import PROGRESS_SQL
from runner.store.writer import Writer, insert

EVENTS = insert("events", ("run_id", "seq", "position", "path", "type", "key", "data", "at"))
"""An event's row: its ``data`` is the JSON text of an object."""


def spend_json(spend: Spend) -> dict[str, Any]:
    """A Spend as a JSON object; fields that are zero are left out.

    Spelled out field by field, as is the usage in :func:`reply_json`: every model call and
    every node end of a run passes here, and a loop over the names with ``getattr`` takes
    twice as long."""
    out: dict[str, Any] = {}
    if spend.calls:
        out["calls"] = spend.calls
    if spend.prompt_tokens:
        out["prompt_tokens"] = spend.prompt_tokens
    if spend.completion_tokens:
        out["completion_tokens"] = spend.completion_tokens
    if spend.cached_prompt_tokens:
        out["cached_prompt_tokens"] = spend.cached_prompt_tokens
    if spend.cost_usd:
        out["cost_usd"] = spend.cost_usd
    if spend.memo_hits:
        out["memo_hits"] = spend.memo_hits
    if spend.memo_misses:
        out["memo_misses"] = spend.memo_misses
    if spend.saved_tokens:
        out["saved_tokens"] = spend.saved_tokens
    if spend.saved_usd:
        out["saved_usd"] = spend.saved_usd
    return out


def reply_json(reply: ModelReply) -> dict[str, Any]:
    """A reply as a JSON object; usage fields that are zero or false are left out."""
    usage = reply.usage
    counts: dict[str, Any] = {}
    if usage.prompt_tokens:
        counts["prompt_tokens"] = usage.prompt_tokens
    if usage.completion_tokens:
        counts["completion_tokens"] = usage.completion_tokens
    if usage.cached_prompt_tokens:
        counts["cached_prompt_tokens"] = usage.cached_prompt_tokens
    if usage.cost_usd:
        counts["cost_usd"] = usage.cost_usd
    if usage.estimated:
        counts["estimated"] = usage.estimated
    return {
        "text": reply.text,
        "model": reply.model,
        "finish_reason": reply.finish_reason,
        "usage": counts,
    }


def request_json(request: ModelRequest, key: CallKey | None) -> dict[str, Any]:
    """A request as a JSON object: what was sent, and what else its key covers (``None``: it
    had no key)."""
    out = {
        "node_id": request.node_id,
        "role": request.role,
        "model": request.model,
        # The key holds the same list already built; a call without a key builds its own.
        "messages": (
            key.fields[3]
            if key is not None
            else [[message.role, message.content] for message in request.messages]
        ),
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "json_mode": request.json_mode,
        "sample": request.sample,
        "key_fields": (
            None
            if key is None
            else {
                "provider": key.fields[0],
                "endpoint": key.fields[1],
                "output_schema": key.fields[7],
            }
        ),
    }
    if request.repeat:  # written only in repeats, so that other requests read as before
        out["repeat"] = request.repeat
    if request.structured:  # written only when the schema was sent natively, likewise
        out["structured"] = True
    return out


def reply_from(data: dict[str, Any]) -> ModelReply:
    """A reply from its JSON object (``runner.store.journal.reply_json``)."""
    usage = data["usage"]
    return ModelReply(
        text=data["text"],
        model=data.get("model"),
        finish_reason=data.get("finish_reason"),
        usage=Usage(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            cached_prompt_tokens=usage.get("cached_prompt_tokens", 0),
            cost_usd=usage.get("cost_usd", 0.0),
            estimated=usage.get("estimated", False),
        ),
    )


def key_fields(request: dict[str, Any]) -> dict[str, Any] | None:
    """The fields a recorded call's key covered, by name (``None``: it had no key)."""
    fields = request.get("key_fields")
    if fields is None:
        return None
    return {
        "provider": fields["provider"],
        "endpoint": fields["endpoint"],
        "model": request["model"],
        "messages": request["messages"],
        "temperature": request["temperature"],
        "max_tokens": request["max_tokens"],
        "json_mode": request["json_mode"],
        "output_schema": fields["output_schema"],
        "sample": request["sample"],
        "repeat": request.get("repeat", 0),
        "structured": request.get("structured", False),
    }


def result_json(result: CommandResult) -> dict[str, Any]:
    """A command's result as a JSON object."""
    return {
        "argv": list(result.argv),
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "timed_out": result.timed_out,
        "duration_s": result.duration_s,
    }


class RunJournal:
    """Records one run through a writer."""

    def __init__(self, writer: Writer, run_id: str, *, answers_recorded: bool = True) -> None:
        self.writer = writer
        self.run_id = run_id
        self.answers_recorded = answers_recorded
        """Whether calls and commands answered from a trace are recorded again (a replay's
        are not: they are its parent's, and reading the parent finds them)."""
        self._seq = itertools.count()
        self.done = 0
        self.total = 0
        self.failed = 0
        self._totals = SpendSum()
        writer.snapshot = self._progress
        self.unsaved = False
        """Whether a paid live answer was recorded since the last wait for durability."""
        self._started: dict[int, str] = {}
        self._spent: tuple[Spend | None, dict[str, Any]] = (None, {})
        """The last spend written, and its JSON: a leaf's end carries its call's spend."""
        self.last_call: tuple[str, int] | None = None
        """The key and event number of the model call recorded last (which a memo entry
        stored right after it points at)."""

    def _event(
        self, position: str, path: str, kind: str, key: str | None, data: dict[str, Any] | str
    ) -> int:
        seq = next(self._seq)
        text = data if isinstance(data, str) else compact_json(data)
        self.writer.append(
            EVENTS, (self.run_id, seq, position, path, kind, key, text, time.time()), len(text)
        )
        return seq

    def _spend_json(self, spend: Spend) -> dict[str, Any]:
        last, written = self._spent
        if spend is not last:
            written = spend_json(spend)
            self._spent = (spend, written)
        return written

    def node_started(self, path: str, position: str, node: ir.Node) -> None:
        """A node (or copy) started."""
        self.total += 1
        text = self._started.get(id(node))
        if text is None:  # the same for every copy of the node
            text = self._started[id(node)] = compact_json({"node": node.id, "kind": node.kind})
        self._event(position, path, "node_started", None, text)

    def node_finished(self, result: NodeResult) -> None:
        """A node (or copy) ended."""
        self.done += 1
        if result.status not in ("succeeded", "skipped"):
            self.failed += 1
        if result.attempts == 0:  # skipped: it never started
            self.total += 1
        spend = result.spend
        if spend.calls or spend.memo_hits or spend.saved_tokens:  # containers spend nothing
            self._totals.add(spend)
        data: dict[str, Any] = {
            "node": result.node_id,
            "kind": result.kind,
            "status": result.status,  # a StrEnum: written as its value
            "output": result.output,
            "error": result.error,
            "attempts": result.attempts,
            "duration_s": round(result.duration_s, 6),
            "spend": self._spend_json(spend),
            "decision": result.decision,
        }
        if result.failures:
            data["failures"] = list(result.failures)
        if result.provider_failure is not None:  # only then: other events stay as they were
            data["provider_failure"] = result.provider_failure
        if result.tolerated:  # only then: the traces of runs without one stay as they were
            data["tolerated"] = True
        self._event(result.position, result.path, "node_finished", None, data)

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
        """A model call was answered (``key``: its key, or why it has none; ``retried``: the
        failures retried before the reply; ``paid``: whether a live answer would cost something
        to ask for again)."""
        if source == "trace" and not self.answers_recorded:
            return
        keyed = key if isinstance(key, CallKey) else None
        data: dict[str, Any] = {
            "source": source,
            "request": request_json(request, keyed),
            "reply": reply_json(reply),
            "spend": self._spend_json(spend),
        }
        if keyed is None:
            data["unkeyed"] = key
        if retried:
            data["retried"] = list(retried)
        digest = None if keyed is None else keyed.digest
        seq = self._event(position, path, "model_call", digest, data)
        if digest is not None:
            self.last_call = (digest, seq)
        if source == "live" and paid:
            # Only what costs money to redo is waited for: a crash that loses a memo hit, a
            # trace's answer or the mock's costs nothing, the resumed run answers it again.
            self.unsaved = True

    def command(
        self, *, path: str, position: str, key: str, result: CommandResult, source: Source
    ) -> None:
        """A command ended (or was answered from a trace)."""
        if source == "trace" and not self.answers_recorded:
            return
        if source == "live":
            self.unsaved = True
        self._event(position, path, "command", key, {"source": source, **result_json(result)})

    def durable(self) -> Awaitable[None]:
        """Done once everything recorded so far is committed."""
        self.unsaved = False
        return self.writer.durable()

    @property
    def spend(self) -> Spend:
        """What the run's nodes have spent so far."""
        return self._totals.spend()

    def _progress(self) -> tuple[str, tuple[Any, ...]]:
        """The run's counters now, as the writer writes them with every group."""
        spend = self.spend
        return (
            PROGRESS_SQL,
            (
                self.done,
                max(self.total, self.done),
                self.failed,
                spend.calls,
                spend.tokens,
                spend.cost_usd,
                spend.memo_hits,
                spend.memo_misses,
                spend.saved_tokens,
                spend.saved_usd,
                time.time(),
                self.run_id,
            ),
        )

    def close(self) -> None:
        """Queue the final counters."""
        self.writer.write(*self._progress())
