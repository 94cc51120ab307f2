"""HTTP model calls reach the concurrency the workflow asks for, not the size of a default
thread pool (6 on two cores) or of a default connection pool (10 per host for urllib3, 100 for
aiohttp). Counted at a loopback server."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopback import model_server

from runner.main import main

BOUND = 120
"""Above any default thread pool on the machines the suite runs on (``min(32, cpus + 4)``), and
above aiohttp's default connection pool (100)."""

WORKFLOW = f"""\
version: 1
name: wide
roles:
  reviewer: {{needs: [json_mode]}}
concurrency: {{leaves: {BOUND}}}
steps:
  kind: expand
  id: review
  over: "range({BOUND}) | list"
  as: item
  max_children: {BOUND}
  body:
    kind: leaf
    id: review_one
    role: reviewer
    prompt: "Review item {{{{ item }}}}."
    output: {{type: object, properties: {{ok: {{type: boolean}}}}, required: [ok]}}
"""


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_every_call_the_bound_allows_is_in_flight_at_once(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPBACK_KEY", "k")
    # Long enough that every call is started before the first is answered.
    with model_server(latency_s=1.5) as seen:
        url = seen.url + ("/v1" if kind == "openai" else "")
        (tmp_path / "wide.yaml").write_text(WORKFLOW)
        (tmp_path / "branchleaf.yaml").write_text(
            f"providers:\n  p: {{type: {kind}, base_url: '{url}', api_key_env: LOOPBACK_KEY,"
            " models: {m: {capabilities: [json_mode]}}}\nroles:\n  default: {provider: p}\n"
        )
        code = main(["run", "wide.yaml", "--plain", "--state", "s"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert seen.requests == BOUND
    assert seen.most_in_flight == BOUND, out
