"""``branchleaf.yaml``: which provider and model serve each role, and what they can do.

Workflows name roles, never providers. Without a configuration every role is served by the
deterministic ``mock`` provider, which has every capability.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import CompileError, ConfigError

CONFIG_FILE = "branchleaf.yaml"
MOCK = "mock"
ALL_CAPABILITIES = frozenset({"json_mode", "tools", "long_context", "vision"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """One model of a provider."""

    name: str
    """The model name sent to the provider."""
    capabilities: frozenset[str]
    """What it can do."""
    input_per_mtok: float
    """Dollars per million prompt tokens."""
    output_per_mtok: float
    """Dollars per million completion tokens."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """A configured provider."""

    name: str
    """Its name in the configuration."""
    type: str
    """``openai``, ``anthropic`` or ``mock``."""
    base_url: str | None
    """Endpoint base URL."""
    api_key_env: str | None
    """Name of the variable holding the key."""
    script: str | None
    """Mock script path."""
    timeout_s: float | None
    """Request timeout."""
    max_retries: int | None
    """Retries of retryable failures (``None``: the provider's default)."""
    models: dict[str, Model]
    """Models by name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration."""

    path: str | None
    """The file it came from; ``None`` for the built-in default."""
    providers: dict[str, Provider]
    """Providers by name, ``mock`` always among them."""
    roles: dict[str, tuple[str, str | None]]
    """Role -> (provider, model)."""

    def serve(self, role: str) -> tuple[Provider, Model | None]:
        """The provider and model serving ``role``."""
        provider_name, model_name = self.roles.get(role, self.roles.get("default", (MOCK, None)))
        provider = self.providers[provider_name]
        if model_name is None and len(provider.models) == 1:
            model_name = next(iter(provider.models))
        return provider, None if model_name is None else provider.models[model_name]

    def capabilities(self, role: str) -> tuple[str, frozenset[str]]:
        """Where ``role`` is served, in words, and what it can do there."""
        provider, model = self.serve(role)
        if provider.type == MOCK:
            return f"the mock provider {provider.name!r}", ALL_CAPABILITIES
        where = f"provider {provider.name!r}" + (f", model {model.name!r}" if model else "")
        return where, model.capabilities if model else frozenset()


_MOCK = Provider(
    name=MOCK,
    type=MOCK,
    base_url=None,
    api_key_env=None,
    script=None,
    timeout_s=None,
    max_retries=None,
    models={},
)
DEFAULT = Config(path=None, providers={MOCK: _MOCK}, roles={})


def load_config(path: str | None = None) -> Config:
    """Load ``path``, or ``branchleaf.yaml`` in the working directory, or the default."""
    if path is None:
        if not Path(CONFIG_FILE).is_file():
            return DEFAULT
        path = CONFIG_FILE
    from runner.compiler.schema import CONFIG_SCHEMA, schema_diagnostics
    from runner.compiler.yaml_loader import load_yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc.strerror}") from exc
    try:
        document = load_yaml(path, text)
    except CompileError as exc:
        raise ConfigError(str(exc)) from exc
    problems = schema_diagnostics(document, CONFIG_SCHEMA)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(problems[0].render() + more)
    return _build(path, document.data, document)


def _provider(name: str, spec: dict[str, Any]) -> Provider:
    """One provider from its entry under ``providers:`` (already checked)."""
    return Provider(
        name=name,
        type=spec["type"],
        base_url=spec.get("base_url"),
        api_key_env=spec.get("api_key_env"),
        script=spec.get("script"),
        timeout_s=spec.get("timeout_s"),
        max_retries=spec.get("max_retries"),
        models={
            model: Model(
                name=model,
                capabilities=frozenset(info.get("capabilities", ())),
                input_per_mtok=float(info.get("price", {}).get("input_per_mtok", 0.0)),
                output_per_mtok=float(info.get("price", {}).get("output_per_mtok", 0.0)),
            )
            for model, info in spec.get("models", {}).items()
        },
    )


def _build(path: str, data: dict[str, Any], document: Any) -> Config:
    providers = {MOCK: _MOCK}
    for name, spec in data.get("providers", {}).items():
        providers[name] = _provider(name, spec)
    roles: dict[str, tuple[str, str | None]] = {}
    for role, spec in data.get("roles", {}).items():
        provider, model = spec["provider"], spec.get("model")
        where = document.diagnostic(f"/roles/{role}", "", rule="config").location()
        if provider not in providers:
            known = ", ".join(sorted(providers))
            raise ConfigError(
                f"{where}: role {role!r} names provider {provider!r}, which is not configured "
                f"(configured: {known})"
            )
        if model is not None and model not in providers[provider].models:
            known = ", ".join(sorted(providers[provider].models)) or "none"
            raise ConfigError(
                f"{where}: role {role!r} names model {model!r}, which provider {provider!r} "
                f"does not list (listed: {known})"
            )
        roles[role] = (provider, model)
    return Config(path=path, providers=providers, roles=roles)


def to_data(config: Config) -> dict[str, Any]:
    """The configuration in the shape of ``branchleaf.yaml``, with nothing secret in it (keys
    are named, never read; credentials written into URLs are left out)."""
    from runner.providers.base import public_url

    return {
        "providers": {
            name: {
                "type": provider.type,
                "base_url": public_url(provider.base_url) if provider.base_url else None,
                "api_key_env": provider.api_key_env,
                "script": provider.script,
                "timeout_s": provider.timeout_s,
                "max_retries": provider.max_retries,
                "models": {
                    model.name: {
                        "capabilities": sorted(model.capabilities),
                        "price": {
                            "input_per_mtok": model.input_per_mtok,
                            "output_per_mtok": model.output_per_mtok,
                        },
                    }
                    for model in provider.models.values()
                },
            }
            for name, provider in config.providers.items()
            if name != MOCK or provider is not _MOCK
        },
        "roles": {
            role: {"provider": provider, "model": model}
            for role, (provider, model) in config.roles.items()
        },
    }


def from_data(data: dict[str, Any], path: str | None = None) -> Config:
    """A configuration recorded by :func:`to_data` (already checked when it was loaded)."""
    providers = {MOCK: _MOCK}
    for name, spec in data.get("providers", {}).items():
        providers[name] = _provider(name, spec)
    roles = {
        role: (spec["provider"], spec.get("model")) for role, spec in data.get("roles", {}).items()
    }
    return Config(path=path, providers=providers, roles=roles)
