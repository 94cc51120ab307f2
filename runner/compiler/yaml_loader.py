"""YAML and JSON workflow files -> document, keeping a line and column for every JSON pointer."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from runner.compiler.source import Document, Location, pointer_join
from runner.errors import CompileError, Diagnostic
from runner.jsontext import (
    MAX_DEPTH,
    TOO_DEEP,
    JSONProblem,
    has_lone_surrogate,
    lone_surrogate,
    parse_json,
)

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Safe loading with YAML 1.2 booleans: only true and false, so ``memo: on`` stays a string;
    YAML 1.2 floats, so ``1e3`` is a number; and no timestamps, so dates stay strings as JSON
    has no date type."""

    # The composer asks for a tag for every node. Without path resolvers (none are added),
    # PyYAML's answer is the first implicit resolver that matches, else the default; the
    # same answer, in fewer steps, as a long workflow has tens of thousands of nodes.

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        if self.yaml_path_resolvers:
            super().descend_resolver(current_node, current_index)

    def ascend_resolver(self) -> None:
        if self.yaml_path_resolvers:
            super().ascend_resolver()

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if self.yaml_path_resolvers or kind is not yaml.ScalarNode:
            return super().resolve(kind, value, implicit)
        if implicit[0]:
            found = self.yaml_implicit_resolvers
            for tag, regexp in (*found.get(value[:1], ()), *found.get(None, ())):
                if regexp.match(value):
                    return tag
        return self.DEFAULT_SCALAR_TAG


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.1 reads a float only with a dot and a signed exponent, so `timeout_s: 1e3` would be
# the string "1e3"; YAML 1.2 (and JSON) read it as a number, as a reader of the file does.
_EXPONENT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+.0123456789"))


class Dumper(yaml.SafeDumper):
    """Writes YAML that this loader reads back as written: a string such as ``"1e3"``, which
    PyYAML's own dumper leaves unquoted, is quoted."""


Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+.0123456789"))


MAX_VALUES = 100_000
"""Most values a document may expand to: YAML aliases can multiply a small file without end."""


_TOO_DEEP = f"the document {TOO_DEEP}"


class _TooLarge(Exception):
    """The document expands to more than MAX_VALUES values."""


def load_json(path: str, text: str) -> Document:
    """Parse one JSON workflow with JSON's own rules; positions come from reading it as YAML.

    JSON is nearly a subset of YAML, so the YAML composer finds where each value is; the values
    themselves come from the JSON parser, which reads exponents, surrogate pairs and raw
    control characters as JSON means them. Where the YAML reader cannot follow, positions are
    left out, never the values.
    """

    if not text.strip():
        raise CompileError([_empty(path)])

    try:
        data = parse_json(text)
    except JSONProblem as exc:
        raise CompileError(
            [
                Diagnostic(
                    file=path,
                    line=exc.line,
                    col=exc.col,
                    rule="syntax",
                    message=exc.message.replace("the value nests", "the document nests"),
                    hint=exc.hint,
                )
            ]
        ) from exc
    try:
        located = load_yaml(path, text, language="json")
    except CompileError as exc:
        twice = [d for d in exc.diagnostics if "given twice" in d.message]
        if twice:  # JSON parsers keep the last of duplicate keys silently; say so instead
            raise
        return Document(path=path, data=data, language="json")
    return Document(path=path, data=data, language="json", locator=located.locator)


def load_yaml(path: str, text: str, *, language: str = "yaml") -> Document:
    """Parse one YAML workflow; every problem is reported in one CompileError."""
    if not text.strip():  # YAML itself refuses some whitespace, such as a tab, as a token
        raise CompileError([_empty(path)])
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise CompileError([_syntax_diagnostic(path, exc)]) from exc
    except yaml.reader.ReaderError as exc:
        raise CompileError([_reader_diagnostic(path, text, exc)]) from exc
    except yaml.YAMLError as exc:
        raise CompileError([Diagnostic(file=path, rule="syntax", message=str(exc))]) from exc
    finally:
        loader.dispose()
    if root is None or _blank(root):
        raise CompileError([_empty(path)])
    walker = _Walker(path, loader, escapes=_may_escape_surrogates(text), anchored="&" in text)
    try:
        data = walker.value(root, "", 0)
    except _TooLarge as exc:
        hint = (
            "YAML aliases (*name) repeat what they point at; use fewer of them."
            if walker.aliased
            else "Split the file, or let an expand or a Starlark loop make the repeated parts."
        )
        message = (
            f"the document expands to more than {MAX_VALUES} values"
            if walker.aliased
            else f"the document has more than {MAX_VALUES} values"
        )
        raise CompileError(
            [Diagnostic(file=path, rule="syntax", message=message, hint=hint)]
        ) from exc
    if walker.problems:
        raise CompileError(walker.problems)
    return Document(
        path=path, data=data, language=language, locator=_NodeLocator(path, text, walker.escapes)
    )


def _empty(path: str) -> Diagnostic:
    return Diagnostic(
        file=path,
        rule="syntax",
        line=1,
        col=1,
        message="the file is empty",
        hint="A workflow needs at least version, name and steps.",
    )


def _blank(root: Any) -> bool:
    """Whether a document is only a marker (``---``) with nothing in it."""
    return (
        isinstance(root, yaml.ScalarNode)
        and root.tag == "tag:yaml.org,2002:null"
        and root.value == ""
    )


def _position(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _reader_diagnostic(path: str, text: str, exc: yaml.reader.ReaderError) -> Diagnostic:
    """A character YAML does not allow anywhere, such as a control character."""
    where = min(max(exc.position, 0), len(text))
    line = text.count("\n", 0, where) + 1
    col = where - (text.rfind("\n", 0, where) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or " ")
    return Diagnostic(
        file=path,
        line=line,
        col=col,
        rule="syntax",
        message=f"the character U+{code:04X} cannot be in a YAML file: {exc.reason}",
        hint="Remove it, or write it as an escape (\\x07) inside a double-quoted string.",
    )


def _syntax_diagnostic(path: str, exc: yaml.MarkedYAMLError) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line, col = _position(mark) if mark is not None else (None, None)
    if "nesting depth" in (exc.problem or ""):
        return Diagnostic(
            file=path, line=line, col=col, rule="syntax", message=_TOO_DEEP, hint="Flatten it."
        )
    parts = [part for part in (exc.context, exc.problem) if part]
    return Diagnostic(
        file=path,
        line=line,
        col=col,
        rule="syntax",
        message="invalid YAML: " + ", ".join(parts),
        hint="Check the indentation and the quoting around this place.",
    )


class _NodeLocator:
    """Where a JSON pointer's value starts, found when a message asks for it, in the nodes of
    the text composed once more: a table of every value's position, or the nodes kept alive
    for the document's life, would cost a valid file more than all its messages ever need.

    It follows the walk's rules: a key counts if it is a string (the first of keys given
    twice), merge keys are flattened, and an alias is where its anchor is."""

    def __init__(self, path: str, text: str, escapes: bool) -> None:
        self.path = path
        self.text = text
        self.escapes = escapes
        self.loader: Any = None
        self.root: Any = None

    def __call__(self, pointer: str) -> Location | None:
        if self.loader is None:
            self.loader = _Loader(self.text)
            try:
                self.root = self.loader.get_single_node()
            except yaml.YAMLError:  # the text was composed once already; never expected
                self.root = None
            finally:
                self.loader.dispose()
        node = self.root
        for raw in pointer.split("/")[1:] if pointer else ():
            token = raw.replace("~1", "/").replace("~0", "~")
            if type(node) is yaml.MappingNode:
                try:
                    self.loader.flatten_mapping(node)
                except yaml.YAMLError:
                    return None
                node = next((v for k, v in node.value if self._key(k) == token), None)
            elif type(node) is yaml.SequenceNode and token.isdigit() and str(int(token)) == token:
                index = int(token)
                node = node.value[index] if index < len(node.value) else None
            else:
                return None
        if node is None:
            return None
        mark = node.start_mark
        return (self.path, mark.line + 1, mark.column + 1)

    def _key(self, node: Any) -> str | None:
        if type(node) is not yaml.ScalarNode or node.tag != _STR:
            return None  # not a string: the walk left it out
        if self.escapes and has_lone_surrogate(node.value):
            return None
        return str(node.value)


def _may_escape_surrogates(text: str) -> bool:
    """Whether a string of the document may hold a lone surrogate: text decoded as UTF-8 has
    none, so only a ``\\u`` or ``\\U`` escape in a double-quoted string can make one."""
    return "\\u" in text or "\\U" in text or has_lone_surrogate(text)


_NOT_PLAIN = object()
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"


def _plain_scalar(node: Any) -> Any:
    """The value of a string or plain decimal integer scalar, as the constructor builds it
    (in a fraction of its time: most of a long workflow's values are these); ``_NOT_PLAIN``
    for any other scalar."""
    tag = node.tag
    if tag == _STR:
        return node.value
    text = node.value
    if tag == _INT and text.isascii() and text.isdigit() and (text == "0" or text[0] != "0"):
        return int(text)
    return _NOT_PLAIN


class _Walker:
    """Builds plain JSON values from composed YAML nodes, recording where each came from."""

    def __init__(
        self, path: str, loader: Any, *, escapes: bool = True, anchored: bool = True
    ) -> None:
        self.path = path
        self.escapes = escapes
        """Whether a string may hold a lone surrogate (``_may_escape_surrogates``)."""
        self.loader = loader
        self.problems: list[Diagnostic] = []
        self.count = 0
        self.seen: set[int] = set()
        self.anchored = anchored
        """Whether the text may define an anchor (``&name``): without one, no node is met
        twice, and the nodes met need not be remembered."""
        self.aliased = False
        """Whether a node was met twice: an alias (``*name``) repeats its anchor's node."""

    def problem(self, node: Any, pointer: str, message: str, hint: str) -> None:
        line, col = _position(node.start_mark)
        self.problems.append(
            Diagnostic(
                file=self.path,
                line=line,
                col=col,
                pointer=pointer,
                rule="syntax",
                message=message,
                hint=hint,
            )
        )

    def value(self, node: Any, pointer: str, depth: int) -> Any:
        self.count += 1
        if self.anchored:
            seen = self.seen
            size = len(seen)
            seen.add(id(node))
            if len(seen) == size:
                self.aliased = True
        if self.count > MAX_VALUES:
            raise _TooLarge()
        kind = type(node)
        if kind is yaml.ScalarNode:
            if node.tag == _STR and not self.escapes:
                return node.value
            scalar = self.construct(node, pointer)
            if isinstance(scalar, str | bool | int) or scalar is None:
                return scalar
            if isinstance(scalar, float) and not math.isfinite(scalar):
                self.problem(
                    node, pointer, f"{node.value} is not a JSON number", "Use a finite number."
                )
            elif not isinstance(scalar, float):
                self.problem(
                    node,
                    pointer,
                    f"a YAML {type(scalar).__name__} value is not JSON",
                    "Quote the value to make it a string.",
                )
            return scalar
        if depth >= MAX_DEPTH:
            self.problem(node, pointer, _TOO_DEEP, "Flatten the document.")
            return None
        if kind is yaml.MappingNode:
            return self.mapping(node, pointer, depth)
        return [self.value(item, f"{pointer}/{i}", depth + 1) for i, item in enumerate(node.value)]

    def construct(self, node: Any, pointer: str) -> Any:
        """The value of a scalar (or key) node; a tag that cannot be built is a problem."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            value = _plain_scalar(node)
            if value is _NOT_PLAIN:
                value = self.loader.construct_object(node, deep=True)
            if isinstance(value, str) and self.escapes and has_lone_surrogate(value):
                self.problem(node, pointer, *lone_surrogate(value))
                return None
            return value
        except (yaml.YAMLError, ValueError, TypeError, KeyError) as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.problem(
                node,
                pointer,
                f"the value {node.value!r} cannot be read as {node.tag}: {problem}",
                "Remove the tag, or quote the value to make it a string.",
            )
            return None

    def mapping(self, node: Any, pointer: str, depth: int) -> dict[str, Any]:
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            self.problem(
                node,
                pointer,
                f"a merge key (<<) cannot be used here: {problem}",
                "Merge only mappings, written as <<: *anchor.",
            )
            return {}
        out: dict[str, Any] = {}
        plain = not self.escapes
        for key_node, value_node in node.value:
            if plain and key_node.tag == _STR and type(key_node) is yaml.ScalarNode:
                key = key_node.value
            else:
                key = self.construct(key_node, pointer)
            if not isinstance(key, str):
                shown = repr(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "a list"
                self.problem(
                    key_node, pointer, f"the key {shown} is not a string", "Quote the key."
                )
                continue
            child = pointer_join(pointer, key) if "~" in key or "/" in key else f"{pointer}/{key}"
            if key in out:
                self.problem(
                    key_node,
                    child,
                    f"the field {key!r} is given twice",
                    "Keep one of them; YAML would silently drop the first.",
                )
                continue
            out[key] = self.value(value_node, child, depth + 1)
        return out
