"""Cases that could hang or grow without end, each run as ``python -m runner`` in a child
process with a time limit and an address-space limit.

They take seconds each (most of it waiting), so they are started together in the background
when the suite starts, a few at a time, and each test collects its own result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conftest import GOOD_STAR, GOOD_YAML

from badinput import peers
from badinput.cli import BAD, BAD_OR_FAILED, Outcome, finish_child, run_child, start_child

WORKERS = 8
"""Children at once: most of them wait on a pipe, a socket or a clock, not on a core."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One child-process case."""

    run: Callable[[Path], Outcome]
    """Makes the files in a fresh folder and runs the child there."""
    allowed: tuple[int, ...] | None
    """Exit codes that are right, when the input is certainly bad."""


def _file(root: Path, name: str, data: bytes | str) -> Path:
    path = root / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _fifo(root: Path, name: str) -> Path:
    path = root / name
    os.mkfifo(path)
    return path


def _validate(name: str, data: bytes | str, limit: float = 20.0) -> Callable[[Path], Outcome]:
    def run(root: Path) -> Outcome:
        return run_child(["validate", str(_file(root, name, data))], cwd=root, timeout_s=limit)

    return run


def _run(workflow: str, *extra: str, limit: float = 20.0) -> Callable[[Path], Outcome]:
    def run(root: Path) -> Outcome:
        path = _file(root, "workflow.yaml", workflow)
        argv = ["run", str(path), "--mock", "--plain", "--state", str(root / "s"), *extra]
        return run_child(argv, cwd=root, timeout_s=limit)

    return run


def _prompt(template: str, timeout_s: int | None = 2) -> str:
    """The conftest workflow with one leaf's prompt replaced (and a time-out on that leaf)."""
    text = GOOD_YAML.replace(
        'prompt: "Review {{ file }} and say whether it is ok."',
        f"prompt: {template!r}" + (f"\n        timeout_s: {timeout_s}" if timeout_s else ""),
    )
    assert text != GOOD_YAML
    return text


def _expr(expression: str) -> str:
    text = GOOD_YAML.replace(
        "expr: \"outputs.review | selectattr('ok') | list | length\"", f"expr: {expression!r}"
    )
    assert text != GOOD_YAML
    return text


def _star_slow_with_errors(errors: int) -> str:
    """A Starlark file that takes a second or so to evaluate and has ``errors`` problems that
    each need a source position."""
    leaves = ", ".join(f'leaf(id="l{i}", role="nobody{i}", prompt="p")' for i in range(errors))
    return (
        "def spin():\n"
        "    n = 0\n"
        "    for i in range(1500000):\n"
        "        n += i\n"
        "    return n\n"
        "SPUN = spin()\n"
        f'workflow(name="slow", roles={{}}, steps=sequence(id="s", steps=[{leaves}]))\n'
    )


def _fifo_case(kind: str, limit: float = 10.0) -> Callable[[Path], Outcome]:
    def run(root: Path) -> Outcome:
        workflow = _file(root, "good.yaml", GOOD_YAML)
        state = ["--state", str(root / "s")]
        fifo = _fifo(root, "fifo.yaml" if kind != "trace" else "fifo.jsonl")
        argv: list[str] = {
            "workflow": ["validate", str(fifo)],
            "config": ["run", str(workflow), "--config", str(fifo), "--plain", *state],
            "validate_config": ["validate", str(workflow), "--config", str(fifo)],
            "mock_script": ["run", str(workflow), "--mock-script", str(fifo), "--plain", *state],
            "trace": ["trace", "import", str(fifo), *state],
            "ci_folder": ["ci", str(root), *state],
        }[kind]
        return run_child(argv, cwd=root, timeout_s=limit)

    return run


def _device_case(device: str, kind: str) -> Callable[[Path], Outcome]:
    def run(root: Path) -> Outcome:
        workflow = _file(root, "good.yaml", GOOD_YAML)
        argv = {
            "workflow": ["validate", device],
            "config": ["validate", str(workflow), "--config", device],
            "trace": ["trace", "import", device, "--state", str(root / "s")],
        }[kind]
        return run_child(argv, cwd=root, timeout_s=20.0)

    return run


def _non_utf8_argv(root: Path) -> Outcome:
    path = _file(
        root,
        "typed.yaml",
        GOOD_YAML.replace(
            "inputs:\n  files: {type: array",
            "inputs:\n  who: {type: string, default: x}\n  files: {type: array",
        ),
    )
    argv: list[str | bytes] = ["run", str(path), "--mock", "--plain", "--state", str(root / "s")]
    return run_child([*argv, "--input", b"who=caf\xe9"], cwd=root)


def _started(state: Path, child: subprocess.Popen[bytes], limit_s: float = 20.0) -> None:
    """Wait until the run is recorded as running (so its signal handlers are in place), and a
    moment more, so that it is inside the runaway template."""
    import sqlite3

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and child.poll() is None:
        try:
            conn = sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True, timeout=1)
            try:
                if conn.execute("SELECT 1 FROM runs WHERE status = 'running'").fetchone():
                    time.sleep(1.0)
                    return
            finally:
                conn.close()
        except sqlite3.Error:
            pass
        time.sleep(0.2)


def _interrupted(sig: signal.Signals) -> Callable[[Path], Outcome]:
    """A run stuck in a runaway template, sent ``sig`` after a few seconds, must stop."""

    def run(root: Path) -> Outcome:
        path = _file(root, "workflow.yaml", _prompt(SILENT_LOOPS, timeout_s=None))
        child = start_child(
            ["run", str(path), "--mock", "--plain", "--state", str(root / "s")], cwd=root
        )
        _started(root / "s", child)
        if child.poll() is None:
            os.killpg(child.pid, sig)
        return finish_child(child, 5.0)

    return run


def _cancelled(root: Path) -> Outcome:
    """`cancel` of a run stuck in a runaway template must end it."""
    path = _file(root, "workflow.yaml", _prompt(SILENT_LOOPS, timeout_s=None))
    state = ["--state", str(root / "s")]
    child = start_child(["run", str(path), "--mock", "--plain", *state], cwd=root)
    _started(root / "s", child)
    cancel = run_child(["cancel", "last", *state], cwd=root, timeout_s=20.0)
    ended = finish_child(child, 10.0)
    return Outcome(code=ended.code, out=cancel.text + ended.out, err=ended.err)


def _github_never_answers(root: Path) -> Outcome:
    """`ci --comment` against a GitHub API that accepts connections and never answers."""
    with peers.serve(peers.silent(55.0), lifetime_s=60.0) as server:
        event = _file(root, "event.json", '{"pull_request": {"number": 7}}')
        workflow = _file(root, "good.yaml", GOOD_YAML)
        env = {
            "GITHUB_API_URL": peers.url(server),
            "GITHUB_REPOSITORY": "o/r",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_TOKEN": "ghp_badinputSECRET0123456789abcdef",
        }
        argv = [
            "ci",
            str(workflow),
            "--comment",
            "--state",
            str(root / "s"),
            "--report-dir",
            str(root / "r"),
        ]
        return run_child(argv, cwd=root, env=env, timeout_s=45.0)


def _watch_dead_writer(root: Path) -> Outcome:
    """`watch` of a run whose process died without a word must not follow it for ever."""
    import sqlite3

    workflow = _file(root, "good.yaml", GOOD_YAML)
    state = root / "s"
    first = run_child(["run", str(workflow), "--mock", "--plain", "--state", str(state)], cwd=root)
    assert first.code == 0, first.describe()
    conn = sqlite3.connect(state / "state.db")
    with conn:
        conn.execute("UPDATE runs SET status = 'running', finished_at = NULL, pid = 999999999")
    conn.close()
    return run_child(["watch", "last", "--plain", "--state", str(state)], cwd=root, timeout_s=20.0)


NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
# Prints nothing, so no size bound ends it first: only the time bound or the signal can.
SILENT_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
DEEP = "[" * 100_000 + "]" * 100_000

CASES: dict[str, Case] = {
    # Starlark under validate (the pre-commit hook): bounded in memory and time.
    "star:list_times_2e9": Case(
        run=_validate("w.star", "x = [0] * 2000000000\n" + GOOD_STAR), allowed=BAD
    ),
    "star:string_times_3e9": Case(
        run=_validate("w.star", 'x = "ab" * 3000000000\n' + GOOD_STAR), allowed=BAD
    ),
    "star:loop_1e9": Case(
        run=_validate("w.star", "def f():\n    for i in range(1000000000):\n        pass\nf()\n"),
        allowed=BAD,
    ),
    "star:deep_list_100k": Case(run=_validate("w.star", "x = " + DEEP + "\n"), allowed=BAD),
    "star:25_errors_one_pass": Case(
        run=_validate("w.star", _star_slow_with_errors(25), limit=10.0), allowed=BAD
    ),
    # Deeply nested documents.
    "yaml:deep_flow_100k": Case(
        run=_validate("w.yaml", "version: 1\nname: x\nsteps: " + DEEP), allowed=BAD
    ),
    "yaml:deep_block_20k": Case(
        run=_validate(
            "w.yaml",
            "version: 1\nname: x\nsteps:\n" + "".join(" " * (i + 1) + "- \n" for i in range(20000)),
        ),
        allowed=BAD,
    ),
    "json:deep_100k": Case(run=_validate("w.json", DEEP), allowed=BAD),
    "json:deep_object_100k": Case(
        run=_validate("w.json", '{"a":' * 100_000 + "1" + "}" * 100_000), allowed=BAD
    ),
    # Templates and expressions at run time: a failed node, soon.
    "template:nested_loops_with_timeout": Case(
        run=_run(_prompt(NESTED_LOOPS), limit=30.0), allowed=BAD_OR_FAILED
    ),
    "template:format_3e9_wide": Case(
        run=_run(_prompt("{{ '%2999999999d' | format(1) }}")), allowed=BAD_OR_FAILED
    ),
    "template:indent_3e9": Case(
        run=_run(_prompt("{{ 'a\\nb' | indent(3000000000) }}")), allowed=BAD_OR_FAILED
    ),
    "template:list_times_3e9": Case(
        run=_run(_prompt("{{ ([0] * 3000000000) | length }}")), allowed=BAD_OR_FAILED
    ),
    "template:string_times_3e9": Case(
        run=_run(_prompt("{{ 'x' * 3000000000 }}")), allowed=BAD_OR_FAILED
    ),
    "template:pow_to_string": Case(
        run=_run(_prompt("{{ (10 ** 100000) | string }}")), allowed=BAD_OR_FAILED
    ),
    "template:truncate_negative": Case(
        run=_run(_prompt("{{ 'abcdef' | truncate(-5) }}")), allowed=BAD_OR_FAILED
    ),
    "template:recursive_macro": Case(
        run=_run(_prompt("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")),
        allowed=BAD_OR_FAILED,
    ),
    "template:wordwrap_huge": Case(
        run=_run(_prompt("{{ 'a b' | wordwrap(3000000000) }}")), allowed=None
    ),
    "template:center_huge": Case(
        run=_run(_prompt("{{ 'a' | center(3000000000) }}")), allowed=BAD_OR_FAILED
    ),
    "expr:list_times_3e9": Case(
        run=_run(_expr("([0] * 3000000000) | length")), allowed=BAD_OR_FAILED
    ),
    "expr:pow_huge": Case(run=_run(_expr("10 ** 10 ** 10")), allowed=None),
    "run:sigint_in_runaway_template": Case(run=_interrupted(signal.SIGINT), allowed=(130,)),
    "run:sigterm_in_runaway_template": Case(
        run=_interrupted(signal.SIGTERM), allowed=(1, 130, 143)
    ),
    "run:cancel_in_runaway_template": Case(run=_cancelled, allowed=(*BAD_OR_FAILED, 130)),
    "run:wall_budget_vs_huge_latency": Case(
        run=lambda root: _run(
            GOOD_YAML.replace("budget: {", "budget: {wall_s: 3, "),
            "--mock-script",
            str(_file(root, "slow.yaml", 'nodes: {"review_one*": {latency_ms: 1000000000000}}')),
        )(root),
        allowed=BAD_OR_FAILED,
    ),
    "run:latency_inf": Case(
        run=lambda root: _run(
            GOOD_YAML,
            "--mock-script",
            str(_file(root, "slow.yaml", 'nodes: {"review_one*": {latency_ms: .inf}}')),
        )(root),
        allowed=BAD_OR_FAILED,
    ),
    "input:non_utf8_argv": Case(run=_non_utf8_argv, allowed=BAD),
    # Special files where a regular file is expected: named pipes block a reader for ever.
    **{
        f"fifo:{kind}": Case(run=_fifo_case(kind), allowed=BAD)
        for kind in ("workflow", "config", "validate_config", "mock_script", "trace", "ci_folder")
    },
    **{
        f"device:{kind}:{Path(dev).name}": Case(run=_device_case(dev, kind), allowed=BAD)
        for kind in ("workflow", "config", "trace")
        for dev in ("/dev/zero", "/dev/null")
    },
    # Peers that never answer.
    "github:never_answers": Case(run=_github_never_answers, allowed=(0,)),
    "watch:writer_died": Case(run=_watch_dead_writer, allowed=None),
}
# `ci` of a folder holding a named pipe may skip it; it must not wait on it.
CASES["fifo:ci_folder"] = Case(run=_fifo_case("ci_folder"), allowed=(0, 1, 2))
# /dev/null reads as an empty file: an empty configuration is the default one.
CASES["device:config:null"] = Case(run=_device_case("/dev/null", "config"), allowed=None)


class Background:
    """The cases, started a few at a time in the background, each in its own folder."""

    def __init__(self, names: list[str]) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="badinput-runaway-"))
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="runaway")
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Outcome]] = {}
        # The slowest first, so that it overlaps with the most of the rest.
        for name in sorted(names, key=lambda name: name != "github:never_answers"):
            self._start(name)

    def _start(self, name: str) -> Future[Outcome]:
        with self._lock:
            if name not in self._futures:
                index = len(self._futures)
                self._futures[name] = self._pool.submit(self._one, name, index)
            return self._futures[name]

    def _one(self, name: str, index: int) -> Outcome:
        folder = self._root / f"case{index}"
        folder.mkdir()
        try:
            return CASES[name].run(folder)
        except AssertionError as exc:
            return Outcome(code=-1, out="", err=f"the case could not be set up: {exc}")

    def outcome(self, name: str) -> Outcome:
        """The case's outcome, once its child has ended."""
        return self._start(name).result()

    def close(self) -> None:
        """Wait for every child and remove the folders."""
        import shutil

        self._pool.shutdown(wait=True, cancel_futures=False)
        shutil.rmtree(self._root, ignore_errors=True)
