"""``branchleaf.yaml``: which provider and model serve each role, and what they can do.

Workflows name roles, never providers. Without a configuration every role is served by the
deterministic ``mock`` provider, which has every capability; with one, every role must be mapped
(or covered by ``roles.default``), so that a misspelt role is never answered by the mock
unnoticed.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runner.errors import CompileError, ConfigError
from runner.userfiles import UnreadableFile, read_user_text

CONFIG_FILE = "branchleaf.yaml"
MOCK = "mock"
ALL_CAPABILITIES = frozenset({"json_mode", "json_schema", "tools", "long_context", "vision"})
DEFAULT_ROLE = "default"


class UnmappedRole(ConfigError):
    """A configuration exists but neither maps a role nor has a default for it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


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
    all_mock: str | None = None
    """Why every role is on the mock, in a few words, when no configuration is used."""

    def serve(self, role: str) -> tuple[Provider, Model | None]:
        """The provider and model serving ``role``."""
        provider_name, model_name = self.roles.get(role, self.roles.get(DEFAULT_ROLE, (MOCK, None)))
        provider = self.providers[provider_name]
        if model_name is None and len(provider.models) == 1:
            model_name = next(iter(provider.models))
        return provider, None if model_name is None else provider.models[model_name]

    def check_mapped(self, role: str) -> None:
        """UnmappedRole when this configuration came from a file that neither maps ``role``
        nor has a default role: the mock stands in only when there is no file at all."""
        if self.path is None or role in self.roles or DEFAULT_ROLE in self.roles:
            return
        close = difflib.get_close_matches(role, list(self.roles), n=1)
        guess = f": did you mean {close[0]!r}?" if close else ""
        mapped = ", ".join(sorted(self.roles)) or "none"
        raise UnmappedRole(
            f"role {role!r} is not mapped in {self.path}, which has no default role{guess} "
            f"(mapped: {mapped})",
            f"Map {role!r} under roles: in {self.path}, or add roles.default; "
            "--mock plays every role on the mock.",
        )

    def capabilities(self, role: str) -> tuple[str, frozenset[str]]:
        """Where ``role`` is served, in words, and what it can do there; UnmappedRole when
        the configuration does not serve it."""
        self.check_mapped(role)
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
DEFAULT = Config(path=None, providers={MOCK: _MOCK}, roles={}, all_mock=f"no {CONFIG_FILE}")
MOCK_ONLY = Config(path=None, providers={MOCK: _MOCK}, roles={}, all_mock="--mock")
"""What ``--mock`` runs with: every role on the mock, whatever the configuration says."""


def load_config(path: str | None = None) -> Config:
    """Load ``path``, or ``branchleaf.yaml`` in the working directory, or the default."""
    if path is None:
        # A directory or a pipe of that name is a mistake to report, not a missing file.
        if not os.path.lexists(CONFIG_FILE):
            return DEFAULT
        path = CONFIG_FILE
    from runner.compiler.schema import CONFIG_SCHEMA, schema_diagnostics
    from runner.compiler.yaml_loader import load_yaml

    text = _read(path, implicit=path == CONFIG_FILE)
    try:
        document = load_yaml(path, text)
    except CompileError as exc:
        raise ConfigError(str(exc)) from exc
    problems = schema_diagnostics(document, CONFIG_SCHEMA)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(problems[0].render() + more)
    return _build(path, document.data, document)


def _read(path: str, *, implicit: bool = False) -> str:
    """The text of the configuration file ``path``, or ConfigError saying why it has none."""
    fix = "give --config the path of a YAML file"
    if implicit:
        fix = f"remove or rename it, or {fix}"
    try:
        return read_user_text(path)
    except UnreadableFile as exc:
        if exc.line is not None:  # not UTF-8: where, and what to do, are in the reason
            raise ConfigError(
                f"{path}:{exc.line}:{exc.col}: the configuration {exc.reason}"
            ) from None
        if exc.reason.startswith("cannot be read") or exc.reason.startswith("does not exist"):
            raise ConfigError(f"the configuration {path} {exc.reason}") from exc
        raise ConfigError(f"the configuration {path} {exc.reason}: {fix}") from exc


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
        if spec.get("base_url") is not None:
            where = document.diagnostic(f"/providers/{name}/base_url", "", rule="config")
            _check_url(where.location(), name, spec["base_url"])
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
        served = providers[provider]
        if model is None and served.type != MOCK and len(served.models) != 1:
            listed = ", ".join(sorted(served.models))
            choose = f"one of {listed}" if listed else "a model listed under the provider's models"
            raise ConfigError(
                f"{where}: role {role!r} names no model, and provider {provider!r} "
                + (f"lists several ({listed})" if listed else "lists none")
                + f": add model: {choose} to the role"
            )
        roles[role] = (provider, model)
    return Config(path=path, providers=providers, roles=roles)


def _check_url(where: str, provider: str, url: str) -> None:
    """ConfigError unless ``url`` is an http(s) address with a host and a valid port."""
    problem = None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        # urllib's own words ("Port out of range 0-65535", "Invalid IPv6 URL").
        problem = str(exc)[:1].lower() + str(exc)[1:]
    else:
        if parts.scheme not in ("http", "https"):
            problem = "it does not start with http:// or https://"
        elif not parts.hostname:
            problem = "it names no host"
        elif port == 0:
            problem = "port 0 is not a port a server listens on"
        elif any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
            problem = "it holds a space or a control character"
    if problem is not None:
        raise ConfigError(
            f"{where}: provider {provider!r} has the base_url {public_or_raw(url)!r}, which is "
            f"not a usable address ({problem}): write it as http(s)://host[:port]/path"
        )


def public_or_raw(url: str) -> str:
    """``url`` without credentials, query or fragment where it parses; else as written."""
    from runner.providers.base import public_url

    try:
        return public_url(url)
    except ValueError:
        return re.sub(r"//[^/@]*@", "//", url.partition("#")[0].partition("?")[0])


def to_data(config: Config) -> dict[str, Any]:
    """The configuration in the shape of ``branchleaf.yaml``, with nothing secret in it (keys
    are named, never read; credentials written into URLs are left out, and so is a key written
    into one's path)."""
    from runner.providers.base import public_url
    from runner.secrets import Redactor, key_variables

    redactor = Redactor.from_environment(key_variables(config))
    return {
        "providers": {
            name: {
                "type": provider.type,
                "base_url": (
                    redactor.redact(public_url(provider.base_url)) if provider.base_url else None
                ),
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
