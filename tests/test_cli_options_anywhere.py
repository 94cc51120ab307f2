"""Every command takes its options before, between and after its positionals (issue 11)."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

from runner.main import COMMANDS, _parser, main

# Per command: its words, its positionals and one of its options taking a value (and a flag
# where it has one), so that the option can sit anywhere among them.
CASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "validate": (["validate"], ["a.yaml", "b.yaml"], ["--format", "json", "--config", "c"]),
    "compile": (["compile"], ["a.yaml"], ["-o", "out.json", "--compact"]),
    "graph": (["graph"], ["a.yaml"], ["-o", "out.mmd"]),
    "run": (
        ["run"],
        ["a.yaml", "b.yaml"],
        ["--input", "x=1", "--state", "S", "--plain", "--overlay-branch", "B", "--no-overlay"],
    ),
    "runs": (["runs"], [], ["--limit", "3", "--state", "S"]),
    "inspect": (["inspect"], ["RUN", "NODE"], ["--state", "S"]),
    "report": (["report"], ["RUN1", "RUN2"], ["--format", "junit", "-o", "r.xml"]),
    "replay": (["replay"], ["RUN", "wf.yaml"], ["--state", "S", "--allow-live"]),
    "resume": (["resume"], ["RUN"], ["--state", "S", "--report-dir", "R"]),
    "memo stats": (["memo", "stats"], ["RUN"], ["--state", "S"]),
    "memo explain": (["memo", "explain"], ["RUN", "NODE"], ["--state", "S"]),
    "trace export": (["trace", "export"], ["RUN"], ["--state", "S", "-o", "t.jsonl"]),
    "trace import": (["trace", "import"], ["t.jsonl"], ["--state", "S"]),
    "watch": (["watch"], ["RUN"], ["--state", "S", "--plain"]),
    "cancel": (["cancel"], ["RUN"], ["--state", "S"]),
    "ci": (["ci"], ["a.yaml", "flows"], ["--replay", "T", "--state", "S", "--comment"]),
    "overlay list": (["overlay", "list"], [], ["--repo", "R", "--branch", "B"]),
    "overlay show": (["overlay", "show"], ["ID"], ["--repo", "R", "--branch", "B"]),
    "overlay demote": (["overlay", "demote"], ["ID"], ["--reason", "why", "--repo", "R"]),
    "overlay revert": (["overlay", "revert"], ["ID"], ["--reason", "why", "--branch", "B"]),
    "learn": (["learn"], ["wf.yaml"], ["--cases", "c.jsonl", "--rounds", "2", "--promote"]),
}


def _options(words: list[str]) -> list[list[str]]:
    """The options as units: an option with its value, or a flag alone."""
    units: list[list[str]] = []
    for word in words:
        if word.startswith("-"):
            units.append([word])
        else:
            units[-1].append(word)
    return units


def test_every_command_is_covered() -> None:
    covered = {name.split()[0] for name in CASES}
    assert covered == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_options_anywhere_parse_alike(name: str) -> None:
    words, positionals, options = CASES[name]
    expected = vars(_parser().parse_args([*words, *positionals, *options]))
    units = _options(options)
    # Every place for every option among the positionals: before, between and after.
    for places in itertools.product(range(len(positionals) + 1), repeat=len(units)):
        slots: list[list[str]] = [[] for _ in range(len(positionals) + 1)]
        for unit, place in zip(units, places, strict=True):
            slots[place] += unit
        argv = list(words)
        for index, slot in enumerate(slots):
            argv += slot
            if index < len(positionals):
                argv.append(positionals[index])
        assert vars(_parser().parse_args(argv)) == expected, argv


WORKFLOW = """\
version: 1
name: options-anywhere
roles: {worker: {}}
steps: {kind: leaf, id: one, role: worker, prompt: "Say ok"}
"""


def test_replay_with_the_state_before_the_workflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = str(tmp_path / "state")
    assert main(["run", str(workflow), "--plain", "--state", state]) == 0
    capsys.readouterr()
    assert main(["replay", "last", "--state", state, str(workflow), "--plain"]) == 0
    captured = capsys.readouterr()
    assert "unrecognized arguments" not in captured.err
    assert "replaying run" in captured.out


@pytest.mark.parametrize("name", sorted(CASES))
def test_debug_is_taken_anywhere(name: str) -> None:
    words, positionals, options = CASES[name]
    assert _parser().parse_args([*words, *positionals, *options]).debug is False
    assert _parser().parse_args(["--debug", *words, *positionals, *options]).debug is True
    assert _parser().parse_args([*words, *positionals, *options, "--debug"]).debug is True
    assert _parser().parse_args([*words, "--debug", *positionals, *options]).debug is True
