"""Any OpenAI-compatible chat-completions endpoint: OpenAI, DeepSeek, Moonshot, GLM, MiniMax,
vLLM, Ollama."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from runner.config import Provider as ProviderConfig
from runner.providers import structured
from runner.providers.base import ModelReply, ModelRequest, Usage, estimate_tokens
from runner.providers.http import (
    JSON_ONLY,
    HttpClient,
    Malformed,
    dig,
    price_cost,
    provider_message,
    read_api_key,
    required_count,
    resolve_model,
    token_count,
)
from runner.providers.outage import Cause

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PATH = "/chat/completions"


class OpenAIProvider:
    """Chat completions over HTTP, with Bearer auth and JSON mode."""

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
        # Local servers (Ollama, vLLM) take no key, so one is needed only when a variable is named.
        key = read_api_key(config)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = HttpClient.for_provider(
            config,
            default_base_url=DEFAULT_BASE_URL,
            headers=headers,
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
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {
            "model": resolve_model(self.config, request.model),
            "messages": messages,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.structured and request.output_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": structured.NAME,
                    "schema": request.output_schema,
                    "strict": structured.strict_ready(request.output_schema),
                },
            }
        elif request.json_mode:
            body["response_format"] = {"type": "json_object"}
            # OpenAI rejects json_object mode unless a message mentions JSON.
            if not any("json" in m["content"].lower() for m in messages):
                if messages and messages[0]["role"] == "system":
                    messages[0] = {
                        "role": "system",
                        "content": f"{messages[0]['content']}\n\n{JSON_ONLY}",
                    }
                else:
                    messages.insert(0, {"role": "system", "content": JSON_ONLY})
        return body

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Answer one request, or raise ProviderError."""
        body = self.body(request)
        data = await self._client.post_json(PATH, body)
        try:
            return self._reply(request, body["model"], data)
        except Malformed as exc:
            detail = f"returned a malformed reply: {self._client.short(str(exc))}"
            # Not a chat completion: the provider's failure (the model's text is never read here).
            outage = (Cause.BAD_ANSWER, "returned a malformed reply")
            raise self._client.error(PATH, detail, outage=outage) from exc

    def _reply(self, request: ModelRequest, model: str, data: dict[str, Any]) -> ModelReply:
        if "choices" not in data and provider_message(data):
            # Some gateways answer 200 with an error object instead of a status.
            raise Malformed(f"an error instead of choices: {provider_message(data)}")
        choice = dig(data, "choices", 0)
        text = _text(dig(choice, "message"))
        finish = choice.get("finish_reason")
        answered = data.get("model")
        usage = data.get("usage")
        if usage is None:
            prompt = sum(estimate_tokens(m.content) for m in request.messages)
            completion = estimate_tokens(text)
            cached, estimated = 0, True
        else:
            prompt = required_count(usage, "prompt_tokens")
            completion = required_count(usage, "completion_tokens")
            cached = (
                token_count(usage, "prompt_tokens_details", "cached_tokens")
                or token_count(usage, "prompt_cache_hit_tokens")  # DeepSeek
                or token_count(usage, "cached_tokens")  # Moonshot
                or 0
            )
            estimated = False
        return ModelReply(
            text=text,
            usage=Usage(
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_prompt_tokens=cached,
                cost_usd=price_cost(self.config, model, prompt, completion),
                estimated=estimated,
            ),
            model=answered if isinstance(answered, str) else model,
            finish_reason=finish if isinstance(finish, str) else None,
        )


def _text(message: Any) -> str:
    if not isinstance(message, dict):
        raise Malformed("choices[0].message is not an object")
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # Some compatible servers return content parts instead of a string.
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    raise Malformed(f"choices[0].message.content is {type(content).__name__}, not text")
