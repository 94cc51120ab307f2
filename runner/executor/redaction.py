"""The secrets a run knows, kept out of what its commands and model calls hand on.

A command step may be given a key on purpose (its own ``env`` entry), and a test that prints
its environment, or a provider that echoes what it was sent, then puts the key in a result
that later prompts read and the trace stores. Such results are redacted as they arrive,
before anything reads them, so a replay (answered from the redacted trace) sees the same text
as the run did.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

from runner.executor.commands import CommandResult
from runner.providers.base import ChatMessage, ModelReply, ModelRequest
from runner.secrets import Redactor, looks_secret

MIN_SECRET = 8
"""Shorter values (a flag, a placeholder such as ``x``) would redact ordinary text."""


def run_redactor(
    withheld: Iterable[str],
    declared: Mapping[str, str],
    environ: Mapping[str, str] = os.environ,
) -> Redactor:
    """The run's secrets: the values of the credentials commands do not inherit, and of the
    declared environment entries whose names look secret or that hold such a credential."""
    names = frozenset(withheld)
    values = [environ.get(name, "") for name in names]
    values += [value for name, value in declared.items() if looks_secret(name) or name in names]
    kept = {form for value in values for form in (value, value.strip()) if len(form) >= MIN_SECRET}
    return Redactor(kept)


def command_result(result: CommandResult, redactor: Redactor) -> CommandResult:
    """``result`` with every secret taken out of its argv and output."""
    if not redactor:
        return result
    return dataclasses.replace(
        result,
        argv=tuple(redactor.redact(item) for item in result.argv),
        stdout=redactor.redact(result.stdout),
        stderr=redactor.redact(result.stderr),
    )


def value(computed: Any, redactor: Redactor) -> Any:
    """A value an expression computed (a ``reduce``'s output) with every secret taken out of
    its text, keys included: an expression may read a declared secret entry."""
    if not redactor:
        return computed
    if isinstance(computed, str):
        return redactor.redact(computed) if redactor.leaks(computed) else computed
    if isinstance(computed, Mapping):
        return {value(k, redactor): value(v, redactor) for k, v in computed.items()}
    if isinstance(computed, list | tuple):
        return [value(item, redactor) for item in computed]
    return computed


def reply(answer: ModelReply, redactor: Redactor) -> ModelReply:
    """``answer`` with every secret taken out of its text."""
    if not redactor or not redactor.leaks(answer.text):
        return answer
    return dataclasses.replace(answer, text=redactor.redact(answer.text))


def request(sent: ModelRequest, redactor: Redactor) -> ModelRequest:
    """``sent`` as it is recorded: the messages without secrets (its key, computed from what
    was sent, is unchanged, so a replay with the same environment still finds it)."""
    if not redactor or not any(redactor.leaks(m.content) for m in sent.messages):
        return sent
    messages = tuple(
        ChatMessage(role=m.role, content=redactor.redact(m.content)) for m in sent.messages
    )
    return dataclasses.replace(sent, messages=messages)


def text(message: str | None, redactor: Redactor) -> str | None:
    """An error message without secrets."""
    if message is None or not redactor:
        return message
    return redactor.redact(message)
