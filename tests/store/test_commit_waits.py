"""A sequence step waits for its answers' commit only when a crash would lose something paid:
a live provider's reply; the mock's answers (made again for nothing) are committed as they
come, in groups, while the run goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopback import model_server

from runner.compiler.build import build_workflow
from runner.config import DEFAULT, Config, load_config
from runner.executor.engine import Engine, run_sync
from runner.providers.registry import build_providers
from runner.status import Status
from runner.store.recording import Recording

STEPS = 12


def _chain() -> dict[str, Any]:
    return {
        "version": 1,
        "name": "chain",
        "roles": {"worker": {}},
        "steps": {
            "kind": "sequence",
            "id": "main",
            "steps": [
                {"kind": "leaf", "id": f"s{i}", "role": "worker", "prompt": f"step {i}"}
                for i in range(STEPS)
            ],
        },
    }


def _groups_sent(state: Path, config: Config) -> int:
    """How many groups of rows the run sent to be committed."""
    workflow = build_workflow(_chain())
    providers = build_providers(config, [name for name, _ in workflow.roles or ()])
    recording = Recording(
        state,
        workflow=workflow,
        inputs={},
        env={},
        config=config,
        providers=providers,
        mock_script=None,
        mode="run",
    )
    engine = Engine(
        workflow,
        config=config,
        providers=providers,
        workspace=state,
        memo=recording.memo,
        journal=recording.journal,
    )
    result = run_sync(engine.run({}))
    groups = recording.writer.groups
    recording.close(result)
    assert result.status is Status.SUCCEEDED, result.reason
    return groups


def test_a_chain_on_the_mock_does_not_wait_for_each_step_s_commit(tmp_path: Path) -> None:
    # Waiting for each step sends a group per step; without the waits, the rows go in
    # groups every few milliseconds (a 12-step chain on the mock takes a few milliseconds).
    assert _groups_sent(tmp_path / "s", DEFAULT) < STEPS // 2


def test_a_chain_on_a_paid_provider_commits_each_reply_before_the_next_step(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("LOOPBACK_KEY", "k")
    with model_server() as seen:
        (tmp_path / "branchleaf.yaml").write_text(
            f"providers:\n  p: {{type: openai, base_url: '{seen.url}/v1',"
            " api_key_env: LOOPBACK_KEY, models: {m: {}}}\nroles:\n  default: {provider: p}\n"
        )
        config = load_config(str(tmp_path / "branchleaf.yaml"))
        assert _groups_sent(tmp_path / "s", config) >= STEPS
    assert seen.requests == STEPS
