"""Tests for runner.globs: segment-aware scope overlap and containment."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.globs import any_overlap, covered_by_any, covers, overlaps, split

FAST = settings(max_examples=300, deadline=None)


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    # Deliberately naive reference: backtracking over `**`, fnmatch for every other segment.
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, path[k:]) for k in range(len(path) + 1))
    return bool(path) and fnmatchcase(path[0], head) and _matches(rest, path[1:])


def _covered(pattern: str, path: str) -> bool:
    segments = split(path)
    return any(_matches(split(pattern), segments[:k]) for k in range(len(segments) + 1))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (".", ()),
        ("", ()),
        ("./", ()),
        ("./src/api/", ("src", "api")),
        ("src//api///x.py", ("src", "api", "x.py")),
        ("src/./api", ("src", "api")),
        ("docs/**/*.md", ("docs", "**", "*.md")),
    ],
)
def test_split(pattern: str, expected: tuple[str, ...]) -> None:
    assert split(pattern) == expected


OVERLAPS = [
    ("src/api", "src/apiv2", False),
    ("src/api", "src/api/x.py", True),
    (".", "anything", True),
    ("", "a/b", True),
    ("**", "a/b", True),
    ("src/*.py", "src/*.md", False),
    ("src/*.py", "src/test_*", True),
    ("docs/**/*.md", "docs/a/b/c.md", True),
    # `docs/a/b.txt` is a directory scope too, so `docs/a/b.txt/c.md` lies in both.
    ("docs/**/*.md", "docs/a/b.txt", True),
    ("docs/**/*.md", "src/a.md", False),
    ("docs/*/*.md", "docs/a", True),
    ("a/**", "b", False),
    ("a/**", "a", True),
    ("**/x", "a/b/x/y", True),
    ("*/x/*.py", "a/y", False),
    ("[ab]*", "c*", False),
    ("[ab]*", "[bc]x", True),
    ("[!a-z]", "[a-z]", False),
    ("[!a-c]", "[b-d]", True),
    ("[a-b]", "[c-d]", False),
    ("[z-a]", "*", False),
    ("?", "??", False),
    ("a*b*c", "*c*b*", True),
    ("src/./api/", "./src//api/x", True),
]


@pytest.mark.parametrize(("a", "b", "expected"), OVERLAPS)
def test_overlaps(a: str, b: str, expected: bool) -> None:
    assert overlaps(a, b) is expected
    assert overlaps(b, a) is expected


COVERS = [
    ("src", "src/api/*.py", True),
    ("src/**", "src/a/b", True),
    (".", "x", True),
    ("src/api", "src", False),
    ("src/*.py", "src/a*.py", True),
    ("docs", "src", False),
    ("src/?", "src/*", False),
    ("src/*", "src/**", False),
    ("src/**", "src/**/x", True),
    ("**/*.py", "a/b/c.py", True),
    ("[a-z]*", "[b-c]x", True),
    ("[b-c]*", "[a-z]x", False),
]


@pytest.mark.parametrize(("outer", "inner", "expected"), COVERS)
def test_covers(outer: str, inner: str, expected: bool) -> None:
    assert covers(outer, inner) is expected


def test_covered_by_any() -> None:
    assert covered_by_any(["docs", "src/*"], "src/api/x.py")
    assert not covered_by_any(["docs", "tests"], "src")
    assert not covered_by_any([], "src")


def test_any_overlap() -> None:
    assert any_overlap(["docs", "src/api"], ["tests", "src/api/x.py"]) == (
        "src/api",
        "src/api/x.py",
    )
    assert any_overlap(["docs"], ["src", "tests"]) is None
    assert any_overlap([], ["src"]) is None


_literal_segment = st.text(alphabet="ab", min_size=1, max_size=2)
_literal_path = st.lists(_literal_segment, max_size=4).map("/".join)
_glob_segment = st.one_of(
    st.just("**"),
    st.text(alphabet="ab*?", min_size=1, max_size=3),
    st.sampled_from(["[ab]", "[!a]", "a[!b]*", "[a-b]?"]),
)
_glob = st.lists(_glob_segment, max_size=4).map("/".join)


@FAST
@given(_literal_path, _literal_path)
def test_literal_paths_overlap_iff_one_is_a_prefix(p: str, q: str) -> None:
    sp, sq = split(p), split(q)
    shorter, longer = sorted((sp, sq), key=len)
    assert overlaps(p, q) is (longer[: len(shorter)] == shorter)


@FAST
@given(_glob, _glob, _literal_path)
def test_overlaps_whenever_a_path_is_covered_by_both(a: str, b: str, x: str) -> None:
    if _covered(a, x) and _covered(b, x):
        assert overlaps(a, b)
    assert overlaps(a, b) is overlaps(b, a)


@FAST
@given(_glob, _glob, st.lists(_literal_path, min_size=1, max_size=8))
def test_covers_is_sound(outer: str, inner: str, paths: list[str]) -> None:
    if covers(outer, inner):
        for path in paths:
            if _covered(inner, path):
                assert _covered(outer, path)


@FAST
@given(
    st.text(alphabet="ab-!*?[]", min_size=1, max_size=6),
    st.text(alphabet="ab-!", min_size=1, max_size=4),
)
def test_single_segment_agrees_with_fnmatch(pattern: str, name: str) -> None:
    # A glob-free name, as a pattern, covers only itself and what lies below it.
    assert overlaps(pattern, name) is fnmatchcase(name, pattern)
