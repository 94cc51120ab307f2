"""Model calls: request building, worst-case reservation, provider retries, usage.

One place decides how a transient provider failure (429, 5xx, timeout) is retried: exponential
backoff with full jitter, honouring the provider's Retry-After. Per-node ``retry`` is separate
and handled by the engine.

Once a call has ended on a provider failure (``runner.providers.outage``: the provider could
not be reached, timed out, refused the credentials... after its retries), the run's later calls
to that provider fail at once with the same failure, without a request: a provider that is down
is not asked a hundred more times, each waiting out its own time-out and printing the same
error. Calls to other providers go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner import ir
from runner.budget import Amount, Ledger, reserve, settle, worst_case
from runner.config import MOCK, Config, Model
from runner.config import Provider as ProviderConfig
from runner.executor import redaction
from runner.executor.recording import Answers, Journal, Memo, Source
from runner.executor.results import NodeFailed, Spend
from runner.keys import CallKey, Unkeyable, key_of
from runner.providers.base import (
    ChatMessage,
    ModelReply,
    ModelRequest,
    Provider,
    ProviderError,
    estimate_tokens,
)
from runner.providers.structured import with_instruction
from runner.secrets import Redactor
from runner.status import Status

if TYPE_CHECKING:
    from runner.executor.frames import Frame

Bounded = Callable[["Frame", Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""Runs work holding a frame's call slots (the engine's ``bounded``)."""

DEFAULT_MAX_TOKENS = 4096
"""The reply bound assumed for the budget's worst case when a node sets none."""
DEFAULT_PROVIDER_RETRIES = 3
RETRY_AFTER_CAP_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient provider failures are retried."""

    base_s: float = 0.5
    """The first backoff; doubled for each later retry."""
    cap_s: float = 30.0
    """The longest backoff."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """A model call's reply and what it cost."""

    reply: ModelReply
    """What the provider answered."""
    spend: Spend
    """Its usage."""
    attempts: int
    """Provider attempts made."""
    retried: tuple[dict[str, Any], ...] = ()
    """The failures retried before the reply (``error``, and ``status`` when HTTP gave one)."""
    paid: bool = True
    """Whether asking again would cost something: a crash must not lose a paid answer, while
    the mock's answers are made again for nothing, so a run does not wait for their commit."""


def backoff(
    attempt: int, policy: RetryPolicy, retry_after_s: float | None, rng: random.Random
) -> float:
    """Seconds to wait before provider retry ``attempt`` (1-based)."""
    if retry_after_s is not None:
        return min(retry_after_s, RETRY_AFTER_CAP_S)
    return rng.uniform(0, min(policy.cap_s, policy.base_s * 2 ** (attempt - 1)))


class Caller:
    """Makes model calls for the engine: resolves roles, holds budgets, retries, and answers
    from a recorded run or the memo before calling a provider."""

    def __init__(
        self,
        config: Config,
        providers: Mapping[str, Provider],
        policy: RetryPolicy,
        rng: random.Random,
        *,
        bounded: Bounded,
    ) -> None:
        self.config = config
        self.providers = providers
        self.policy = policy
        self.rng = rng
        self.bounded = bounded
        self.memo: Memo | None = None
        """Earlier replies by key; ``None``: no memo."""
        self.journal: Journal | None = None
        """Where calls are recorded; ``None``: nowhere."""
        self.answers: Answers | None = None
        """A recorded run answering first (replay, resume)."""
        self.repeat = 0
        """Which repeat of the run this is (``ci`` repeating a workflow for its tests)."""
        self.redactor = Redactor()
        """The run's secrets, kept out of replies and of the requests recorded."""
        self.unkeyed: list[tuple[str, str]] = []
        """Calls made without the memo because they had no key: (path, why)."""
        self.down: dict[str, ProviderError] = {}
        """The first provider failure of each provider that had one in this run, by name."""
        self._served: dict[str, tuple[ProviderConfig, Model | None]] = {}
        self._in_flight: dict[str, list[asyncio.Future[tuple[ModelReply, float]]]] = {}

    def serve(self, role: str) -> tuple[ProviderConfig, Model | None]:
        """The provider and model serving ``role``, resolved once per role."""
        found = self._served.get(role)
        if found is None:
            found = self._served[role] = self.config.serve(role)
        return found

    def request(
        self,
        *,
        node_id: str,
        role: str,
        messages: tuple[ChatMessage, ...],
        output_schema: Any,
        temperature: float | None,
        max_tokens: int | None,
        sample: int,
    ) -> tuple[ModelRequest, CallKey | str]:
        """The request for ``role``, with the model and JSON mode its configuration gives,
        and its key (or why it has none)."""
        provider, model = self.serve(role)
        json_capable = provider.type == MOCK or (
            model is not None and "json_mode" in model.capabilities
        )
        model_name = model.name if model else None
        json_mode = output_schema is not None and json_capable
        # The mock is sent nothing: it answers from the schema itself.
        sent = output_schema is not None and provider.type != MOCK
        structured = sent and model is not None and "json_schema" in model.capabilities
        if sent and not structured:
            messages = with_instruction(messages, output_schema)
        try:
            key: CallKey | str = key_of(
                provider=provider.name,
                endpoint=self.providers[provider.name].endpoint,
                model=model_name,
                messages=messages,
                temperature=temperature,
                max_tokens=max_tokens,
                json_mode=json_mode,
                output_schema=output_schema,
                sample=sample,
                repeat=self.repeat,
                structured=structured,
            )
        except Unkeyable as exc:
            key = str(exc)
        request = ModelRequest(
            node_id=node_id,
            role=role,
            model=model_name,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            output_schema=output_schema,
            json_mode=json_mode,
            structured=structured,
            sample=sample,
            repeat=self.repeat,
            key=key.digest if isinstance(key, CallKey) else None,
        )
        return request, key

    async def call(
        self, request: ModelRequest, key: CallKey | str, frame: Frame, *, path: str, position: str
    ) -> Call:
        """Answer ``request``: from a recorded run, the memo, an identical call in flight, or
        the provider (under the frame's bounds and budget); record how it was answered. The
        engine makes a live answer safe from a crash before anything reads it
        (:meth:`Engine.settle`)."""
        known = key if isinstance(key, CallKey) else None
        if isinstance(key, str):
            self.unkeyed.append((path, key))
        answers = self.answers
        if answers is not None:
            recorded = answers.reply(path, known.digest if known else None)
            if recorded is not None:
                reply, spent = recorded
                self._charge(frame.ledger, request, reply.usage, spent.cost_usd)
                # Nothing paid, and nothing the memo saved: the recorded run answered.
                self._record(request, key, reply, _NOTHING, path, position, "trace")
                return Call(reply=reply, spend=_NOTHING, attempts=0)
            if answers.strict:
                raise NodeFailed(Status.REPLAY_DIVERGED, answers.missed_call(path, known))
        memo = self.memo if known is not None and frame.memo != "off" else None
        if memo is None or known is None:
            limits = frame.leaf_limits
            if len(limits) == 1:  # the usual case: the run's bound only, held right here
                # Acquired and released as calls, not with ``async with``: its __aenter__ and
                # __aexit__ are two coroutines more per call.
                await limits[0].acquire()
                try:
                    call: Call = await self._live(request, frame.ledger)
                finally:
                    limits[0].release()
            else:
                call = await self.bounded(frame, lambda: self._live(request, frame.ledger))
            if self.journal is not None:
                self._record(
                    request,
                    key,
                    call.reply,
                    call.spend,
                    path,
                    position,
                    "live",
                    call.retried,
                    paid=call.paid,
                )
            return call
        found = memo.get(known.digest)
        waiting = self._in_flight.get(known.digest)
        if found is None and waiting is not None:
            # An identical call is in flight: wait for its reply rather than pay for another.
            mine: asyncio.Future[tuple[ModelReply, float]] = (
                asyncio.get_running_loop().create_future()
            )
            waiting.append(mine)
            with contextlib.suppress(Exception):  # the first caller failed: call anew
                found = await mine
        if found is not None:
            reply, cost = found
            usage = reply.usage
            spend = Spend(
                memo_hits=1,
                saved_tokens=usage.prompt_tokens + usage.completion_tokens,
                saved_usd=cost,
            )
            self._record(request, known, reply, spend, path, position, "memo")
            return Call(reply=reply, spend=spend, attempts=0)
        # Followers add their futures here while the call is in flight (usually none do).
        followers: list[asyncio.Future[tuple[ModelReply, float]]] = []
        self._in_flight[known.digest] = followers
        try:
            limits = frame.leaf_limits
            if len(limits) == 1:  # as above
                await limits[0].acquire()
                try:
                    call = await self._live(request, frame.ledger, memo_miss=True)
                finally:
                    limits[0].release()
            else:
                call = await self.bounded(
                    frame, lambda: self._live(request, frame.ledger, memo_miss=True)
                )
        except BaseException as exc:
            failure = (
                exc
                if isinstance(exc, Exception)
                else NodeFailed(Status.CANCELLED, "the identical call it waited for was cancelled")
            )
            for follower in followers:
                if not follower.done():
                    follower.set_exception(failure)
            raise
        finally:
            self._in_flight.pop(known.digest, None)
        for follower in followers:
            if not follower.done():
                follower.set_result((call.reply, call.spend.cost_usd))
        spend = call.spend
        self._record(
            request, known, call.reply, spend, path, position, "live", call.retried, paid=call.paid
        )
        if frame.memo == "on":  # after the record: a memo entry points at it
            memo.put(known, call.reply, cost_usd=call.spend.cost_usd, path=path)
        return call

    def forget(self, key: CallKey | str) -> None:
        """A reply did not fit the output schema of the node that read it: the memo must not
        answer the same call with it again, in this run or a later one."""
        if self.memo is not None and isinstance(key, CallKey):
            self.memo.forget(key.digest)

    def _record(  # noqa: PLR0917 (the one place every answer goes through)
        self,
        request: ModelRequest,
        key: CallKey | str,
        reply: ModelReply,
        spend: Spend,
        path: str,
        position: str,
        source: Source,
        retried: tuple[dict[str, Any], ...] = (),
        *,
        paid: bool = True,
    ) -> None:
        if self.journal is not None:
            self.journal.model_call(
                path=path,
                position=position,
                request=redaction.request(request, self.redactor),
                key=key,
                reply=reply,
                spend=spend,
                source=source,
                retried=retried,
                paid=paid,
            )

    def _charge(
        self, ledger: Ledger | None, request: ModelRequest, usage: Any, cost: float
    ) -> None:
        """Hold and settle a recorded call in the budget as the live call was, so that a
        replay stops where the recorded run stopped."""
        if ledger is None:
            return
        _, model = self.serve(request.role)
        worst = _worst(ledger, request, model)
        settle(
            reserve(ledger, worst),
            Amount(tokens=usage.prompt_tokens + usage.completion_tokens, cost_usd=cost, leaves=1),
        )

    async def _live(
        self, request: ModelRequest, ledger: Ledger | None, *, memo_miss: bool = False
    ) -> Call:
        """Reserve the worst case, call the provider (retrying transient failures), settle."""
        provider_config, model = self.serve(request.role)
        provider = self.providers[provider_config.name]
        failed = self.down.get(provider_config.name)
        if failed is not None:
            raise ProviderError(
                f"not sent, as an earlier call of this run failed: {failed}",
                status=failed.status,
                outage=failed.outage,
            )
        price_in = model.input_per_mtok if model else 0.0
        price_out = model.output_per_mtok if model else 0.0
        held = reserve(ledger, _worst(ledger, request, model)) if ledger is not None else None
        retries = provider_config.max_retries
        limit = DEFAULT_PROVIDER_RETRIES if retries is None else retries
        attempt = 0
        retried: list[dict[str, Any]] = []
        try:
            while True:
                attempt += 1
                try:
                    # A reply that echoes a secret is redacted before anything reads it.
                    reply = redaction.reply(await provider.complete(request), self.redactor)
                    break
                except ProviderError as exc:
                    if provider.retries_transient or not exc.retryable:
                        if exc.outage is not None:
                            self.down.setdefault(provider_config.name, exc)
                        raise
                    if attempt > limit:
                        last = _gave_up(exc, attempt)
                        if last.outage is not None:
                            self.down.setdefault(provider_config.name, last)
                        raise last from exc
                    retried.append(_failure(exc, self.redactor))
                    await asyncio.sleep(backoff(attempt, self.policy, exc.retry_after_s, self.rng))
        except BaseException:
            if held is not None:
                settle(held, None)
            raise
        usage = reply.usage
        cost = (
            usage.cost_usd
            or (usage.prompt_tokens * price_in + usage.completion_tokens * price_out) / 1_000_000
        )
        if held is not None:
            settle(
                held,
                Amount(
                    tokens=usage.prompt_tokens + usage.completion_tokens, cost_usd=cost, leaves=1
                ),
            )
        spend = Spend(
            calls=1,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_prompt_tokens=usage.cached_prompt_tokens,
            cost_usd=cost,
            memo_misses=1 if memo_miss else 0,
        )
        return Call(
            reply=reply,
            spend=spend,
            attempts=attempt,
            retried=tuple(retried) if retried else (),
            paid=provider_config.type != "mock",
        )


def _failure(exc: ProviderError, redactor: Redactor) -> dict[str, Any]:
    """A retried failure as the trace records it."""
    found: dict[str, Any] = {"error": redactor.redact(str(exc))}
    if exc.status is not None:
        found["status"] = exc.status
    return found


def _gave_up(exc: ProviderError, attempts: int) -> ProviderError:
    """The last failure of a call retried until its retries ran out, saying so."""
    if attempts == 1:  # no retries were allowed: the failure as it came
        return exc
    return ProviderError(
        f"{exc} (gave up after {attempts} attempts)",
        status=exc.status,
        retryable=exc.retryable,
        retry_after_s=exc.retry_after_s,
        outage=exc.outage,
    )


_ONE_LEAF = Amount(leaves=1)
_NOTHING = Spend()


def _worst(ledger: Ledger, request: ModelRequest, model: Model | None) -> Amount:
    """The most ``request`` can cost, as far as the ledgers up the chain count it."""
    if ledger.counts_only_leaves:
        return _ONE_LEAF
    prompt = "".join(message.content for message in request.messages)
    return worst_case(
        estimate_tokens(prompt),
        request.max_tokens or DEFAULT_MAX_TOKENS,
        model.input_per_mtok if model else 0.0,
        model.output_per_mtok if model else 0.0,
    )


def chat(node: ir.Leaf, render: Any) -> tuple[ChatMessage, ...]:
    """A leaf's messages, rendered by ``render`` (a template -> text function)."""
    if node.messages is not None:
        return tuple(ChatMessage(role=m.role, content=render(m.content)) for m in node.messages)
    return (ChatMessage(role="user", content=render(node.prompt or "")),)
