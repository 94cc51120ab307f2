"""The run summary file: what ``branchleaf run`` writes, byte for byte as the standard library
would write it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GOOD_YAML

from runner.main import main
from runner.status import Status

WITH_A_BRANCH = GOOD_YAML.replace(
    "      expr: \"outputs.review | selectattr('ok') | list | length\"\n",
    "      expr: \"outputs.review | selectattr('ok') | list | length\"\n"
    "    - kind: cond\n"
    "      id: decide\n"
    '      if: "outputs.summary >= 0"\n'
    "      then: {kind: reduce, id: yes, inputs: [summary], expr: \"'é ok'\"}\n"
    "      else: {kind: reduce, id: no, inputs: [summary], expr: \"'no'\"}\n",
)


def test_the_summary_is_indented_sorted_json_with_plain_statuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(WITH_A_BRANCH, encoding="utf-8")
    reports = tmp_path / "reports"
    argv = ["run", str(workflow), "--mock", "--plain", "--state", str(tmp_path / "state")]
    assert main([*argv, "--report-dir", str(reports)]) == 0
    capsys.readouterr()
    written = (reports / "review-files.summary.json").read_bytes()
    summary = json.loads(written)
    assert written.decode() == json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False)
    statuses = {node["id"]: node["status"] for node in summary["nodes"]}
    assert statuses["review_one"] == "succeeded"
    assert statuses["yes"] == "succeeded"
    assert set(statuses.values()) <= {status.value for status in Status}
    assert summary["output"] == "é ok"
