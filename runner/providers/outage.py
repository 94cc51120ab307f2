"""Provider failures that are not the workflow's: the provider could not do the work at all.

A call that ends on one of these does not say anything about the workflow: the endpoint could
not be reached, did not answer within the time-out, refused the credentials, stayed unavailable
(429 or 5xx) through every retry, has no such endpoint or model (404), or answered something that
is not its API's reply. The node ends ``provider_failed`` rather than ``failed``, the run exits 4
rather than 1, and reports count such failures by cause, one sentence each (issue 12). A reply
the model did write but that does not fit the leaf's ``output`` schema is the workflow's
failure, never one of these; so is any request the provider turned down for what it asked
(400, 413, 422), and an error the mock's script stages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from runner.plural import plural


class Cause(StrEnum):
    """Why the provider could not do the work."""

    UNREACHABLE = "unreachable"
    """No connection, or it broke before an answer: refused, unresolvable host, reset, TLS."""
    TIMED_OUT = "timed_out"
    """No whole answer within the call's time-out (``timeout_s``), retries included."""
    AUTHENTICATION = "authentication"
    """The provider refused the credentials: HTTP 401 or 403."""
    UNAVAILABLE = "unavailable"
    """HTTP 429 or 5xx on the last attempt the retries allowed."""
    NOT_FOUND = "not_found"
    """HTTP 404: no such endpoint, or no such model there."""
    BAD_ANSWER = "bad_answer"
    """An answer that is not the API's reply: not JSON, not its shape, a redirect, not HTTP."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outage:
    """One provider failure, described the same way for every call it stops."""

    provider: str
    """The provider's name in the configuration."""
    endpoint: str
    """Its base URL, credentials left out."""
    cause: Cause
    """The kind of failure."""
    detail: str
    """What happened, as a phrase that holds nothing particular to one call (no request id, no
    text of the provider's own), so that calls that failed alike share it."""

    def sentence(self) -> str:
        """``provider 'openai' (http://127.0.0.1:9/v1) could not be reached: ...``."""
        return f"provider {self.provider!r} ({self.endpoint}) {self.detail}"


Node = TypeVar("Node")


def provider_of(failure: str) -> str:
    """``provider 'openai' (http://127.0.0.1:9/v1)``: whom a sentence of :meth:`Outage.sentence`
    is about."""
    who, sep, _ = failure.partition(") ")
    return who + ")" if sep else failure


def tally(failures: Iterable[str | None]) -> list[tuple[str, int]]:
    """Each distinct provider failure once, in the order first seen, with how many calls it
    stopped; ``None`` (no provider failure) is passed over."""
    counts = Counter(failure for failure in failures if failure is not None)
    return list(counts.items())


def counted(failures: Iterable[str | None]) -> list[str]:
    """:func:`tally` as sentences: ``provider 'openai' (...) could not be reached: ... (7
    calls)``."""
    return [f"{failure} ({plural(calls, 'call')})" for failure, calls in tally(failures)]


def summary(failures: Iterable[str | None]) -> str | None:
    """:func:`counted` as one text (``; `` between failures), or None when there is none."""
    causes = counted(failures)
    return "; ".join(causes) if causes else None


def first_per_failure(
    nodes: Sequence[Node], failure: Callable[[Node], str | None]
) -> tuple[list[Node], int]:
    """The nodes to show, each provider failure with its first node only, and how many nodes
    were left out for failing the same way."""
    shown: list[Node] = []
    seen: set[str] = set()
    for node in nodes:
        found = failure(node)
        if found is not None and found in seen:
            continue
        if found is not None:
            seen.add(found)
        shown.append(node)
    return shown, len(nodes) - len(shown)
