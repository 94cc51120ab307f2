"""What a ``permissions.commands`` entry admits: argv item by item, options only where spelled,
program-selecting variables only where assigned (runner/permissions.py)."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.permissions import PatternError, covers, mismatch, parse, refusal, selects_program


def admits(entry: str, argv: list[str], env: dict[str, str] | None = None) -> bool:
    return refusal(argv, dict(env or {}), [entry]) is None


@pytest.mark.parametrize(
    ("entry", "argv", "expected"),
    [
        ("git diff *", ["git", "diff"], True),
        ("git diff *", ["git", "diff", "HEAD~1", "src"], True),
        ("git diff *", ["git", "diff", "--output=/tmp/x"], False),
        ("git diff *", ["git", "diff", "HEAD", "-R"], False),
        ("git diff *", ["git", "status"], False),
        ("git diff *", ["git", "diff-tree"], False),
        ("git diff *", ["gitx", "diff"], False),
        ("git diff --stat *", ["git", "diff", "--stat", "main...HEAD"], True),
        ("git diff --stat *", ["git", "diff", "--stat", "--output=x"], False),
        ("git diff -* *", ["git", "diff", "--output=x", "main"], True),
        ("git diff -* *", ["git", "diff", "main"], False),
        ("git log '--format=%h %s' *", ["git", "log", "--format=%h %s", "a..b"], True),
        ("git log --format=* *", ["git", "log", "--format=%an", "a..b"], True),
        ("git log --format=* *", ["git", "log", "--formatx", "a..b"], False),
        ("echo *", ["echo", "hi"], True),
        ("echo *", ["echo_evil", "hi"], False),
        ("echo", ["echo"], True),
        ("echo", ["echo", "x"], False),
        ("make test", ["make", "test"], True),
        ("make ?est", ["make", "test"], False),  # '?' is literal
        ("pytest tests/test_x[1]", ["pytest", "tests/test_x[1]"], True),
        ("pytest tests/*.py", ["pytest", "tests/a.py"], True),
        ("pytest tests/*.py", ["pytest", "tests/a.py", "b.py"], False),
        ("pytest * *", ["pytest"], False),  # the first '*' is one argument
        ("pytest * *", ["pytest", "a", "b", "c"], True),
        ("sh -c *", ["sh", "-c", "echo hi"], True),
        ("*", ["anything", "--at", "all"], True),
        ("ruff *", ["Ruff", "check"], False),
    ],
)
def test_argv_item_by_item(entry: str, argv: list[str], expected: bool) -> None:
    assert admits(entry, argv) is expected


def test_the_option_reason_says_how_to_admit_one() -> None:
    why = refusal(["git", "diff", "--output=/x"], {}, ["git diff *"])
    assert why is not None
    assert "argument 2 '--output=/x' is an option" in why
    assert "'-*'" in why


@pytest.mark.parametrize(
    ("entry", "env", "expected"),
    [
        ("git diff *", {"PATH": "/tmp/evil"}, False),
        ("git diff *", {"GIT_EXTERNAL_DIFF": "/tmp/evil"}, False),
        ("git diff *", {"GIT_CONFIG_COUNT": "1"}, False),
        ("git diff *", {"LD_PRELOAD": "/tmp/evil.so"}, False),
        ("git diff *", {"PYTHONPATH": "."}, False),
        ("git diff *", {"PYTHONHASHSEED": "0", "LANG": "C"}, True),
        ("PATH=/usr/bin:/bin git diff *", {"PATH": "/usr/bin:/bin"}, True),
        ("PATH=/usr/bin:/bin git diff *", {"PATH": "/tmp/evil:/usr/bin"}, False),
        ("PATH=/usr/bin:/bin git diff *", {}, True),
        ("GIT_AUTHOR_NAME=* git diff *", {"GIT_AUTHOR_NAME": "Ada"}, True),
        ("LANG=C git diff *", {"LANG": "fr_FR"}, False),
    ],
)
def test_program_selecting_variables(entry: str, env: dict[str, str], expected: bool) -> None:
    assert admits(entry, ["git", "diff"], env) is expected


def test_selecting_names() -> None:
    for name in ("PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES", "GIT_SSH_COMMAND", "BASH_ENV"):
        assert selects_program(name)
    for name in ("PYTHONHASHSEED", "LANG", "CI", "GITHUB_REPOSITORY", "path"):
        assert not selects_program(name)


def test_unknown_items_may_be_anything() -> None:
    # A templated item (None) is admissible where some value is admitted.
    assert mismatch(parse("git diff *"), ["git", "diff", None, None], {}) is None
    assert mismatch(parse("git diff --stat"), ["git", "diff", None], {}) is None
    assert mismatch(parse("git diff"), ["git", "diff", None], {}) is not None
    assert mismatch(parse("git diff *"), [None, None], {"PATH": None}) is not None
    assert mismatch(parse("PATH=* git diff *"), [None, None], {"PATH": None}) is None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("echo*", "must be spelled out"),
        ("*.sh", "must be spelled out"),
        ("git 'diff", "cannot be read as a shell line"),
        ("PATH=/x", "names no program"),
        ("A=1 A=2 make", "assigns A twice"),
    ],
)
def test_unreadable_entries(entry: str, reason: str) -> None:
    with pytest.raises(PatternError, match=reason):
        parse(entry)
    assert refusal([entry.split(maxsplit=1)[0]], {}, [entry]) is not None


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("*", "git diff *", True),
        ("git diff *", "*", False),
        ("git diff *", "git diff HEAD *", True),
        ("git diff *", "git diff --stat", False),
        ("git diff -* *", "git diff --stat *", True),
        ("git diff --stat *", "git diff -* *", False),
        ("git diff *", "git log *", False),
        ("git diff", "git diff *", False),
        ("git diff *", "git diff", True),
        ("git diff src/*", "git diff src/a*", True),
        ("git diff src/a*", "git diff src/*", False),
        ("PATH=* git diff *", "PATH=/bin git diff *", True),
        ("git diff *", "PATH=/bin git diff *", False),
        ("LANG=C git diff *", "git diff *", False),
    ],
)
def test_covers(outer: str, inner: str, expected: bool) -> None:
    assert covers(parse(outer), parse(inner)) is expected


_WORD = st.text(alphabet="ab-*=/.", min_size=0, max_size=5)
_PLAIN = st.text(alphabet="ab/.", min_size=1, max_size=5)


_LITERAL = st.text(alphabet="ab-=/. ", min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(_LITERAL, max_size=4), extra=_LITERAL)
def test_an_entry_admits_the_argv_it_spells_and_no_longer_one(items: list[str], extra: str) -> None:
    entry = shlex.join(["prog", *items])
    assert admits(entry, ["prog", *items])
    assert not admits(entry, ["prog", *items, extra])
    assert admits(entry + " *", ["prog", *items, extra]) is not extra.startswith("-")


@settings(max_examples=300, deadline=None)
@given(args=st.lists(st.text(alphabet="ab-=x", max_size=4), max_size=5))
def test_a_final_star_never_admits_an_option(args: list[str]) -> None:
    expected = all(not a.startswith("-") for a in args)
    assert admits("prog *", ["prog", *args]) is expected


@settings(max_examples=300, deadline=None)
@given(
    outer=st.lists(_WORD.filter(bool), min_size=0, max_size=3),
    inner=st.lists(_WORD.filter(bool), min_size=0, max_size=3),
    argv=st.lists(_PLAIN | st.text(alphabet="-ab=", min_size=1, max_size=4), max_size=4),
)
def test_covering_is_sound(outer: list[str], inner: list[str], argv: list[str]) -> None:
    """Whatever an entry admits, an entry said to cover it admits too."""
    o, i = parse(shlex.join(["prog", *outer])), parse(shlex.join(["prog", *inner]))
    if covers(o, i) and mismatch(i, ["prog", *argv], {}) is None:
        assert mismatch(o, ["prog", *argv], {}) is None


def _documented() -> list[tuple[str, str, bool]]:
    """The examples of docs/validation.md's table of entries (rows without an env)."""
    text = (Path(__file__).parent.parent / "docs" / "validation.md").read_text(encoding="utf-8")
    table = text.split("| entry | admits | does not admit |", 1)[1].split("\n\n", 1)[0]
    found = []
    for row in table.strip().splitlines()[1:]:
        if "env:" in row:
            continue
        entry, yes, no = (re.findall(r"`([^`]*)`", cell) for cell in row.strip("|").split(" | "))
        found += [(entry[0], line, True) for line in yes]
        found += [(entry[0], line, False) for line in no]
    return found


@pytest.mark.parametrize(("entry", "line", "expected"), _documented())
def test_the_documented_examples_hold(entry: str, line: str, expected: bool) -> None:
    assert admits(entry, shlex.split(line)) is expected


def test_a_hostile_glob_is_matched_in_linear_time() -> None:
    # As a regular expression, '*a' * 40 + '*b' against 'a' * 50000 backtracks for hours.
    started = time.monotonic()
    entry = "prog " + "*a" * 40 + "*b"
    assert not admits(entry, ["prog", "a" * 50_000])
    assert admits(entry, ["prog", "a" * 50_000 + "b"])
    assert covers(parse(entry), parse("prog " + "a*" * 40 + "ab"))
    assert time.monotonic() - started < 30
