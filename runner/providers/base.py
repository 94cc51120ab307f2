"""The provider seam: what a model call asks, what it gets back, and how it fails.

Workflows name roles, never providers; the executor resolves a role to a provider and model
through ``branchleaf.yaml`` and hands the provider a fully rendered :class:`ModelRequest`.
Providers are async: the mock never blocks the event loop, and the HTTP providers run their
blocking ``requests`` calls off the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from runner.errors import RunnerError
from runner.providers.outage import Outage

ChatRole = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """One rendered chat message."""

    role: ChatRole
    """Who speaks."""
    content: str
    """The rendered text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    """One fully rendered model call; everything that decides the reply is in here."""

    node_id: str
    """The calling node's id, derived for copies (``review_one[3]``); mock scripts match it."""
    role: str
    """The workflow role that makes the call."""
    model: str | None
    """The model name sent to the provider (``None``: the provider's default)."""
    messages: tuple[ChatMessage, ...]
    """The rendered conversation."""
    temperature: float | None = None
    """Sampling temperature."""
    max_tokens: int | None = None
    """Reply token bound."""
    output_schema: Any = None
    """JSON Schema the reply must satisfy, when the node has one (a plain JSON value)."""
    json_mode: bool = False
    """Ask for a JSON reply, where the model has the ``json_mode`` capability."""
    structured: bool = False
    """Send ``output_schema`` natively, where the model has the ``json_schema`` capability
    (otherwise the executor states it in the messages)."""
    sample: int = 0
    """Rollout index: the same request with another sample is a different call."""
    repeat: int = 0
    """Which repeat of the whole run this call belongs to (``ci`` repeating a workflow for its
    tests): the same request in another repeat is a different call."""
    key: str | None = None
    """The call's key (``runner.keys``), when the executor computed one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens and dollars of one call, as the provider reported them (or estimated)."""

    prompt_tokens: int
    """Tokens of the request."""
    completion_tokens: int
    """Tokens of the reply."""
    cached_prompt_tokens: int = 0
    """Prompt tokens the provider served from its own prompt cache (not Branchleaf's memo)."""
    cost_usd: float = 0.0
    """Dollars at the configured prices."""
    estimated: bool = False
    """Whether the counts are estimates (about 4 characters a token) rather than reported."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelReply:
    """What a provider answered."""

    text: str
    """The reply text (JSON text for structured replies)."""
    usage: Usage
    """What it cost."""
    model: str | None = None
    """The model that answered, as the provider names it."""
    finish_reason: str | None = None
    """Why generation stopped (``stop``, ``length``...), where the provider says."""


class ProviderError(RunnerError):
    """A call that failed; ``retryable`` ones (429, 5xx, timeouts) may be tried again. One with
    an ``outage`` failed because the provider could not do the work (``providers.outage``)."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
        outage: Outage | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        """HTTP status, or ``None`` for timeouts and connection failures."""
        self.retryable = retryable
        """Whether trying again may succeed."""
        self.retry_after_s = retry_after_s
        """The provider's Retry-After, in seconds, when it gave one."""
        self.outage = outage
        """The provider failure it is, when the provider could not do the work; ``None`` for a
        failure of the call itself (a request refused for what it asked, a cancellation)."""


class Provider(Protocol):
    """Anything that answers model calls."""

    name: str
    """The provider's name in the configuration."""
    endpoint: str | None
    """What besides the request decides its replies (the base URL; a mock's script), so
    that it is part of every call's key."""
    retries_transient: bool
    """Whether it retries transient failures (429, 5xx, timeouts) itself; when not, the
    executor does, with the same backoff."""

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer one request, or raise ProviderError."""


def estimate_tokens(text: str) -> int:
    """About 4 characters a token, at least 1 for any text."""
    return max(1, (len(text) + 3) // 4) if text else 0


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment: safe to store and to show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))
