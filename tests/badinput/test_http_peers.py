"""Providers and the GitHub API played by hostile servers on loopback: wrong answers, no
answers, redirects elsewhere, dropped connections."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import GOOD_YAML

from badinput import peers
from badinput.cli import assert_clean, run_inprocess
from runner.exits import PROVIDER_FAILED

KEY = "sk-badinput-SECRET-4f1d2c"
TOKEN = "ghp_badinputSECRET0123456789abcdef"

CHAT_OK = json.dumps(
    {
        "choices": [{"message": {"content": '{"ok": true}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3},
    }
).encode()


def _echo_credentials(handler: BaseHTTPRequestHandler) -> None:
    """An error that quotes the credentials the client sent, as some proxies do."""
    sent = handler.headers.get("Authorization", "") + " " + handler.headers.get("x-api-key", "")
    body = json.dumps({"error": {"message": f"invalid key {sent!r} (repr {sent.encode()!r})"}})
    peers.reply(401, body.encode())(handler)


PROVIDER_PEERS: dict[str, Callable[[], peers.Handler]] = {
    "html_200": lambda: peers.reply(200, b"<html><body>Welcome</body></html>", "text/html"),
    "garbage_json_200": lambda: peers.reply(200, b'{"choices": [{"mess'),
    "empty_200": lambda: peers.reply(200, b""),
    "array_200": lambda: peers.reply(200, b"[]"),
    "wrong_shape_200": lambda: peers.reply(200, b'{"unexpected": true}'),
    "content_wrong_types": lambda: peers.reply(
        200,
        b'{"choices": [{"message": {"content": 5}}], "content": [{"type": "text", "text": 5}],'
        b' "usage": {"prompt_tokens": "x", "input_tokens": "x"}}',
    ),
    "usage_nan": lambda: peers.reply(
        200,
        b'{"choices": [{"message": {"content": "{\\"ok\\": true}"}}],'
        b' "content": [{"type": "text", "text": "{\\"ok\\": true}"}],'
        b' "usage": {"prompt_tokens": NaN, "completion_tokens": 1e999,'
        b' "input_tokens": NaN, "output_tokens": 1e999}}',
    ),
    "usage_negative_openai": lambda: peers.reply(
        200,
        b'{"choices": [{"message": {"content": "{\\"ok\\": true}"}}],'
        b' "content": [{"type": "text", "text": "{\\"ok\\": true}"}],'
        b' "usage": {"prompt_tokens": -5, "completion_tokens": -1,'
        b' "input_tokens": -5, "output_tokens": -1}}',
    ),
    "deep_json_200": lambda: peers.reply(200, b"[" * 100_000 + b"]" * 100_000),
    "not_utf8_200": lambda: peers.reply(200, b'{"choices": "\xff\xfe"}'),
    "error_500_forever": lambda: peers.reply(500, b'{"error": {"message": "boom"}}'),
    "error_400_deep": lambda: peers.reply(400, b'{"error":' * 5000 + b"1" + b"}" * 5000),
    "echoes_key_401": lambda: _echo_credentials,
    "reset": peers.reset,
    "short_body": lambda: peers.short_body(5000, b'{"choices": ['),
    "not_http": peers.garbage_status_line,
    "redirect_loop": lambda: peers.redirect("/v1/chat/completions"),
}


def _config(kind: str, base_url: str, retries: int = 0) -> str:
    return (
        "providers:\n"
        "  peer:\n"
        f"    type: {kind}\n"
        f"    base_url: {base_url}\n"
        "    api_key_env: BL_PEER_KEY\n"
        "    timeout_s: 1\n"
        f"    max_retries: {retries}\n"
        "    models:\n"
        "      m: {capabilities: [json_mode]}\n"
        "roles:\n"
        "  reviewer: {provider: peer, model: m}\n"
    )


def _run(tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    (tmp_path / "branchleaf.yaml").write_text(config, encoding="utf-8")
    workflow = tmp_path / "good.yaml"
    workflow.write_text(GOOD_YAML, encoding="utf-8")
    argv = ["run", str(workflow), "--plain", "--state", str(tmp_path / "s")]
    return run_inprocess(argv, capsys, env={"BL_PEER_KEY": KEY})


@pytest.mark.parametrize("peer", sorted(PROVIDER_PEERS))
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_provider_peer(
    kind: str, peer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    retries = 1 if peer == "error_500_forever" else 0
    with peers.serve(PROVIDER_PEERS[peer]()) as server:
        base = peers.url(server, "/v1" if kind == "openai" else "")
        outcome = _run(tmp_path, _config(kind, base, retries), capsys)
    # A request refused for what it asked is the workflow's failure; every other peer here
    # could not do the work, which is the provider's (exit 4).
    assert_clean(outcome, allowed=(1,) if peer == "error_400_deep" else (PROVIDER_FAILED,))
    assert KEY not in outcome.text, "the API key was printed"
    for leaked in (tmp_path / "s").rglob("*"):
        if leaked.is_file() and leaked.suffix in (".json", ".md", ".xml", ".log"):
            assert KEY not in leaked.read_text(errors="replace"), f"the API key is in {leaked}"


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_provider_redirect_elsewhere(
    kind: str, status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A redirect to another origin must not carry the key there (point 3 of the issue)."""
    with peers.serve(peers.reply(200, CHAT_OK)) as elsewhere:
        target = peers.url(
            elsewhere, "/v1/chat/completions" if kind == "openai" else "/v1/messages"
        )
        with peers.serve(peers.redirect(target, status)) as server:
            base = peers.url(server, "/v1" if kind == "openai" else "")
            outcome = _run(tmp_path, _config(kind, base), capsys)
        seen = list(elsewhere.seen)  # type: ignore[attr-defined]
    assert_clean(outcome)
    for _method, _path, headers in seen:
        assert not any(KEY in value for value in headers.values()), (
            f"the API key was sent to another origin after HTTP {status}"
        )


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_provider_silent_past_timeout(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that never answers: the node fails on the configured 1 s time-out, and says so."""
    with peers.serve(peers.silent(8.0)) as server:
        base = peers.url(server, "/v1" if kind == "openai" else "")
        outcome = _run(tmp_path, _config(kind, base), capsys)
    assert_clean(outcome, allowed=(PROVIDER_FAILED,))
    assert "timed out" in outcome.text or "time-out" in outcome.text or "timeout" in outcome.text


# ---- the GitHub API, for `ci --comment` ----


def _github(get: bytes, write: bytes, status: int = 200, ctype: str = "application/json"):  # type: ignore[no-untyped-def]
    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = get if handler.command == "GET" else write
        peers.reply(status, body, ctype)(handler)

    return answer


def _echo_token(handler: BaseHTTPRequestHandler) -> None:
    sent = handler.headers.get("Authorization", "")
    peers.reply(422, json.dumps({"message": f"Validation failed for {sent}"}).encode())(handler)


COMMENT = b'{"id": 1, "html_url": "http://x/1", "body": "ok"}'
GITHUB_PEERS: dict[str, Callable[[], peers.Handler]] = {
    "html_200": lambda: _github(b"<html>hi</html>", b"<html>hi</html>", 200, "text/html"),
    "list_is_object": lambda: _github(b'{"unexpected": 1}', COMMENT),
    "list_items_wrong": lambda: _github(b'[{"id": "x", "body": 5}, 7, null]', COMMENT),
    "create_answers_html": lambda: _github(b"[]", b"<html>ok</html>", 200),
    "create_answers_array": lambda: _github(b"[]", b"[1, 2]"),
    "create_answers_garbage": lambda: _github(b"[]", b'{"id": '),
    "deep_json": lambda: _github(b"[" * 100_000 + b"]" * 100_000, COMMENT),
    "error_500": lambda: _github(b'{"message": "boom"}', b'{"message": "boom"}', 500),
    "error_401": lambda: _github(b'{"message": "Bad credentials"}', b"{}", 401),
    "error_403_html": lambda: _github(b"<html>forbidden</html>", b"", 403, "text/html"),
    "echoes_token": lambda: _echo_token,
    "rate_limited": lambda: _github(b'{"message": "API rate limit exceeded"}', b"{}", 429),
    "redirect_loop": lambda: peers.redirect("/repos/o/r/issues/7/comments"),
}


def _ci_env(tmp_path: Path, api_url: str, event: bytes | None = None) -> dict[str, str]:
    event_path = tmp_path / "event.json"
    event_path.write_bytes(event if event is not None else b'{"pull_request": {"number": 7}}')
    return {
        "GITHUB_API_URL": api_url,
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_TOKEN": TOKEN,
    }


def _ci(tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    workflow = tmp_path / "good.yaml"
    workflow.write_text(GOOD_YAML, encoding="utf-8")
    argv = ["ci", str(workflow), "--comment", "--state", str(tmp_path / "s")]
    return run_inprocess([*argv, "--report-dir", str(tmp_path / "r")], capsys, env=env)


@pytest.mark.parametrize("peer", sorted(GITHUB_PEERS))
def test_github_peer(peer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The workflow passes; a comment that cannot be written is a warning, never a failure."""
    with peers.serve(GITHUB_PEERS[peer]()) as server:
        outcome = _ci(tmp_path, _ci_env(tmp_path, peers.url(server)), capsys)
    assert_clean(outcome, allowed=(0,))
    assert TOKEN not in outcome.text, "the GitHub token was printed"


EVENTS = {
    "not_json": b"{",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "number_nan": b'{"pull_request": {"number": NaN}}',
    "number_huge": b'{"pull_request": {"number": ' + b"9" * 5000 + b"}}",
    "number_string": b'{"pull_request": {"number": "7"}}',
    "not_utf8": b'{"pull_request": {"number": 7, "title": "\xff"}}',
    "array": b"[]",
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_github_event_file(event: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with peers.refusing_port() as port:
        env = _ci_env(tmp_path, f"http://127.0.0.1:{port}", EVENTS[event])
        outcome = _ci(tmp_path, env, capsys)
    assert_clean(outcome, allowed=(0,))


@pytest.mark.parametrize(
    "api_url",
    [
        "http://127.0.0.1:99999",
        "not a url",
        "ftp://127.0.0.1/",
        "http://[::1",
        "http://127.0.0.1:REFUSED",
    ],
)
def test_github_api_url_unusable(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with peers.refusing_port() as port:
        env = _ci_env(tmp_path, api_url.replace("REFUSED", str(port)))
        outcome = _ci(tmp_path, env, capsys)
    assert_clean(outcome, allowed=(0,))
