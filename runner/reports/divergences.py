"""Many divergences of one replay, told briefly: the first in full, the others counted by kind.

A prompt changed in one place makes every leaf that renders it diverge, each with the same
diff; a reader needs that diff once, and how many of each kind followed (issue 11)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from runner.plural import plural
from runner.status import Status

KINDS: dict[str, tuple[str, str]] = {
    "request": ("request not in the trace", "requests not in the trace"),
    "command": ("command not in the trace", "commands not in the trace"),
    "decision": ("decision that differs", "decisions that differ"),
    "output": ("output that differs", "outputs that differ"),
    "ended": (
        "node that ended otherwise in the recorded run",
        "nodes that ended otherwise in the recorded run",
    ),
}
"""Kinds of divergence, in the order they are counted, singular and plural."""

_HEADLINES: tuple[tuple[str, str], ...] = (
    ("the model call at ", "request"),
    ("no model call was recorded at ", "request"),
    ("the call at ", "request"),
    ("the command at ", "command"),
    ("no command was recorded at ", "command"),
    ("the decision at ", "decision"),
    ("the output of ", "output"),
)
"""How the headlines of :class:`runner.store.trace.RecordedRun`'s messages begin."""

Node = TypeVar("Node")


def kind_of(error: str) -> str | None:
    """The kind (a key of :data:`KINDS`) of a divergence from its message; None for a node
    that diverged only because something inside it did."""
    headline = error.splitlines()[0] if error else ""
    for start, kind in _HEADLINES:
        if headline.startswith(start):
            return kind
    if headline.endswith(" in the recorded run") or " in the recorded run, and " in headline:
        return "ended"
    return None


def counted(errors: Iterable[str]) -> str:
    """``40 requests not in the trace, 20 outputs that differ``: divergences by kind."""
    counts = Counter(kind_of(error) for error in errors)
    return ", ".join(plural(counts[kind], *KINDS[kind]) for kind in KINDS if counts[kind])


def first_only(
    nodes: Sequence[Node], status: Callable[[Node], str], error: Callable[[Node], str | None]
) -> tuple[list[Node], list[Node], str | None]:
    """The nodes to show (all but the divergences after the first), those left out, and the
    line that counts them (``and 60 more divergences: 40 requests not in the trace, 20
    outputs that differ``; None when none is left out)."""
    shown: list[Node] = []
    left: list[Node] = []
    seen = False
    for node in nodes:
        diverged = status(node) == Status.REPLAY_DIVERGED and kind_of(error(node) or "")
        if diverged and seen:
            left.append(node)
            continue
        seen = seen or bool(diverged)
        shown.append(node)
    if not left:
        return shown, left, None
    errors = [error(node) or "" for node in left]
    return shown, left, f"and {plural(len(left), 'more divergence')}: {counted(errors)}"
