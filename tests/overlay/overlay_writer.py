"""One writer of the chaos test: ``python overlay_writer.py REPO NAME COUNT [--no-lock]``.

It prints ``ready`` once imported, waits for a line on stdin so that every writer starts at
once, then promotes COUNT lessons named ``NAME-00``, ``NAME-01``... in one call.
"""

from __future__ import annotations

import sys
from pathlib import Path

from overlay_helpers import lesson_file

from runner.overlay.branch import Overlay, Retry


def main(argv: list[str]) -> None:
    repo, name, count = argv[:3]
    overlay = Overlay(
        Path(repo), retry=Retry(pause_s=0.002, max_pause_s=0.05), serialize="--no-lock" not in argv
    )
    files = [lesson_file(f"{name}-{n:02d}") for n in range(int(count))]
    print("ready", flush=True)
    sys.stdin.readline()
    overlay.promote(files)


if __name__ == "__main__":
    main(sys.argv[1:])
