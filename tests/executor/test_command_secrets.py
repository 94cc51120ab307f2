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
    assert passed_on == ["value-of-team_llm_credential", None, None, None, "value-of-bl_plain"]


def test_the_withheld_names(tmp_path: Path) -> None:
    path = tmp_path / "branchleaf.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    names = withheld_variables(load_config(str(path)))
    assert {"TEAM_LLM_CREDENTIAL", "GITHUB_TOKEN", "OPENAI_API_KEY"} <= names
    assert names >= PROVIDER_KEYS
    assert {"PATH", "HOME"}.isdisjoint(names)
