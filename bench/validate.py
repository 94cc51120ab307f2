"""What ``branchleaf validate`` costs per node of a long workflow, beyond start-up.

Writes workflows of 1, 100, 1,000 and 10,000 steps, each once as YAML and once as Starlark: a
``sequence`` of leaves, each with its own prompt (reading the step before it and an input) and
an output schema; of every ten steps one is a ``command`` and one a ``cond`` with two leaf
arms. (Past ``LEAN_ABOVE`` steps only every tenth leaf has an output schema: a document holds
at most 100,000 values.) Then:

1. Runs ``python -m runner validate FILE`` as a fresh process ``--runs`` times per file, in
   turns so that every file sees the same machine load, after one untimed run each, and prints
   per size and language the median wall time, the spread (slowest - fastest), the median
   minus the one-step file's median (what the workflow costs beyond start-up), and that per
   node.
2. In this process, times ``check_file`` on each file (the best of ``--runs``, after a warm-up
   run that imports what checking needs and checks the file's one output schema against the
   meta-schema, which a fresh process does on its first leaf) and prints microseconds per node.

Exits 1 with a ``FAIL:`` line when a 1,000-step validate takes more than ``--limit`` seconds
(0.15 by default) beyond start-up, in either language; 2 when a command fails.

``--against DIR`` runs the validates of another checkout (``git worktree add DIR COMMIT``) in
the same interleaved rounds and prints its figures too, for a before/after on one machine load
(the in-process figures are this checkout's only).

    .venv/bin/python bench/validate.py [--runs 5] [--limit 0.15] [--sizes 100,1000,10000]
        [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The checkout root: ``python -m runner`` runs from here."""

OUTPUT = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "maxLength": 4000},
        "done": {"type": "boolean"},
    },
    "required": ["text", "done"],
    "additionalProperties": False,
}


LEAN_ABOVE = 2000
"""Longer workflows give an output schema to every tenth leaf only: a document may hold at most
100,000 values (``yaml_loader.MAX_VALUES``), and a schema is a dozen of them."""


def _leaf(i: int, before: str | None, lean: bool) -> dict[str, object]:
    read = f"{{{{ outputs.{before}.text }}}}" if before else "{{ inputs.topic }}"
    node: dict[str, object] = {
        "kind": "leaf",
        "id": f"step_{i}",
        "role": "writer",
        "max_tokens": 500,
        "prompt": f"Step {i} of the draft about {{{{ inputs.topic }}}}.\nSo far: {read}\n"
        "Improve it. Answer with JSON only.",
    }
    if not lean or i % 10 == 0:
        node["output"] = OUTPUT
    return node


def _step(i: int, before: str | None, lean: bool) -> dict[str, object]:
    if i % 10 == 9:
        return {
            "kind": "cond",
            "id": f"step_{i}",
            "if": f"outputs.{before}.done" if before else "true",
            "then": {**_leaf(i, before, lean), "id": f"step_{i}_done"},
            "else": {**_leaf(i, before, lean), "id": f"step_{i}_more"},
        }
    if i % 10 == 4:
        return {
            "kind": "command",
            "id": f"step_{i}",
            "run": ["python", "-c", f"print({i})"],
            "timeout_s": 60,
        }
    return _leaf(i, before, lean)


def document(steps: int) -> dict[str, object]:
    """A workflow of ``steps`` steps in one sequence, as a JSON document."""
    nodes: list[dict[str, object]] = []
    readable: str | None = None
    for i in range(steps):
        node = _step(i, readable, steps > LEAN_ABOVE)
        nodes.append(node)
        if node["kind"] == "leaf":
            readable = str(node["id"])
    return {
        "version": 1,
        "name": f"chain-{steps}",
        "description": "A long chain of drafts.",
        "inputs": {"topic": {"type": "string", "default": "caching"}},
        "roles": {"writer": {"description": "Writes one draft."}},
        "permissions": {"commands": ["python -c *"]},
        "steps": {"kind": "sequence", "id": "chain", "steps": nodes},
    }


def yaml_text(steps: int) -> str:
    """The workflow as YAML, one flow mapping per node as people write short nodes."""
    doc = document(steps)
    head = {key: value for key, value in doc.items() if key != "steps"}
    lines = [f"{key}: {json.dumps(value)}" for key, value in head.items()]
    lines += ["steps:", "  kind: sequence", "  id: chain", "  steps:"]
    chain = doc["steps"]
    assert isinstance(chain, dict)
    lines += [f"    - {json.dumps(node)}" for node in chain["steps"]]
    return "\n".join(lines) + "\n"


STARLARK = """\
OUTPUT = {output}
LEAN = {lean}

def draft(i, id, before):
    read = "{{{{ outputs.%s.text }}}}" % before if before else "{{{{ inputs.topic }}}}"
    return leaf(
        id = id,
        role = "writer",
        max_tokens = 500,
        prompt = "Step %d of the draft about {{{{ inputs.topic }}}}.\\nSo far: %s\\n" % (i, read) +
                 "Improve it. Answer with JSON only.",
        output = OUTPUT if not LEAN or i % 10 == 0 else None,
    )

def chain(n):
    nodes = []
    before = None
    for i in range(n):
        id = "step_%d" % i
        if i % 10 == 9:
            nodes.append(cond(
                id = id,
                if_ = "outputs.%s.done" % before if before else "true",
                then = draft(i, id + "_done", before),
                else_ = draft(i, id + "_more", before),
            ))
        elif i % 10 == 4:
            nodes.append(command(id = id, run = ["python", "-c", "print(%d)" % i], timeout_s = 60))
        else:
            nodes.append(draft(i, id, before))
            before = id
    return nodes

workflow(
    name = "chain-{steps}",
    description = "A long chain of drafts.",
    inputs = {{"topic": {{"type": "string", "default": "caching"}}}},
    roles = {{"writer": {{"description": "Writes one draft."}}}},
    permissions = {{"commands": ["python -c *"]}},
    steps = sequence(id = "chain", steps = chain({steps})),
)
"""


def starlark_text(steps: int) -> str:
    """The same workflow as Starlark, built by a loop as people write long ones."""
    output = json.dumps(OUTPUT).replace("false", "False")
    return STARLARK.format(output=output, steps=steps, lean=steps > LEAN_ABOVE)


def node_count(steps: int) -> int:
    """How many nodes the workflow has: the sequence, its steps and the arms of its conds."""
    return 1 + steps + 2 * sum(1 for i in range(steps) if i % 10 == 9)


def write(folder: Path, sizes: list[int]) -> dict[tuple[int, str], Path]:
    """Every workflow file, by (steps, language)."""
    files: dict[tuple[int, str], Path] = {}
    for steps in sizes:
        for language, text in (("yaml", yaml_text(steps)), ("star", starlark_text(steps))):
            path = folder / f"chain_{steps}.{language}"
            path.write_text(text, encoding="utf-8")
            files[(steps, language)] = path
    return files


def _run(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(f"error: {' '.join(argv)} exited {done.returncode}", file=sys.stderr)
        print(done.stdout + done.stderr, file=sys.stderr)
        sys.exit(2)
    return elapsed


Key = tuple[Path, int, str]
"""A checkout, a size and a language."""


def wall_times(
    files: dict[tuple[int, str], Path], runs: int, checkouts: list[Path]
) -> dict[Key, list[float]]:
    """Wall times of ``python -m runner validate`` per checkout and file, in interleaved
    rounds."""
    argv = {
        key: [sys.executable, "-m", "runner", "validate", str(path)] for key, path in files.items()
    }
    keys = [(checkout, *key) for key in files for checkout in checkouts]
    for checkout, steps, language in keys:
        _run(argv[(steps, language)], checkout)  # warm-up: bytecode written, files cached
    samples: dict[Key, list[float]] = {key: [] for key in keys}
    for _ in range(runs):
        for key in keys:
            samples[key].append(_run(argv[key[1:]], key[0]))
    return samples


def in_process(files: dict[tuple[int, str], Path], runs: int) -> dict[tuple[int, str], float]:
    """The best time of ``check_file`` per file, in this process."""
    from runner.compiler.pipeline import check_file

    best: dict[tuple[int, str], float] = {}
    for key, path in files.items():
        times = []
        for _ in range(runs + 1):
            start = time.perf_counter()
            checked = check_file(str(path), lenient=True)
            times.append(time.perf_counter() - start)
            if checked.diagnostics:
                print(f"error: {path} is not valid: {checked.diagnostics[0]}", file=sys.stderr)
                sys.exit(2)
            del checked  # freed here, not inside the next timing
        best[key] = min(times[1:])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per file")
    parser.add_argument(
        "--limit", type=float, default=0.15, help="largest seconds beyond start-up at 1,000 steps"
    )
    parser.add_argument("--sizes", default="100,1000,10000", help="step counts, comma-separated")
    parser.add_argument(
        "--against", type=Path, help="another checkout whose validates run in the same rounds"
    )
    args = parser.parse_args()
    sizes = sorted({1, *(int(size) for size in args.sizes.split(","))})
    checkouts = [ROOT] if args.against is None else [ROOT, args.against.resolve()]
    with tempfile.TemporaryDirectory() as folder:
        files = write(Path(folder), sizes)
        walls = wall_times(files, args.runs, checkouts)
        inner = in_process(files, args.runs)
    failed = False
    print(
        f"validate, {args.runs} interleaved runs per file; "
        "beyond start-up = median - the 1-step file's median"
    )
    for checkout in checkouts:
        if len(checkouts) > 1:
            print(f"checkout {checkout}")
        print(
            f"{'steps':>6} {'nodes':>6} {'lang':>5} {'median s':>9} {'spread s':>9} "
            f"{'beyond s':>9} {'us/node':>8} {'in-proc us/node':>16}"
        )
        for language in ("yaml", "star"):
            floor = statistics.median(walls[(checkout, 1, language)])
            for steps in sizes:
                samples = walls[(checkout, steps, language)]
                median = statistics.median(samples)
                beyond = median - floor
                nodes = node_count(steps)
                per_node = beyond / nodes * 1e6 if steps > 1 else 0.0
                here = checkout == ROOT  # in-process figures: this checkout's only
                own = f" {inner[(steps, language)] / nodes * 1e6:>16.0f}" if here else ""
                print(
                    f"{steps:>6} {nodes:>6} {language:>5} {median:>9.3f} "
                    f"{max(samples) - min(samples):>9.3f} {beyond:>9.3f} {per_node:>8.0f}{own}"
                )
                if here and steps == 1000 and beyond > args.limit:
                    print(
                        f"FAIL: {language} validate of 1,000 steps takes {beyond:.3f} s beyond "
                        f"start-up, over {args.limit} s"
                    )
                    failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
