"""Command steps never inherit a provider's key: the variable a configured provider reads, and
the well-known provider key variables, are withheld like the CI job's tokens."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from runner.config import load_config
from runner.executor.commands import PROVIDER_KEYS, withheld_variables
from runner.main import main

PRINT_ENV = "import json, os, sys; print(json.dumps([os.environ.get(n) for n in sys.argv[1:]]))"
CONFIG = """\
providers:
  team:
    type: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: TEAM_LLM_CREDENTIAL
    models: {small: {}}
roles:
  default: {provider: team}
"""
NAMES = ["TEAM_LLM_CREDENTIAL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN", "BL_PLAIN"]


def test_provider_keys_are_withheld_unless_a_step_passes_one_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in NAMES:
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    (tmp_path / "branchleaf.yaml").write_text(CONFIG, encoding="utf-8")
    argv = json.dumps([sys.executable, "-c", PRINT_ENV, *NAMES])
    workflow = textwrap.dedent(
        f"""\
        version: 1
        name: keys
        env: [TEAM_LLM_CREDENTIAL]
        permissions: {{commands: ["*"]}}
        steps:
          kind: sequence
          id: main
          steps:
            - {{kind: command, id: inherited, run: {argv}}}
            - kind: command
              id: passed_on
              run: {argv}
              env: {{TEAM_LLM_CREDENTIAL: "{{{{ env.TEAM_LLM_CREDENTIAL }}}}"}}
            - kind: reduce
              id: seen
              inputs: [inherited, passed_on]
              expr: "[outputs.inherited.stdout | trim, outputs.passed_on.stdout | trim]"
        """
    )
    (tmp_path / "wf.yaml").write_text(workflow, encoding="utf-8")
    code = main(["run", "wf.yaml", "--plain", "--report-dir", "reports"])
    assert code == 0
    summary = json.loads((tmp_path / "reports" / "keys.summary.json").read_text("utf-8"))
    inherited, passed_on = (json.loads(text) for text in summary["output"])
    assert inherited == [None, None, None, None, "value-of-bl_plain"]
    # The step got the key; what it printed of it is redacted before anything reads it.
    assert passed_on == ["[redacted]", None, None, None, "value-of-bl_plain"]


def test_the_withheld_names(tmp_path: Path) -> None:
    path = tmp_path / "branchleaf.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    names = withheld_variables(load_config(str(path)))
    assert {"TEAM_LLM_CREDENTIAL", "GITHUB_TOKEN", "OPENAI_API_KEY"} <= names
    assert names >= PROVIDER_KEYS
    assert {"PATH", "HOME"}.isdisjoint(names)


KEY = 'k3y-"with\\quotes\nand a newline'
LEAKING = """\
version: 1
name: leaks
env: [TEAM_LLM_CREDENTIAL]
permissions: {commands: ["*"]}
roles: {writer: {}}
steps:
  kind: sequence
  id: main
  steps:
    - kind: command
      id: printed
      run: ARGV
      env: {TEAM_LLM_CREDENTIAL: "{{ env.TEAM_LLM_CREDENTIAL }}"}
    - kind: leaf
      id: summarize
      role: writer
      prompt: "The test printed: {{ outputs.printed.stdout }}"
    - kind: command
      id: failing
      run: ARGV_FAIL
      env: {TEAM_LLM_CREDENTIAL: "{{ env.TEAM_LLM_CREDENTIAL }}"}
"""


def test_a_key_a_step_prints_reaches_no_prompt_state_trace_or_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TEAM_LLM_CREDENTIAL", KEY)
    (tmp_path / "branchleaf.yaml").write_text(
        CONFIG.replace("default: {provider: team}", "default: {provider: mock}"), encoding="utf-8"
    )
    show = "import os, sys; v = os.environ['TEAM_LLM_CREDENTIAL']; print(repr(v), v)"
    fail = show + "; sys.exit(v)"
    workflow = LEAKING.replace("ARGV_FAIL", json.dumps([sys.executable, "-c", fail]))
    workflow = workflow.replace("ARGV", json.dumps([sys.executable, "-c", show]))
    (tmp_path / "wf.yaml").write_text(workflow, encoding="utf-8")
    assert main(["run", "wf.yaml", "--plain", "--report-dir", "reports"]) == 1
    assert main(["report", "last", "-o", "reports/run.md"]) == 0
    assert main(["report", "last", "--format", "junit", "-o", "reports/run.xml"]) == 0
    assert main(["trace", "export", "last", "-o", "trace.jsonl"]) == 0
    assert main(["inspect", "last", "summarize"]) == 0
    shown = capsys.readouterr()
    # The replay reads the same redacted text the run read: the prompt's key is the same.
    assert main(["replay", "last", "--plain"]) == 1
    replayed = capsys.readouterr().out
    assert "replay_diverged" not in replayed
    forms = {KEY, repr(KEY)[1:-1], json.dumps(KEY)[1:-1], "k3y-"}
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "branchleaf.yaml"]
    assert any(p.suffix == ".db" for p in files)
    for text in [
        shown.out,
        shown.err,
        replayed,
        *(p.read_bytes().decode("utf-8", "replace") for p in files),
    ]:
        for form in forms:
            assert form not in text
    assert "[redacted]" in (tmp_path / "trace.jsonl").read_text("utf-8")


def test_a_secret_an_expression_reads_reaches_no_output_state_or_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reduce may read a declared secret entry; what it computes from it is redacted like a
    command's output, and the run still replays."""
    monkeypatch.chdir(tmp_path)
    secret = "s3cr3t-value-0123456789"
    monkeypatch.setenv("DEPLOY_TOKEN", secret)
    (tmp_path / "wf.yaml").write_text(
        textwrap.dedent(
            """\
            version: 1
            name: leaky
            env: [DEPLOY_TOKEN]
            roles: {w: {}}
            steps:
              kind: sequence
              id: main
              steps:
                - {kind: leaf, id: hello, role: w, prompt: hi}
                - kind: reduce
                  id: leak
                  inputs: [hello]
                  expr: "{'said': 'token ' ~ env.DEPLOY_TOKEN, env.DEPLOY_TOKEN: [1]}"
            """
        ),
        encoding="utf-8",
    )
    assert main(["run", "wf.yaml", "--mock", "--plain", "--state", "s"]) == 0
    summary = json.loads((tmp_path / "s/reports/leaky.summary.json").read_text("utf-8"))
    assert summary["output"] == {"said": "token [redacted]", "[redacted]": [1]}
    for path in (tmp_path / "s").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert main(["replay", "last", "wf.yaml", "--plain", "--state", "s"]) == 0
