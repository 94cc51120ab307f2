"""The Redactor finds a secret in every form its text can take."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.config import Provider, load_config
from runner.main import main
from runner.secrets import REDACTED, Redactor, key_variables, looks_secret
from runner.store import runs
from runner.store.db import opened

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


# --- what a run stores and shows --------------------------------------------------------------

LEAKY_KEY = "sk-e2e-\"quo'ted\\back-5c0ffee5"

WORKFLOW = """\
version: 1
name: leak
env: [LLM_AUTH, COPY_OF_IT, PLAIN]
roles:
  writer: {}
steps:
  kind: leaf
  id: hello
  role: writer
  prompt: "Say hello to {{ env.PLAIN }}."
"""


class _Echo(BaseHTTPRequestHandler):
    """A provider that rejects the key and quotes it back in every spelling it can think of."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        spellings = [
            key,
            repr(key),
            json.dumps(key),
            urllib.parse.quote(key, safe=""),
            base64.b64encode(f"user:{key}".encode()).decode(),
        ]
        body = json.dumps({"error": {"message": "bad key " + " ".join(spellings)}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _everything_under(directory: Path) -> str:
    return "\n".join(
        path.read_bytes().decode("utf-8", "replace")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    )


def test_a_run_stores_and_shows_no_form_of_the_provider_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.chdir(tmp_path)
        # The variable's name does not look secret: the configuration says it is.
        monkeypatch.setenv("LLM_AUTH", LEAKY_KEY)
        monkeypatch.setenv("COPY_OF_IT", LEAKY_KEY)
        monkeypatch.setenv("PLAIN", "world")
        Path("flow.yaml").write_text(WORKFLOW, encoding="utf-8")
        Path("live.yaml").write_text(
            "providers:\n  p:\n    type: openai\n"
            f"    base_url: http://127.0.0.1:{server.server_address[1]}/v1\n"
            "    api_key_env: LLM_AUTH\n    max_retries: 0\n    models: {m: {}}\n"
            "roles:\n  default: {provider: p}\n",
            encoding="utf-8",
        )
        argv = ["run", "flow.yaml", "--config", "live.yaml", "--plain", "--state", "state"]
        # The provider refuses the key: a provider failure (exit 4), not a failed test.
        assert main([*argv, "--report-dir", "reports"]) == 4
        shown = capsys.readouterr()
        assert main(["trace", "export", "last", "--state", "state", "-o", "trace.jsonl"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    with opened(tmp_path / "state", create=False) as conn:
        record = runs.find(conn, "last")
    assert record.env == {"LLM_AUTH": REDACTED, "COPY_OF_IT": REDACTED, "PLAIN": "world"}
    texts = {
        "console": shown.out + shown.err,
        "state": _everything_under(tmp_path / "state"),
        "reports": _everything_under(tmp_path / "reports"),
        "trace": Path("trace.jsonl").read_text(encoding="utf-8"),
    }
    assert "bad key [redacted]" in texts["console"]
    for where, text in texts.items():
        for form in ("5c0ffee5", "quo'ted", "quo\\'ted", "xdW8ndGVk", "quo%27ted"):
            assert form not in text, (where, form)
