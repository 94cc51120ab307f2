"""The pull-request comment against GitHub APIs that misbehave, on loopback: each ends as one
warning without the token, and ``ci --comment`` keeps the exit code its workflows decided."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.github import TIMEOUT_ENV, post_report
from runner.main import main

TOKEN = "ghs_Hardening0123456789abcdefABCDEF"
REPOSITORY = "octo-org/widgets"
Handler = Callable[[BaseHTTPRequestHandler], None]


class _GitHub:
    """A loopback server standing in for GitHub's API; ``handle`` answers every request."""

    def __init__(self, handle: Handler) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[str] = []
        self.release = threading.Event()
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or "0"))
                owner.bodies.append(body.decode("utf-8", "replace"))
                owner.seen.append((self.command, self.path, dict(self.headers)))
                handle(self)

            do_GET = do_POST = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def github() -> Iterator[Callable[[Handler], _GitHub]]:
    started: list[_GitHub] = []

    def start(handle: Handler) -> _GitHub:
        started.append(_GitHub(handle))
        return started[-1]

    yield start
    for server in started:
        server.close()


def _answer(
    status: int, body: bytes, content_type: str = "application/json", **headers: str
) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handle


def _env(tmp_path: Path, api_url: str, **more: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}), encoding="utf-8")
    return {
        "GITHUB_API_URL": api_url,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_TOKEN": TOKEN,
        **more,
    }


WHERE = f"cannot comment on pull request #7 of {REPOSITORY}"


@pytest.mark.parametrize(
    "handle",
    [
        _answer(200, b"<!doctype html><title>Sign in</title>", "text/html"),
        _answer(200, b'{"message": "ok"}'),
        _answer(200, b'["not a comment"]'),
        _answer(200, b'[{"id": "seven", "body": 5}]'),
        _answer(200, b"{truncated"),
    ],
    ids=["html", "object", "strings", "wrong-types", "garbled"],
)
def test_an_answer_that_is_not_the_api_is_a_warning(
    tmp_path: Path, github: Callable[[Handler], _GitHub], handle: Handler
) -> None:
    server = github(handle)
    result = post_report("report", _env(tmp_path, server.url))
    assert result.action == "skipped"
    assert result.warning == (
        f"{WHERE}: {server.url} answered with something GitHub's REST API does not send (an "
        "HTML page, or JSON of another shape); check that GITHUB_API_URL is the API's address; "
        "the report is in the job summary"
    )


def test_an_error_that_echoes_the_token_is_scrubbed(
    tmp_path: Path, github: Callable[[Handler], _GitHub]
) -> None:
    def echo(request: BaseHTTPRequestHandler) -> None:
        sent = request.headers.get("Authorization", "")
        body = json.dumps({"message": f"Validation failed for {sent!r} and {sent}"}).encode()
        _answer(422, body)(request)

    server = github(echo)
    result = post_report("report", _env(tmp_path, server.url))
    assert result.warning is not None
    assert "Validation failed for 'token [redacted]' and token [redacted]" in result.warning
    assert "Hardening0123" not in result.warning


def test_a_redirect_to_another_host_is_a_warning_and_not_followed(
    tmp_path: Path, github: Callable[[Handler], _GitHub]
) -> None:
    elsewhere = github(_answer(200, b"[]"))
    target = elsewhere.url.replace("127.0.0.1", "localhost") + "/repos/x/issues/7/comments"
    server = github(_answer(301, b"", Location=target))
    result = post_report("report", _env(tmp_path, server.url))
    assert result.warning is not None
    assert "redirected to another host or scheme, where the token is not sent" in result.warning
    assert elsewhere.seen == []


def test_a_github_that_never_answers_times_out_once(
    tmp_path: Path, github: Callable[[Handler], _GitHub]
) -> None:
    server: _GitHub | None = None

    def silent(request: BaseHTTPRequestHandler) -> None:
        assert server is not None
        server.release.wait(60)

    server = github(silent)
    started = time.monotonic()
    result = post_report("report", _env(tmp_path, server.url, **{TIMEOUT_ENV: "1"}))
    elapsed = time.monotonic() - started
    assert result.warning == (
        f"{WHERE}: cannot reach GitHub at {server.url} (it timed out: no answer within 1 second); "
        "the report is in the job summary"
    )
    # A time-out is not retried: one listing request, not three.
    assert [method for method, _, _ in server.seen] == ["GET"]
    assert elapsed < 30


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_a_time_out_that_is_not_a_duration_is_a_warning(
    tmp_path: Path, github: Callable[[Handler], _GitHub], value: str
) -> None:
    server = github(_answer(200, b"[]"))
    result = post_report("report", _env(tmp_path, server.url, **{TIMEOUT_ENV: value}))
    assert result.warning == (
        f"{WHERE}: {TIMEOUT_ENV} is {value!r}, not a number of seconds above 0; unset it for "
        "the default of 30 seconds"
    )
    assert server.seen == []


PASSING = """\
version: 1
name: greet
roles:
  writer: {}
steps:
  kind: leaf
  id: hello
  role: writer
  prompt: "Say hello."
tests:
  - name: says something
    expect: "outputs.hello | length > 0"
"""


@pytest.mark.parametrize(
    "handle",
    [_answer(200, b"<html>proxy login</html>", "text/html"), _answer(200, b'{"unexpected": 1}')],
    ids=["html", "unexpected-json"],
)
def test_ci_keeps_the_workflows_exit_code_when_the_comment_fails(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    github: Callable[[Handler], _GitHub],
    handle: Handler,
) -> None:
    server = github(handle)
    for name, value in _env(tmp_path, server.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "greet.yaml").write_text(PASSING, encoding="utf-8")
    outputs = tmp_path / "outputs.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    argv = ["ci", "flows", "--comment", "--state", "state", "--report-dir", "out"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "result=passed" in outputs.read_text(encoding="utf-8")
    assert f"warning: {WHERE}: {server.url} answered with something" in captured.err
    assert "Traceback" not in captured.err
    assert "internal error" not in captured.err
    assert TOKEN not in captured.out + captured.err


LEAKING = """\
version: 1
name: leak
env: [LLM_AUTH]
permissions: {commands: ["sh -c *"]}
steps:
  kind: command
  id: show
  run: ["sh", "-c", "echo \\"$0\\" >&2; exit 1", "{{ env.LLM_AUTH }}"]
"""


def test_the_public_comment_carries_no_provider_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    github: Callable[[Handler], _GitHub],
) -> None:
    def api(request: BaseHTTPRequestHandler) -> None:
        if request.command == "GET":
            _answer(200, b"[]")(request)
            return
        _answer(201, b"{}")(request)

    server = github(api)
    for name, value in _env(tmp_path, server.url).items():
        monkeypatch.setenv(name, value)
    # The name does not look secret; the configuration says a provider reads its key from it.
    monkeypatch.setenv("LLM_AUTH", "sk-custom-leaky-0123456789")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "leak.yaml").write_text(LEAKING, encoding="utf-8")
    (tmp_path / "live.yaml").write_text(
        "providers:\n  keys: {type: mock, api_key_env: LLM_AUTH}\n", encoding="utf-8"
    )
    argv = ["ci", "flows", "--comment", "--config", "live.yaml", "--state", "state"]
    assert main([*argv, "--report-dir", "out"]) == 1
    seen = zip(server.seen, server.bodies, strict=True)
    bodies = [body for (method, _, _), body in seen if method == "POST"]
    assert len(bodies) == 1
    assert "redacted" in bodies[0]  # the markdown may escape its brackets
    assert "leaky" not in bodies[0]


# --- JSON from outside read with bounded nesting; addresses that cannot be used --------------

TOO_DEEP = "the value nests lists and mappings more than 100 levels deep"


def test_an_answer_nested_too_deep_is_a_warning(
    tmp_path: Path, github: Callable[[Handler], _GitHub]
) -> None:
    server = github(_answer(200, b"[" * 100_000 + b"]" * 100_000))
    result = post_report("report", _env(tmp_path, server.url))
    assert result.action == "skipped"
    assert result.warning is not None
    assert result.warning.startswith(f"{WHERE}: {server.url} answered with ")
    assert "check that GITHUB_API_URL is the API's address" in result.warning
    assert "redirect" not in result.warning


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, TOO_DEEP),
        (b'{"pull_request": ' * 150 + b"7" + b"}" * 150, TOO_DEEP),
        (b'{"pull_request": {"number": NaN}}', "NaN is not a JSON number"),
        (b'{"pull_request": {"number": 7, "title": "\xff"}}', "it is not UTF-8 text"),
        (b'{"pull_request": {', "invalid JSON: Expecting property name enclosed in double"),
    ],
    ids=["deep", "deeper-than-the-bound", "nan", "not-utf8", "garbled"],
)
def test_an_event_file_that_cannot_be_read_is_a_warning(
    tmp_path: Path, github: Callable[[Handler], _GitHub], event: bytes, reason: str
) -> None:
    server = github(_answer(200, b"[]"))
    env = _env(tmp_path, server.url)
    Path(env["GITHUB_EVENT_PATH"]).write_bytes(event)
    result = post_report("report", env)
    assert result.action == "skipped"
    assert result.warning is not None
    assert result.warning.startswith(
        f"no pull-request comment: cannot read the event file {env['GITHUB_EVENT_PATH']} "
        f"named by GITHUB_EVENT_PATH ({reason}"
    )
    assert server.seen == []


@pytest.mark.parametrize(
    ("api_url", "reason"),
    [
        ("http://127.0.0.1:99999", "port out of range 0-65535"),
        ("http://[::1", "invalid IPv6 URL"),
        ("http://:8080", None),
    ],
    ids=["port-out-of-range", "broken-ipv6", "no-host"],
)
def test_an_api_url_that_is_not_an_address_is_a_warning(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    api_url: str,
    reason: str | None,
) -> None:
    for name, value in _env(tmp_path, api_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "greet.yaml").write_text(PASSING, encoding="utf-8")
    argv = ["ci", "flows", "--comment", "--state", "state", "--report-dir", "out"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    what = f"not a valid address ({reason})" if reason else "not an http(s) address"
    assert f"warning: {WHERE}: GITHUB_API_URL is {api_url!r}, {what}; set it to the API's" in err
    assert "internal error" not in err
    assert "Traceback" not in err
