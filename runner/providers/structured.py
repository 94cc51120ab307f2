"""How a leaf's output schema reaches the model.

A model with the ``json_schema`` capability gets the schema natively (OpenAI-compatible
structured outputs, an Anthropic tool it is made to call); any other model gets it as an
instruction added to its messages, so that no real model has to guess the shape its reply is
validated against. The mock gets neither: nothing is sent, and its keys stay what they were.
"""

from __future__ import annotations

from typing import Any

from runner.canonical import canonical_json
from runner.providers.base import ChatMessage

NAME = "output"
"""The schema's name in an OpenAI ``json_schema`` and the Anthropic tool's name: fixed, so
that the same request from two nodes is the same call."""

VALUE = "value"
"""The property an Anthropic tool input wraps a schema that is not an object schema in (tool
inputs must be objects)."""


def instruction(schema: Any) -> str | None:
    """The message text stating ``schema`` (``None``: it is not JSON, and the call has no
    key anyway)."""
    try:
        text = canonical_json(schema)
    except (TypeError, ValueError):
        return None
    return (
        "Reply with a single JSON value only (no prose, no code fences) that satisfies "
        f"this JSON Schema:\n{text}"
    )


def with_instruction(messages: tuple[ChatMessage, ...], schema: Any) -> tuple[ChatMessage, ...]:
    """``messages`` with the schema instruction added to the system message (or as one)."""
    text = instruction(schema)
    if text is None:
        return messages
    if messages and messages[0].role == "system":
        first = ChatMessage(role="system", content=f"{messages[0].content}\n\n{text}")
        return (first, *messages[1:])
    return (ChatMessage(role="system", content=text), *messages)


def strict_ready(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts ``schema``: every object schema closes its
    properties and requires all of them. Strict mode rejects any other schema outright, so
    such a schema is sent with ``strict: false`` and the reply is validated here instead."""
    if isinstance(schema, list):
        return all(strict_ready(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, dict):
        if schema.get("additionalProperties") is not False:
            return False
        names = sorted(properties) if isinstance(properties, dict) else []
        required = schema.get("required", [])
        if not isinstance(required, list) or sorted(required) != names:
            return False
    return all(strict_ready(value) for value in schema.values() if isinstance(value, dict | list))


def tool_schema(schema: Any) -> tuple[dict[str, Any], bool]:
    """The Anthropic tool ``input_schema`` for ``schema``, and whether it wraps it in
    :data:`VALUE`."""
    if isinstance(schema, dict) and schema.get("type") == "object":
        return schema, False
    return {"type": "object", "properties": {VALUE: schema}, "required": [VALUE]}, True
