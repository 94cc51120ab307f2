"""A provider that cannot do the work is not a failed test: the run ends ``provider_failed`` and
exits 4, each cause is told once with the calls it stopped, JUnit has an ``<error>``, and the
provider is not asked again once it has failed (issue 12)."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from badinput import peers
from junitparser import Error, Failure, JUnitXml, Skipped

from runner.exits import worst
from runner.main import main

FILES = ["a.py", "b.py", "c.py", "d.py", "e.py"]
WORKFLOW = f"""\
version: 1
name: review-files
inputs:
  files: {{type: array, default: {json.dumps(FILES)}}}
roles:
  reviewer: {{}}
concurrency: {{leaves: 1}}
steps:
  kind: expand
  id: review
  over: inputs.files
  as: file
  max_children: 10
  body: {{kind: leaf, id: review_one, role: reviewer, prompt: "Review {{{{ file }}}}."}}
tests:
  - name: every file reviewed
    expect: "outputs.review | length == {{count}}"
"""


def _config(base_url: str, *, retries: int = 0, timeout_s: float = 5) -> str:
    return (
        "providers:\n"
        "  openai:\n"
        "    type: openai\n"
        f"    base_url: {base_url}\n"
        f"    timeout_s: {timeout_s}\n"
        f"    max_retries: {retries}\n"
        "    models:\n"
        "      m: {}\n"
        "roles:\n"
        "  reviewer: {provider: openai, model: m}\n"
    )


def _folder(tmp_path: Path, *, count: int = len(FILES)) -> Path:
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "review.yaml").write_text(WORKFLOW.replace("{count}", str(count)), "utf-8")
    return folder


def _run(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, dict[str, object]]:
    """``run`` the review workflow with ``config``: the exit code, stdout and the summary."""
    (tmp_path / "live.yaml").write_text(config, "utf-8")
    workflow = _folder(tmp_path) / "review.yaml"
    capsys.readouterr()
    code = main(
        [
            "run",
            str(workflow),
            "--plain",
            "--config",
            str(tmp_path / "live.yaml"),
            "--state",
            str(tmp_path / "state"),
            "--report-dir",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "review-files.summary.json").read_text("utf-8"))
    return code, out, summary


def test_an_unreachable_provider_exits_4_with_one_sentence_counting_the_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with peers.refusing_port() as port:
        code, out, summary = _run(tmp_path, _config(f"http://127.0.0.1:{port}/v1"), capsys)
    sentence = (
        f"provider 'openai' (http://127.0.0.1:{port}/v1) could not be reached: "
        "the connection was refused: no server listens at that address"
    )
    assert code == 4
    assert summary["status"] == "provider_failed"
    assert summary["reason"] == f"{sentence} (5 calls)"
    assert summary["provider_failures"] == [{"failure": sentence, "calls": 5}]
    # The run's line says it once, with the count; the error itself is printed for one call.
    assert "review-files: provider_failed (" in out
    assert out.count(f"{sentence} (5 calls)") == 1
    assert out.count("provider_failed: review_one") == 1
    assert "and 4 more calls that failed the same way" in out
    assert "not evaluated: the provider failed" in out
    assert "urllib3" not in out
    assert "HTTPConnection" not in out

    # Followed from the state, the run says the same once, and watch exits as run did.
    assert main(["watch", "last", "--plain", "--state", str(tmp_path / "state")]) == 4
    assert capsys.readouterr().out.count("provider_failed: review_one") == 1


TOLERANT = """\
version: 1
name: review-files
roles:
  reviewer: {{}}
steps:
  kind: expand
  id: review
  over: "['a.py', 'b.py', 'c.py']"
  as: file
  max_children: 10
{on_expand}  body:
    kind: leaf
    id: review_one
    role: reviewer
    prompt: "Review {{{{ file }}}}."
{on_leaf}"""


@pytest.mark.parametrize(
    ("on_expand", "on_leaf"),
    [("", "    allow_fail: true\n"), ("  min_successes: 1\n", "")],
    ids=["allow_fail", "min_successes"],
)
def test_a_fan_out_that_tolerates_failures_does_not_tolerate_a_provider_down(
    on_expand: str, on_leaf: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Partial fan-outs go on without bad replies, not without the provider: a run whose
    provider was down ends provider_failed, so CI can tell and run it again."""
    workflow = tmp_path / "review.yaml"
    workflow.write_text(TOLERANT.format(on_expand=on_expand, on_leaf=on_leaf), "utf-8")
    with peers.refusing_port() as port:
        (tmp_path / "live.yaml").write_text(_config(f"http://127.0.0.1:{port}/v1"), "utf-8")
        argv = ["run", str(workflow), "--plain", "--config", str(tmp_path / "live.yaml")]
        code = main([*argv, "--state", str(tmp_path / "s"), "--report-dir", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 4, out
    assert "review-files: provider_failed (" in out
    assert "tolerated" not in out


def test_a_judge_whose_provider_is_down_stops_the_tournament_as_a_provider_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "pick.yaml"
    workflow.write_text(
        "version: 1\n"
        "name: pick\n"
        "roles: {writer: {}, judge: {}}\n"
        "steps:\n"
        "  kind: tournament\n"
        "  id: best\n"
        "  candidates:\n"
        '    - {kind: leaf, id: a, role: writer, prompt: "a"}\n'
        '    - {kind: leaf, id: b, role: writer, prompt: "b"}\n'
        '  judge: {role: judge, prompt: "Score {{ candidate }}"}\n',
        "utf-8",
    )
    with peers.refusing_port() as port:
        config = _config(f"http://127.0.0.1:{port}/v1").replace(
            "  reviewer: {provider: openai, model: m}\n",
            "  judge: {provider: openai, model: m}\n  writer: {provider: dry}\n",
        )
        config = config.replace("providers:\n", "providers:\n  dry: {type: mock}\n")
        (tmp_path / "live.yaml").write_text(config, "utf-8")
        argv = ["run", str(workflow), "--plain", "--config", str(tmp_path / "live.yaml")]
        code = main([*argv, "--state", str(tmp_path / "state")])
    out = capsys.readouterr().out
    assert code == 4
    assert "pick: provider_failed" in out
    assert "could not be reached: the connection was refused" in out


def test_a_provider_that_refuses_the_key_is_asked_once_and_named_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b'{"error": {"message": "Incorrect API key provided (request req_81f2)"}}'
    with peers.serve(peers.reply(401, body)) as server:
        code, _, summary = _run(tmp_path, _config(peers.url(server, "/v1")), capsys)
        asked = len(server.seen)  # type: ignore[attr-defined]
    assert code == 4
    assert summary["status"] == "provider_failed"
    assert "refused the credentials (HTTP 401 Unauthorized)" in str(summary["reason"])
    assert str(summary["reason"]).endswith("api_key_env (5 calls)")
    # The provider's own words (a request id) stay in the node's error, out of the cause.
    assert "req_81f2" not in str(summary["reason"])
    assert asked == 1  # the other four calls failed at once, without a request


def test_an_unavailable_provider_is_retried_then_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with peers.serve(peers.reply(503, b'{"error": {"message": "overloaded"}}')) as server:
        config = _config(peers.url(server, "/v1"), retries=1)
        code, _, summary = _run(tmp_path, config, capsys)
        asked = len(server.seen)  # type: ignore[attr-defined]
    assert code == 4
    assert asked == 2  # the first call and its one retry; no call after it was sent
    assert "was unavailable: HTTP 503 Service Unavailable (5 calls)" in str(summary["reason"])


def _trickle(handler: BaseHTTPRequestHandler) -> None:
    """Promise a body and send it a byte at a time, never finishing within the test: each byte
    would renew a read time-out."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in range(300):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.05)


def test_an_endpoint_that_never_finishes_its_answer_is_cut_off_at_timeout_s(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with peers.serve(_trickle) as server:
        config = _config(peers.url(server, "/v1"), retries=3, timeout_s=0.5)
        code, _, summary = _run(tmp_path, config, capsys)
    assert code == 4
    assert "did not answer within timeout_s 0.5 s (5 calls)" in str(summary["reason"])


def _ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, JUnitXml]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "outputs.txt"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    code = main(["ci", "workflows", *argv, "--state", "state", "--report-dir", "out"])
    return code, JUnitXml.fromfile(str(tmp_path / "out" / "branchleaf.junit.xml"))


def _results(xml: JUnitXml) -> dict[str, list[str]]:
    """Test case name -> the kinds of its results (error, failure, skipped)."""
    kinds = {Error: "error", Failure: "failure", Skipped: "skipped"}
    return {
        case.name: [kinds[type(result)] for result in case.result if type(result) in kinds]
        for suite in xml
        for case in suite
    }


def test_ci_tells_a_provider_down_from_a_failing_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _folder(tmp_path, count=99)  # a test that fails whenever the workflow runs
    with peers.refusing_port() as port:
        (tmp_path / "live.yaml").write_text(_config(f"http://127.0.0.1:{port}/v1"), "utf-8")
        code, xml = _ci(tmp_path, monkeypatch, "--config", "live.yaml")
    assert code == 4
    results = _results(xml)
    who = f"provider 'openai' (http://127.0.0.1:{port}/v1)"
    assert results == {"every file reviewed": ["skipped"], who: ["error"]}
    error = next(r for s in xml for c in s if c.name == who for r in c.result)
    assert error.type == "provider_failed"
    assert error.message.endswith(
        "the connection was refused: no server listens at that address (5 calls)"
    )
    assert "result=provider_failed" in (tmp_path / "outputs.txt").read_text("utf-8")
    markdown = (tmp_path / "out" / "branchleaf.md").read_text("utf-8")
    assert markdown.count("(5 calls") == 2  # the run's reason and its one failure item

    # The same folder on the mock: the workflow runs, and its test fails.
    code, xml = _ci(tmp_path, monkeypatch)
    assert code == 1
    assert _results(xml) == {"every file reviewed": ["failure"]}
    assert "result=failed" in (tmp_path / "outputs.txt").read_text("utf-8").splitlines()[-1]


def test_a_workflow_that_failed_by_itself_outranks_a_provider_failure() -> None:
    assert worst([0, 4, 0]) == 4
    assert worst([4, 1]) == 1
    assert worst([1, 4]) == 1
    assert worst([4, 2]) == 2
    assert worst([]) == 0
