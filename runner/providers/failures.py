"""Why an HTTP request failed, in a few plain words for a message.

``requests`` and urllib3 (the GitHub client's) describe a failure by nesting their exceptions
and printing their reprs ("HTTPConnectionPool(host=...): Max retries exceeded ... (Caused by
NewConnectionError('<urllib3.connection.HTTPConnection object at 0x...>...'))"), aiohttp (the
providers') by its own classes around the OS error ("Cannot connect to host 127.0.0.1:9
ssl:default [Connect call failed ...]"); a user needs the innermost cause.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from runner.jsontext import JSONProblem, parse_json

_NOT_UTF8 = "not UTF-8 text"


class Body(Protocol):
    """An answer whose body has been read: a ``requests.Response``, or the providers' answer."""

    @property
    def content(self) -> bytes: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...


def read_json(response: Body) -> Any:
    """The body's JSON value, or the :class:`JSONProblem` that keeps it from being used.

    Read strictly and with bounded nesting (:func:`runner.jsontext.parse_json`): an answer
    nested thousands of levels deep would otherwise exhaust the interpreter's stack, and NaN or
    a lone surrogate would travel on into usage counts, traces and reports.
    """
    try:
        # JSON between machines is UTF-8 (RFC 8259, section 8.1), whatever the header claims;
        # a byte order mark, which some servers put first, is skipped.
        text = response.content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return JSONProblem(_NOT_UTF8, "Send UTF-8.")
    try:
        return parse_json(text)
    except JSONProblem as exc:
        return exc


def unusable_body(response: Body, problem: JSONProblem) -> str:
    """What a body :func:`read_json` refused was, as a phrase."""
    if problem.message.startswith("invalid JSON"):
        return not_json(response)
    if problem.message == _NOT_UTF8:
        return "a body that is not UTF-8 text"
    return f"JSON that cannot be used ({problem.message})"


def not_json(response: Body) -> str:
    """What a body that did not parse as JSON was, as a phrase."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind == "text/html" or response.text.lstrip()[:1] == "<":
        return "an HTML page, not JSON"
    if not response.content:
        return "an empty body, not JSON"
    return f"a body that is not JSON ({kind or 'no content type'})"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it wraps, outermost first."""
    seen: list[BaseException] = []
    here: BaseException | None = exc
    while here is not None and len(seen) < 16:
        seen.append(here)
        # urllib3 wraps its errors in MaxRetryError.reason, requests in args[0], aiohttp in
        # os_error or certificate_error.
        inner = getattr(here, "reason", None)
        for name in ("os_error", "certificate_error"):
            if not isinstance(inner, BaseException):
                inner = getattr(here, name, None)
        if not isinstance(inner, BaseException) and here.args:
            inner = here.args[0] if isinstance(here.args[0], BaseException) else None
        here = inner or here.__cause__ or here.__context__
    return seen


def broke_off(exc: BaseException) -> bool:
    """Whether a request that got no answer had its connection made, then dropped or answered
    with something that is not HTTP (rather than never made)."""
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return True
    dropped = (ConnectionResetError, http.client.HTTPException)
    return any(isinstance(error, dropped) for error in _chain(exc))


def connection_failure(exc: BaseException) -> str:
    """Why a request got no answer, in a few plain words (never urllib3's reprs)."""
    for error in reversed(_chain(exc)):
        if isinstance(error, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(error, ConnectionRefusedError):
            return "the connection was refused: no server listens at that address"
        # RemoteDisconnected is a ConnectionResetError: the narrower one first.
        if isinstance(error, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(error, ConnectionResetError):
            return "the server reset the connection"
        if isinstance(error, http.client.IncompleteRead):
            return "the server closed the connection in the middle of its answer"
        if isinstance(error, http.client.HTTPException):
            return "the server's answer is not valid HTTP"
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"the server's certificate is not trusted: {error.verify_message}"
        if isinstance(error, ssl.SSLError):
            return f"TLS error: {error.reason or 'handshake failed'}"
        if isinstance(error, TimeoutError):
            return "the server did not answer in time"
        if isinstance(error, OSError) and error.strerror:
            return error.strerror[:1].lower() + error.strerror[1:]
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the server closed the connection in the middle of its answer"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return "the URL is not valid"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed"
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class WireFailure:
    """Why an aiohttp request got no usable answer."""

    why: str
    """In a few plain words."""
    dropped: bool = False
    """The connection was made, then dropped or answered with something that is not HTTP."""
    tls: bool = False
    """The TLS handshake failed (not worth another attempt)."""
    unsent: bool = False
    """The request could not be made at all (its URL, its proxy...): not worth another one."""


def wire_failure(exc: BaseException) -> WireFailure:
    """Why an aiohttp request failed (``exc``: an ``aiohttp.ClientError`` or a ValueError it
    let through)."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return WireFailure(connection_failure(exc.certificate_error), tls=True)
    if isinstance(exc, aiohttp.ClientSSLError):
        return WireFailure(connection_failure(exc), tls=True)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return WireFailure("the host name could not be resolved")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return WireFailure(f"its proxy could not be reached: {connection_failure(exc)}")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return WireFailure(f"its proxy refused the connection (HTTP {exc.status})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return WireFailure(connection_failure(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return WireFailure("the server closed the connection without answering", dropped=True)
    if isinstance(exc, aiohttp.ClientPayloadError):
        why = "the server closed the connection in the middle of its answer"
        return WireFailure(why, dropped=True)
    if isinstance(exc, aiohttp.ClientResponseError):
        # What the parser raises for an answer that is not HTTP (a status of 400 made up).
        return WireFailure("the server's answer is not valid HTTP", dropped=True)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError | ValueError):
        return WireFailure("the URL is not valid", unsent=True)
    if isinstance(exc, ConnectionResetError) or any(
        isinstance(error, ConnectionResetError) for error in _chain(exc)
    ):
        return WireFailure("the server reset the connection", dropped=True)
    if isinstance(exc, aiohttp.ClientOSError):
        return WireFailure(connection_failure(exc), dropped=True)
    return WireFailure(connection_failure(exc))
