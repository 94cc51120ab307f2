"""What a ``permissions.commands`` entry admits: argv matched item by item (a pure core).

An entry is read like a shell line (``shlex``): optional ``NAME=value`` assignments, the
program, then one item per argument. The program is compared exactly. In an argument item,
``*`` matches any run of characters within that one argument; a final lone ``*`` stands for
any number of further plain arguments. An argument that starts with ``-`` (an option) is
admitted only by an item that itself starts with ``-``, so ``git diff *`` does not admit
``git diff --output=/x``. A node's ``env`` may set a variable that chooses the program or the
code it loads (:func:`selects_program`) only when the entry spells an assignment for it. The
entry ``*`` alone admits any command. docs/validation.md states the same rules for readers.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PROGRAM_SELECTING = frozenset(
    {
        # Where programs and shells are found, and what a shell runs before the command.
        "PATH",
        "SHELL",
        "ENV",
        "BASH_ENV",
        "ZDOTDIR",
        "PROMPT_COMMAND",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "IFS",
        # Where configuration is read from (git's core.pager, core.fsmonitor... run programs).
        "HOME",
        "XDG_CONFIG_HOME",
        # Programs other programs start.
        "PAGER",
        "MANPAGER",
        "EDITOR",
        "VISUAL",
        "BROWSER",
        "LESSOPEN",
        "LESSCLOSE",
        "SSH_ASKPASS",
        "CC",
        "CXX",
        "CPP",
        "LD",
        "AR",
        "MAKEFLAGS",
        "MFLAGS",
        # Code an interpreter loads before the program's own.
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "PYTHONEXECUTABLE",
        "PYTHONPLATLIBDIR",
        "PYTHONBREAKPOINT",
        "PYTHONWARNINGS",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
    }
)
"""Variables a node's ``env`` may set only where a permission spells them: each can make an
admitted program run another program, or load code or configuration of someone else's choice."""
PROGRAM_SELECTING_PREFIXES = ("LD_", "DYLD_", "GIT_", "BASH_FUNC_", "NPM_CONFIG_", "PIP_")
"""Families of such variables: the dynamic loader's, git's (``GIT_EXTERNAL_DIFF``,
``GIT_CONFIG_*``, ``GIT_SSH_COMMAND``, ``GIT_DIR``...), exported shell functions, npm's and
pip's settings (which choose the code they install and run)."""

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_OPTION_HINT = "an entry admits an option only where it spells one, such as '--stat' or '-*'"


class PatternError(ValueError):
    """A ``permissions.commands`` entry that cannot be read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pattern:
    """One ``permissions.commands`` entry, read."""

    text: str
    """The entry as written."""
    anything: bool
    """The entry ``*``: any command at all."""
    assignments: tuple[tuple[str, str], ...]
    """``NAME=glob`` pairs the node's ``env`` may set (program-selecting or not)."""
    program: str
    """The program, compared exactly with ``argv[0]``."""
    items: tuple[str, ...]
    """One glob per argument."""
    rest: bool
    """A final lone ``*``: any number of further plain arguments."""


def selects_program(name: str) -> bool:
    """Whether ``name`` is a variable that may choose the program or the code it loads."""
    return name in PROGRAM_SELECTING or name.startswith(PROGRAM_SELECTING_PREFIXES)


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Pattern:
    """The entry ``text`` read; :class:`PatternError` says why it cannot be."""
    if text.strip() == "*":
        return Pattern(text=text, anything=True, assignments=(), program="", items=(), rest=True)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise PatternError(f"cannot be read as a shell line ({exc})") from exc
    assignments: dict[str, str] = {}
    while words and _ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        if name in assignments:
            raise PatternError(f"assigns {name} twice")
        assignments[name] = value
    if not words:
        raise PatternError("names no program")
    program, *items = words
    if "*" in program:
        raise PatternError(
            f"has {program!r} as its program, and a program must be spelled out exactly "
            f"(write {program.replace('*', '') + ' *'!r} for it with any plain arguments)"
        )
    rest = bool(items) and items[-1] == "*"
    return Pattern(
        text=text,
        anything=False,
        assignments=tuple(assignments.items()),
        program=program,
        items=tuple(items[:-1] if rest else items),
        rest=rest,
    )


def readable(patterns: Sequence[str]) -> list[Pattern]:
    """The entries that can be read (the others admit nothing; ``validate`` reports them)."""
    found = []
    for text in patterns:
        try:
            found.append(parse(text))
        except PatternError:
            continue
    return found


def mismatch(
    pattern: Pattern, argv: Sequence[str | None], env: Mapping[str, str | None]
) -> str | None:
    """Why ``pattern`` does not admit the argv with the node's ``env``; ``None`` if it does.

    ``None`` as an argv item or an env value stands for a value known only at run time, which
    may be anything: a pattern then admits it if it admits some value there.
    """
    if pattern.anything:
        return None if argv else "it is empty"
    allowed = dict(pattern.assignments)
    for name, value in env.items():
        glob = allowed.get(name)
        if glob is None:
            if selects_program(name):
                return (
                    f"its env sets {name}, which can choose the program or the code it loads, "
                    f"and {pattern.text!r} does not spell {name + '=...'!r}"
                )
        elif value is not None and not _matches(glob, value):
            return f"its env sets {name}={value!r}, where {pattern.text!r} admits {glob!r}"
    if not argv or (argv[0] is not None and argv[0] != pattern.program):
        return f"its program is not {pattern.program!r}"
    args = argv[1:]
    wanted = len(pattern.items)
    if len(args) < wanted or (len(args) > wanted and not pattern.rest):
        admitted = f"at least {wanted}" if pattern.rest else f"exactly {wanted}"
        return f"it has {len(args)} arguments, and {pattern.text!r} admits {admitted}"
    for index, (glob, value) in enumerate(zip(pattern.items, args, strict=False), start=1):
        if value is None or _item_admits(glob, value):
            continue
        if value.startswith("-") and not glob.startswith("-"):
            return f"argument {index} {value!r} is an option where {glob!r} stands ({_OPTION_HINT})"
        return f"argument {index} {value!r} does not match {glob!r}"
    for index, value in enumerate(args[wanted:], start=wanted + 1):
        if value is not None and value.startswith("-"):
            return (
                f"argument {index} {value!r} is an option, which the final '*' of "
                f"{pattern.text!r} does not admit ({_OPTION_HINT})"
            )
    return None


def refusal(
    argv: Sequence[str | None], env: Mapping[str, str | None], patterns: Sequence[str]
) -> str | None:
    """Why no entry of ``patterns`` admits the command (the nearest entry's reason first);
    ``None`` when one does."""
    read = readable(patterns)
    reasons = []
    for pattern in read:
        reason = mismatch(pattern, argv, env)
        if reason is None:
            return None
        reasons.append((pattern, reason))
    if not reasons:
        if patterns:
            return "none of its entries can be read (`branchleaf validate` says why)"
        return "no permissions.commands entry admits any command here"
    # The entry that agrees with the longest start of the argv says most about what to change.
    pattern, reason = max(reasons, key=lambda pair: _agreement(pair[0], argv))
    return f"{reason} (nearest entry {pattern.text!r})" if len(reasons) > 1 else reason


def _agreement(pattern: Pattern, argv: Sequence[str | None]) -> int:
    """How many leading argv items ``pattern`` admits, the program included."""
    if pattern.anything or not argv or argv[0] not in (None, pattern.program):
        return 0
    count = 1
    for glob, value in zip(pattern.items, argv[1:], strict=False):
        if value is not None and not _item_admits(glob, value):
            break
        count += 1
    return count


def covers(outer: Pattern, inner: Pattern) -> bool:
    """Whether ``outer`` admits every command ``inner`` admits (sound; may say False)."""
    if outer.anything:
        return True
    if inner.anything or outer.program != inner.program:
        return False
    if not _env_covers(dict(outer.assignments), dict(inner.assignments)):
        return False
    wanted, given = len(outer.items), len(inner.items)
    if given < wanted or (inner.rest and not outer.rest) or (given > wanted and not outer.rest):
        return False
    if not all(_item_covers(o, i) for o, i in zip(outer.items, inner.items, strict=False)):
        return False
    # Extra items fall under outer's final '*', which admits plain arguments only.
    return all(not item.startswith("-") for item in inner.items[wanted:])


def _env_covers(outer: dict[str, str], inner: dict[str, str]) -> bool:
    for name, glob in inner.items():
        if name in outer:
            if not _glob_covers(outer[name], glob):
                return False
        elif selects_program(name):
            return False
    # A plain variable outer constrains and inner does not: inner admits any value of it.
    return all(
        name in inner or selects_program(name) or set(glob) == {"*"} for name, glob in outer.items()
    )


def _item_admits(glob: str, value: str) -> bool:
    if value.startswith("-") and not glob.startswith("-"):
        return False
    return _matches(glob, value)


def _item_covers(outer: str, inner: str) -> bool:
    # Items starting with '-' admit only options and others only plain arguments.
    return outer.startswith("-") == inner.startswith("-") and _glob_covers(outer, inner)


def _matches(glob: str, value: str) -> bool:
    """Whether ``value`` matches ``glob``, where only ``*`` is special (``?`` and ``[`` stay
    literal, as in pytest ids like ``test_x[1]``).

    The literal parts are found left to right, each at its first place: with ``*`` the only
    wildcard that is exact, and it takes linear time where a regular expression of many ``*``
    could take minutes on a long hostile value."""
    first, *middle = glob.split("*")
    if not middle:
        return glob == value
    last = middle.pop()
    if len(value) < len(first) + len(last):
        return False
    if not (value.startswith(first) and value.endswith(last)):
        return False
    at, end = len(first), len(value) - len(last)
    for part in middle:
        found = value.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


def _glob_covers(outer: str, inner: str) -> bool:
    """Whether every text ``inner`` matches is matched by ``outer`` (``*`` the only wildcard).

    Exactly when ``outer`` matches inner's spelling, its ``*`` read as a character: outer's
    literal parts hold no ``*``, so only outer's own ``*`` can take the place of inner's."""
    return _matches(outer, inner)
