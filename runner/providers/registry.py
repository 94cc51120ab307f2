"""The explicit registry of provider types, and building the providers a workflow needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from runner.config import Config
from runner.config import Provider as ProviderConfig
from runner.errors import ConfigError
from runner.providers.base import Provider


def _mock(config: ProviderConfig, mock_script: str | None) -> Provider:
    from runner.providers.mock import MockProvider
    from runner.providers.script import load_script

    path = mock_script or config.script
    return MockProvider(config.name, load_script(path) if path else None)


def _openai(config: ProviderConfig, mock_script: str | None) -> Provider:
    from runner.providers.openai import OpenAIProvider

    return OpenAIProvider(config)


def _anthropic(config: ProviderConfig, mock_script: str | None) -> Provider:
    from runner.providers.anthropic import AnthropicProvider

    return AnthropicProvider(config)


PROVIDER_TYPES: dict[str, Callable[[ProviderConfig, str | None], Provider]] = {
    "mock": _mock,
    "openai": _openai,
    "anthropic": _anthropic,
}
"""Provider type (``type:`` in branchleaf.yaml) -> factory; imports are lazy."""


def build_providers(
    config: Config, roles: Iterable[str], *, mock_script: str | None = None
) -> dict[str, Provider]:
    """The providers serving ``roles``, by provider name; ``mock_script`` scripts the mocks."""
    built: dict[str, Provider] = {}
    for role in roles:
        provider, _ = config.serve(role)
        if provider.name in built:
            continue
        factory = PROVIDER_TYPES.get(provider.type)
        if factory is None:
            raise ConfigError(f"provider {provider.name!r} has the unknown type {provider.type!r}")
        built[provider.name] = factory(provider, mock_script)
    return built
