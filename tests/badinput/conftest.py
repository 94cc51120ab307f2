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


_BACKGROUND: list[Background] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the child-process cases as soon as it is known that they will be checked, so that
    they run while the in-process cases do."""
    if session.config.option.collectonly or _BACKGROUND:
        return
    names = [
        item.callspec.params["case"]
        for item in session.items
        if "test_runaway.py" in item.nodeid and isinstance(item, pytest.Function)
    ]
    if names:
        _BACKGROUND.append(Background(names))


@pytest.fixture(scope="session")
def background() -> Iterator[Background]:
    """The child-process cases, started in the background."""
    if not _BACKGROUND:
        _BACKGROUND.append(Background([]))
    yield _BACKGROUND[0]
    _BACKGROUND.pop().close()
