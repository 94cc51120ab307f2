"""Record the golden traces again: run every example of ``tests/test_examples.py`` with the mock
provider, as ``workflows/README.md`` says to run it, and export each run to
``tests/golden/<workflow file stem>.jsonl``. See ``tests/golden/README.md``.

    .venv/bin/python tests/golden/record.py
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"


def main() -> int:
    """Record every example and export its run; 1 if one of them does not succeed."""
    sys.path.insert(0, str(ROOT / "tests"))
    examples: dict[str, list[str]] = importlib.import_module("test_examples").EXAMPLES
    from runner.compiler.pipeline import compile_file
    from runner.store import runs
    from runner.store.db import opened

    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state"
        for example, args in sorted(examples.items()):
            workflow = compile_file(str(ROOT / "workflows" / example))
            done = _runner(
                ["run", f"workflows/{example}", *args, "--plain", "--report-dir", scratch],
                state,
                without=workflow.env or (),
            )
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                print(f"{example} did not succeed: no golden trace written", file=sys.stderr)
                return 1
            with opened(state, create=False) as conn:
                run_id = runs.find(conn, "last").id
            target = GOLDEN / f"{Path(example).stem}.jsonl"
            exported = _runner(["trace", "export", run_id, "-o", str(target)], state)
            print(exported.stdout.strip() or exported.stderr.strip())
    return 0


def _runner(
    argv: list[str], state: Path, without: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    # The workflow's declared env variables are left unset: the trace does not record their
    # values, so a replay reads them from its own environment, where CI sets some of them.
    env = {name: value for name, value in os.environ.items() if name not in without}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv, "--state", str(state)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


if __name__ == "__main__":
    sys.exit(main())
