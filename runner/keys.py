"""Keys of model calls and commands: SHA-256 over canonical JSON of what decides their result.

A model call's key covers the provider's name and endpoint, the model, the fully rendered
messages, every generation parameter, the output schema and the sample index (SPEC 5): two
calls with the same key are the same call, so the memo answers one from the other and a replay
finds a recorded reply by it. The key's fields are kept beside its digest, so that ``memo
explain`` can say which of them differ between two calls.

Anything that cannot be canonicalized (a NaN temperature, a schema that is not JSON) gives no
key: :class:`Unkeyable` says why, and the caller makes that call without the memo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runner.canonical import canonical_json, content_hash
from runner.providers.base import ChatMessage, ModelRequest
from runner.schemas import compiled

KEY_VERSION = 1
"""Bumped whenever what a key covers changes, so old memo entries stop matching."""

CALL_FIELDS = (
    "provider",
    "endpoint",
    "model",
    "messages",
    "temperature",
    "max_tokens",
    "json_mode",
    "output_schema",
    "sample",
    "repeat",
    "structured",
)
"""What a model call's key covers, in the order its fields are hashed. ``repeat`` is hashed
only when it is not 0, and ``structured`` only when true, so that the keys of other calls stay
what they were."""


class Unkeyable(Exception):
    """A call or command whose key cannot be computed; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallKey:
    """The key of one model call."""

    digest: str
    """SHA-256 hex of the canonical JSON of the versioned fields."""
    fields: tuple[Any, ...]
    """The values of :data:`CALL_FIELDS`, as JSON values (the schema by its digest)."""

    def named(self) -> dict[str, Any]:
        """The fields by name."""
        return dict(zip(CALL_FIELDS, self.fields, strict=True))


def call_key(*, provider: str, endpoint: str | None, request: ModelRequest) -> CallKey:
    """The key of ``request`` sent to ``provider`` at ``endpoint``; raises Unkeyable."""
    return key_of(
        provider=provider,
        endpoint=endpoint,
        model=request.model,
        messages=request.messages,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        json_mode=request.json_mode,
        output_schema=request.output_schema,
        sample=request.sample,
        repeat=request.repeat,
        structured=request.structured,
    )


def key_of(
    *,
    provider: str,
    endpoint: str | None,
    model: str | None,
    messages: Sequence[ChatMessage],
    temperature: float | None,
    max_tokens: int | None,
    json_mode: bool,
    output_schema: Any,
    sample: int,
    repeat: int = 0,
    structured: bool = False,
) -> CallKey:
    """The key of a call made of these parts (:data:`CALL_FIELDS`); raises Unkeyable."""
    try:
        schema_digest = None if output_schema is None else compiled(output_schema).digest
    except (TypeError, ValueError) as exc:
        raise Unkeyable(f"the output schema is not JSON: {exc}") from exc
    fields = (
        provider,
        endpoint,
        model,
        [[message.role, message.content] for message in messages],
        temperature,
        max_tokens,
        json_mode,
        schema_digest,
        sample,
        repeat,
        structured,
    )
    try:
        # Positional and versioned: a list hashes faster than an object with sorted keys.
        # The lengths differ, so no shorter form can collide with a longer one.
        if structured:
            hashed = [KEY_VERSION, *fields]
        else:
            hashed = [KEY_VERSION, *fields[:-1]] if repeat else [KEY_VERSION, *fields[:-2]]
        # The fields hold no objects, and no float but the temperature.
        alike = temperature is None or temperature == 0 or 1e-4 <= abs(temperature) < 1e16
        digest = content_hash(hashed, floats_alike=alike)
    except (TypeError, ValueError) as exc:  # NaN or infinite temperature
        raise Unkeyable(f"the request cannot be written as canonical JSON: {exc}") from exc
    return CallKey(digest=digest, fields=fields)


def differences(first: Sequence[Any], second: Sequence[Any]) -> list[str]:
    """The names of the call fields whose values differ between two keys' fields."""
    return [
        name
        for name, one, two in zip(CALL_FIELDS, first, second, strict=True)
        if canonical_json(one) != canonical_json(two)
    ]


def command_key(argv: Sequence[str], cwd: str, env: dict[str, str]) -> str:
    """The key of a command: its argv, its working directory (relative to the workspace) and
    the environment entries it sets."""
    return content_hash([KEY_VERSION, list(argv), cwd, env])
