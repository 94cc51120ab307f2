"""Every bad-input case runs in a fresh directory, so no configuration or state leaks in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from badinput.recorded import Recorded, shared
from badinput.runaway import Background


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.fixture(scope="session")
def recorded() -> Recorded:
    """Two finished runs in a state, and the last one's exported trace."""
    return shared()


@pytest.fixture(scope="session", autouse=True)
def background() -> Iterator[Background]:
    """The child-process cases, started as the suite starts so that they overlap with it."""
    started = Background()
    yield started
    started.close()
