"""Anthropic's messages API."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from runner.canonical import canonical_json
from runner.config import Provider as ProviderConfig
from runner.providers import structured
from runner.providers.base import ModelReply, ModelRequest, Usage
from runner.providers.http import (
    JSON_ONLY,
    HttpClient,
    Malformed,
    Unfit,
    dig,
    price_cost,
    provider_message,
    require_api_key,
    required_count,
    resolve_model,
    token_count,
)
from runner.providers.outage import Cause

DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
PATH = "/messages"


def versioned(base_url: str | None) -> str | None:
    """``base_url`` with ``/v1`` appended when its path has no ``/v1``: Anthropic's SDKs take
    the bare host (``https://api.anthropic.com``) and add the version themselves."""
    if base_url is None or "v1" in urlsplit(base_url).path.split("/"):
        return base_url
    return base_url.rstrip("/") + "/v1"


class AnthropicProvider:
    """Messages over HTTP; system messages go to the top-level ``system`` field."""

    retries_transient = True
    """It retries 429, 5xx and timeouts itself (see ``runner.providers.http``)."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        key = require_api_key(config)
        self._client = HttpClient.for_provider(
            dataclasses.replace(config, base_url=versioned(config.base_url)),
            default_base_url=DEFAULT_BASE_URL,
            headers={"x-api-key": key, "anthropic-version": API_VERSION},
            secret=key,
            sleep=sleep,
            rng=rng,
        )
        self.endpoint: str | None = self._client.endpoint
        """Its base URL, credentials left out: part of every call's key."""

    async def aclose(self) -> None:
        """Close pooled connections (asyncio.run's shutdown closes them too)."""
        await self._client.aclose()

    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        system = [m.content for m in request.messages if m.role == "system"]
        native = request.structured and request.output_schema is not None
        if request.json_mode and not native:
            # The messages API has no JSON mode; the instruction is the nearest equivalent.
            system.append(JSON_ONLY)
        body: dict[str, Any] = {
            "model": resolve_model(self.config, request.model),
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
        }
        if system:
            body["system"] = "\n\n".join(system)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if native:
            # The documented way to get JSON of a given shape: one tool whose input is the
            # schema, and a tool_choice that makes the model call it.
            schema, _ = structured.tool_schema(request.output_schema)
            body["tools"] = [
                {
                    "name": structured.NAME,
                    "description": "Give the answer, in the shape the schema requires.",
                    "input_schema": schema,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": structured.NAME}
        return body

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer one request, or raise ProviderError."""
        body = self.body(request)
        data = await self._client.post_json(PATH, body)
        try:
            return self._reply(request, body["model"], data)
        except Malformed as exc:
            detail = f"returned a malformed reply: {self._client.short(str(exc))}"
            # A reply the model wrote of the wrong shape is the workflow's failure; a body
            # that is not the API's reply is the provider's.
            outage = (
                None if isinstance(exc, Unfit) else (Cause.BAD_ANSWER, "returned a malformed reply")
            )
            raise self._client.error(PATH, detail, outage=outage) from exc

    def _reply(self, request: ModelRequest, model: str, data: dict[str, Any]) -> ModelReply:
        if data.get("type") == "error":
            raise Malformed(f"an error instead of a message: {provider_message(data)}")
        blocks = dig(data, "content")
        if not isinstance(blocks, list):
            raise Malformed("content is not a list of blocks")
        parts: list[str] = []
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise Malformed("a text block has no text")
                parts.append(text)
        if request.structured and request.output_schema is not None:
            parts = [_tool_answer(request.output_schema, blocks)]
        usage = dig(data, "usage")
        fresh = required_count(usage, "input_tokens")
        completion = required_count(usage, "output_tokens")
        cached = token_count(usage, "cache_read_input_tokens") or 0
        written = token_count(usage, "cache_creation_input_tokens") or 0
        # input_tokens counts only the uncached remainder; the whole prompt is the sum, which
        # keeps prompt_tokens comparable with OpenAI's (where cached tokens are included).
        prompt = fresh + cached + written
        answered, stop = data.get("model"), data.get("stop_reason")
        return ModelReply(
            text="".join(parts),
            usage=Usage(
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_prompt_tokens=cached,
                cost_usd=price_cost(self.config, model, prompt, completion),
            ),
            model=answered if isinstance(answered, str) else model,
            finish_reason=stop if isinstance(stop, str) else None,
        )


def _tool_answer(schema: object, blocks: list[object]) -> str:
    """The JSON text of the forced tool call's input, unwrapped where it was wrapped."""
    for block in blocks:
        if (
            isinstance(block, dict)
            and block.get("type") == "tool_use"
            and block.get("name") == structured.NAME
        ):
            answer = block.get("input")
            _, wrapped = structured.tool_schema(schema)
            if wrapped:
                if not isinstance(answer, dict) or structured.VALUE not in answer:
                    raise Unfit(f"the {structured.NAME} tool input has no {structured.VALUE!r}")
                answer = answer[structured.VALUE]
            try:
                return canonical_json(answer)
            except (TypeError, ValueError) as exc:  # NaN or infinity in the input
                raise Unfit(f"the {structured.NAME} tool input is not JSON: {exc}") from exc
    raise Unfit(f"no tool_use block calls the {structured.NAME} tool")
