"""What a plain template or expression reads, without Jinja.

Most prompts are text with a few ``{{ outputs.x.y }}`` tags, and most ``if`` fields are one
dotted name. Parsing and compiling such a source with Jinja costs about a millisecond, most of
validating a long workflow; it cannot fail, and what it reads is in plain sight. Anything else
(a filter, a block, a comment, whitespace control, a name Jinja treats specially) is left to
``runner.expressions``, which compiles it. A property test holds the two answers together.
"""

from __future__ import annotations

import re

from runner.expressions import ROOT_NAMES, Reads, environment

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_TAG = re.compile(r"\{\{[ \t\n]*(" + _PATH + r")[ \t\n]*\}\}")
_EXPRESSION = re.compile(r"[ \t\n]*(" + _PATH + r")[ \t\n]*")
_SPECIAL = frozenset(
    {
        # constants and operators, which Jinja reads as words
        *("true", "false", "none", "True", "False", "None"),
        *("and", "or", "not", "in", "is", "if", "else"),
        # names Jinja binds or treats itself
        *("self", "loop", "super", "caller", "varargs", "kwargs"),
    }
)


def plain_reads(source: str, *, expression: bool) -> Reads | None:
    """What ``source`` reads, when it is plain (text and dotted names in ``{{ }}``, or, as an
    expression, one dotted name); ``None`` when Jinja must say."""
    if expression:
        whole = _EXPRESSION.fullmatch(source)
        if whole is None:
            return None
        paths = [whole.group(1)]
    else:
        parts = _TAG.split(source)
        if any(_has_syntax(text) for text in parts[::2]):
            return None
        paths = parts[1::2]
    found: dict[str, set[str]] = {name: set() for name in ROOT_NAMES}
    names: set[str] = set()
    for path in paths:
        base, *rest = path.split(".")
        if base in _SPECIAL:
            return None
        names.add(base)
        if rest and base in ROOT_NAMES:
            found[base].add(rest[0])
    return Reads(
        outputs=frozenset(found["outputs"]),
        inputs=frozenset(found["inputs"]),
        env=frozenset(found["env"]),
        names=frozenset(names - set(environment().globals)),
        dynamic_outputs=False,
    )


def _has_syntax(text: str) -> bool:
    # A text ending in "{" would make the next tag open one character earlier: "{{{ x }}".
    return "{{" in text or "{%" in text or "{#" in text or text.endswith("{")
