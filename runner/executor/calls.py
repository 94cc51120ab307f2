"""Model calls: request building, worst-case reservation, provider retries, usage.

One place decides how a transient provider failure (429, 5xx, timeout) is retried: exponential
backoff with full jitter, honouring the provider's Retry-After. Per-node ``retry`` is separate
and handled by the engine.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner import ir
from runner.budget import Amount, Ledger, reserve, settle, worst_case
from runner.config import MOCK, Config, Model
from runner.config import Provider as ProviderConfig
from runner.executor.results import Spend
from runner.providers.base import (
    ChatMessage,
    ModelReply,
    ModelRequest,
    Provider,
    ProviderError,
    estimate_tokens,
)

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


def backoff(
    attempt: int, policy: RetryPolicy, retry_after_s: float | None, rng: random.Random
) -> float:
    """Seconds to wait before provider retry ``attempt`` (1-based)."""
    if retry_after_s is not None:
        return min(retry_after_s, RETRY_AFTER_CAP_S)
    return rng.uniform(0, min(policy.cap_s, policy.base_s * 2 ** (attempt - 1)))


class Caller:
    """Makes model calls for the engine: resolves roles, holds budgets, retries."""

    def __init__(
        self,
        config: Config,
        providers: Mapping[str, Provider],
        policy: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.providers = providers
        self.policy = policy
        self.rng = rng
        self._served: dict[str, tuple[ProviderConfig, Model | None]] = {}

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
    ) -> ModelRequest:
        """The request for ``role``, with the model and JSON mode its configuration gives."""
        provider, model = self.serve(role)
        json_capable = provider.type == MOCK or (
            model is not None and "json_mode" in model.capabilities
        )
        return ModelRequest(
            node_id=node_id,
            role=role,
            model=model.name if model else None,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            output_schema=output_schema,
            json_mode=output_schema is not None and json_capable,
            sample=sample,
        )

    async def call(self, request: ModelRequest, ledger: Ledger | None) -> Call:
        """Reserve the worst case, call the provider (retrying transient failures), settle."""
        provider_config, model = self.serve(request.role)
        provider = self.providers[provider_config.name]
        prompt = "".join(message.content for message in request.messages)
        price_in = model.input_per_mtok if model else 0.0
        price_out = model.output_per_mtok if model else 0.0
        worst = worst_case(
            estimate_tokens(prompt), request.max_tokens or DEFAULT_MAX_TOKENS, price_in, price_out
        )
        held = reserve(ledger, worst) if ledger is not None else None
        retries = provider_config.max_retries
        limit = DEFAULT_PROVIDER_RETRIES if retries is None else retries
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    reply = await provider.complete(request)
                    break
                except ProviderError as exc:
                    if not exc.retryable or attempt > limit or provider.retries_transient:
                        raise
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
        )
        return Call(reply=reply, spend=spend, attempts=attempt)


def chat(node: ir.Leaf, render: Any) -> tuple[ChatMessage, ...]:
    """A leaf's messages, rendered by ``render`` (a template -> text function)."""
    if node.messages is not None:
        return tuple(ChatMessage(role=m.role, content=render(m.content)) for m in node.messages)
    return (ChatMessage(role="user", content=render(node.prompt or "")),)
