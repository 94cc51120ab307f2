"""The ``mock`` provider: deterministic, free, and the default of every run.

Without a script entry, a reply is derived from SHA-256 of the request's canonical JSON: for a
leaf with an output schema it is a valid instance of that schema, and for a judge a score in
the range its prompt states (``runner.providers.scores``). A mock script stages
replies, sequences, scores, failures and latencies per node id or role, and answers chosen by
what the request contains. Tests use this provider as their fake, so it is product code and not
a test double.
"""

from __future__ import annotations

import asyncio

from runner.canonical import canonical_json
from runner.keys import Unkeyable, call_key
from runner.providers.base import (
    ModelReply,
    ModelRequest,
    ProviderError,
    Usage,
    estimate_tokens,
)
from runner.providers.instances import instance_text
from runner.providers.scores import score_text
from runner.providers.script import MockScript, ScriptCase, ScriptedError, ScriptEntry
from runner.selection import JUDGE_SCHEMA


class MockProvider:
    """Answers model calls from a hash of the request, or as a mock script says."""

    retries_transient = False
    """Scripted failures reach the executor, whose retries are what a script tests."""

    def __init__(self, name: str = "mock", script: MockScript | None = None) -> None:
        self.name = name
        """The provider's name in the configuration."""
        self.script = script
        """What to stage; ``None``: every reply is derived from the request."""
        self.endpoint = f"mock-script:{script.digest}" if script is not None else None
        """A scripted mock answers differently: its script is part of every call's key."""
        self._calls: dict[tuple[str, int], int] = {}
        self._entries: dict[tuple[str, str], ScriptEntry | None] = {}

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer one request, or raise ProviderError."""
        script = self.script
        model = request.model or self.name
        if script is None:
            text = self._derived(request)
        else:
            text, answered = await self._scripted(request, script)
            if answered:  # which case of an entry's cases answered, kept with the reply
                model = f"{model} ({answered})"
        prompt = "".join([message.content for message in request.messages])
        return ModelReply(
            text=text,
            usage=Usage(
                prompt_tokens=estimate_tokens(prompt),
                completion_tokens=estimate_tokens(text),
                cost_usd=0.0,
                estimated=True,
            ),
            model=model,
            finish_reason="stop",
        )

    def _derived(self, request: ModelRequest) -> str:
        """The reply no script decides: a function of what a call's key covers (the script
        aside), and nothing else, so a memo hit from another node gives exactly what a fresh
        call would."""
        if request.key is not None and self.endpoint is None:
            digest = request.key  # the executor's key of this call is the same function
        else:
            try:
                digest = call_key(provider=self.name, endpoint=None, request=request).digest
            except Unkeyable as exc:
                raise ProviderError(
                    f"{self.name}: cannot hash the request of {request.node_id}: {exc}"
                ) from exc
        if request.output_schema == JUDGE_SCHEMA:
            # A judge's score lies in the range its prompt states ("score from 0 to 10").
            prompt = "\n".join(m.content for m in request.messages if m.role == "user")
            return score_text(prompt, digest)
        if request.output_schema is not None:
            try:
                return instance_text(request.output_schema, bytes.fromhex(digest))
            except ValueError as exc:
                raise ProviderError(
                    f"{self.name}: no reply fits the output schema of {request.node_id}: {exc}"
                ) from exc
        text = f"mock reply {digest[:12]}"
        return canonical_json({"reply": text}) if request.json_mode else text

    async def _scripted(self, request: ModelRequest, script: MockScript) -> tuple[str, str]:
        """The scripted reply to ``request``, and which case of its entry answered (empty for
        an entry without cases)."""
        node = request.node_id
        slot = (node, request.role)
        if slot not in self._entries:  # fnmatch over every entry once per node id, not per call
            self._entries[slot] = script.entry(node, request.role)
        entry = self._entries[slot]
        if entry is None:
            if script.latency_ms > 0:
                await asyncio.sleep(script.latency_ms / 1000)
            return self._derived(request), ""
        answer: ScriptEntry | ScriptCase = entry
        index, answered = -1, ""
        if entry.cases:
            found = entry.case(request)
            if found is None:
                latency = script.latency_ms if entry.latency_ms is None else entry.latency_ms
                if latency > 0:
                    await asyncio.sleep(latency / 1000)
                return self._derived(request), f"no case of {entry.pattern!r}"
            index, answer = found, entry.cases[found]
            where = f", {answer.where}" if answer.where else ""
            answered = f"case {index + 1} of {entry.pattern!r}{where}"
        latency = next(
            (ms for ms in (answer.latency_ms, entry.latency_ms) if ms is not None),
            script.latency_ms,
        )
        # Counted before any await, so concurrent calls take their places in the order they
        # were made, not in the order their sleeps end; each case of a node counts its own.
        call = self._calls.get((node, index), 0)
        self._calls[(node, index)] = call + 1
        if latency > 0:
            await asyncio.sleep(latency / 1000)
        if call < len(answer.errors):
            raise _failure(answer.errors[call], node, call, index)
        if not answer.replies:
            return self._derived(request), answered
        return answer.replies[min(call - len(answer.errors), len(answer.replies) - 1)], answered


def _failure(error: ScriptedError, node: str, call: int, case: int = -1) -> ProviderError:
    where = f"call {call + 1} of {node}" + (f" (case {case + 1})" if case >= 0 else "")
    if error == "timeout":
        return ProviderError(f"mock script: {where} timed out", retryable=True)
    return ProviderError(
        f"mock script: {where} failed with HTTP {error}",
        status=error,
        retryable=True,
        retry_after_s=0 if error == 429 else None,
    )
