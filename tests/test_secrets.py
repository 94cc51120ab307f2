"""The Redactor finds a secret in every form its text can take."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.config import Provider, load_config
from runner.secrets import REDACTED, Redactor, key_variables, looks_secret

NASTY = [
    "sk-plain-0123456789abcdef",
    "sk-new\nline-0123456789",
    "sk-\"quoted'-0123456789",
    "sk-back\\slash-0123456789",
    "sk-caf\u00e9-\u20ac-\U0001f511-0123456789",
    "sk-ctrl\x00\x1b\x7f-0123456789",
    "sk-url?&=/+% #-0123456789",
]


def _shown(secret: str) -> list[str]:
    """Texts a secret reaches: error strings, reprs, JSON, URLs, auth headers."""
    basic = base64.b64encode(f"user:{secret}".encode()).decode()
    return [
        f"error: {secret}",
        f"got {secret!r} instead",
        f"{secret!a}",
        repr({"key": secret}),
        repr([f"x'{secret}"]),
        json.dumps({"key": secret}),
        json.dumps({"key": secret}, ensure_ascii=False),
        f"https://h.example/v1?key={urllib.parse.quote(secret, safe='')}",
        f"https://h.example/v1?{urllib.parse.urlencode({'key': secret})}",
        f"Authorization: Basic {basic}",
        f"Authorization: Basic {base64.b64encode(f'us:{secret}'.encode()).decode()}",
        f"Authorization: Basic {base64.b64encode(f'u:{secret}'.encode()).decode()}",
        f"Authorization: Basic {base64.b64encode(secret.encode()).decode()}",
        f"token={base64.urlsafe_b64encode(secret.encode()).decode()}",
    ]


@pytest.mark.parametrize("secret", NASTY)
def test_every_form_of_the_secret_is_redacted(secret: str) -> None:
    redactor = Redactor([secret])
    for text in _shown(secret):
        redacted = redactor.redact(text)
        assert REDACTED in redacted, text
        assert "0123456789" not in redacted, text
        assert not redactor.leaks(redacted)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.text(min_size=8, max_size=40), st.integers(0, 13))
def test_any_secret_in_any_shown_form_leaves_no_trace(secret: str, which: int) -> None:
    text = _shown(secret)[which]
    redacted = Redactor([secret]).redact(text)
    assert secret not in redacted
    assert REDACTED in redacted


def test_text_without_secrets_is_left_alone() -> None:
    redactor = Redactor(["sk-abcdef0123456789"])
    text = "provider 'p': POST https://h.example/v1 failed with HTTP 500"
    assert redactor.redact(text) == text
    assert not Redactor([None, ""])
    assert Redactor([]).redact(text) == text


def test_names_that_look_secret() -> None:
    for name in ("OPENAI_API_KEY", "GH_TOKEN", "db_password", "MY_SECRET", "AWS_CREDENTIALS"):
        assert looks_secret(name)
    for name in ("PATH", "HOME", "LLM_AUTH", "BASE_REF"):
        assert not looks_secret(name)


def test_every_provider_key_variable_is_known(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "branchleaf.yaml"  # type: ignore[operator]
    path.write_text(
        "providers:\n"
        "  a: {type: openai, api_key_env: LLM_AUTH, models: {m: {}}}\n"
        "  b: {type: anthropic, api_key_env: CLAUDE_PASS, models: {m: {}}}\n"
        "  c: {type: openai, models: {m: {}}}\n",
        encoding="utf-8",
    )
    config = load_config(str(path))
    assert key_variables(config) == {"LLM_AUTH", "CLAUDE_PASS"}
    assert isinstance(config.providers["a"], Provider)


def test_a_redactor_from_the_environment_knows_the_values() -> None:
    redactor = Redactor.from_environment(
        ["LLM_AUTH", "UNSET"], {"LLM_AUTH": " sk-spaced-0123456789\n", "OTHER": "x"}
    )
    assert redactor.redact("key sk-spaced-0123456789 sent") == f"key {REDACTED} sent"
