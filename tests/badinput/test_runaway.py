"""Hostile input that could hang or exhaust memory: each case ran in a child process with a time
and memory limit (see ``runaway.py``); here each outcome is checked."""

from __future__ import annotations

import pytest

from badinput.cli import assert_clean
from badinput.runaway import CASES, Background


@pytest.mark.parametrize("case", list(CASES))
def test_runaway(case: str, background: Background) -> None:
    assert_clean(background.outcome(case), allowed=CASES[case].allowed)
