"""The quickstart says what ``make demo`` really does: the files it lists are those the demo
target writes, read from the Makefile itself."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _demo_target() -> str:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    found = re.search(r"^demo:.*?\n((?:\t.*\n|\t.*\\\n)+)", makefile, re.MULTILINE)
    assert found, "the Makefile has no demo target"
    return found.group(1).replace("\\\n", " ")


def _written_by_demo() -> set[str]:
    demo = _demo_target()
    written = set(re.findall(r"-o \$\(REPORTS\)/(\S+)", demo))
    for run in re.finditer(
        r"runner run workflows/(\w+)\.\w+ [^\n]*--report-dir \$\(REPORTS\)", demo
    ):
        written.add(f"{run.group(1)}.summary.json")
    return written


def test_the_quickstart_lists_every_file_make_demo_writes() -> None:
    text = (ROOT / "docs" / "quickstart.md").read_text("utf-8")
    found = re.search(r"`reports/` now holds (.*?)\. The run itself", text, re.DOTALL)
    assert found, "the quickstart no longer says what reports/ holds"
    listed = set(re.findall(r"`([^`]+)`", found.group(1)))
    written = _written_by_demo()
    assert len(written) >= 5  # graph, document, summary, markdown, JUnit
    assert listed == written
