"""Plumbing shared by the HTTP providers: keys, timeouts, retries and error translation.

Calls are made with aiohttp on the run's event loop: a call in flight costs a socket and a few
objects, not a thread, so the workflow's ``concurrency`` bounds decide how many are in flight
(up to :data:`MAX_IN_FLIGHT` per provider), and a wait before a retry holds nothing but a timer.

Every failure leaves this module as a :class:`ProviderError` whose message names the provider,
the endpoint and the HTTP status, and never contains the API key: the key is scrubbed from any
text that reaches a message, including the provider's own error text and the HTTP client's
exception strings, and an exception chain that would carry it is cut.

A call ends within the provider's ``timeout_s`` (default :data:`DEFAULT_TIMEOUT_S`), its retries
and the waits between them included: past that deadline the attempt in flight is cut off and its
connection closed, whatever the server is doing (silent, or trickling bytes that would renew a
read time-out), no retry starts, and no wait for one runs past it. Within it, a 429, a 5xx, a
time-out or a dropped connection is tried again up to ``max_retries`` times (default
:data:`DEFAULT_MAX_RETRIES`), with exponential backoff and full jitter, honouring Retry-After.

A failure of the provider itself (unreachable, timed out, refusing the key, unavailable, 404, an
answer that is not the API's) carries an :class:`~runner.providers.outage.Outage` saying so in
words that are the same for every call it stops.

A call stops when the awaiting task is cancelled: the request in flight is abandoned and its
connection closed (not put back in the pool), and no further attempt starts. Nothing keeps
running detached.

Redirects are not followed: a client that follows one keeps custom credential headers such as
x-api-key on a redirect to another host, and a provider endpoint that moved is a base_url to
correct, not to chase.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import math
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import orjson

from runner import __version__
from runner.config import Provider as ProviderConfig
from runner.errors import ConfigError
from runner.jsontext import JSONProblem
from runner.plural import plural
from runner.providers.base import ProviderError, public_url
from runner.providers.failures import read_json, unusable_body, wire_failure
from runner.providers.outage import Cause, Outage
from runner.secrets import Redactor

if TYPE_CHECKING:
    import aiohttp

DEFAULT_TIMEOUT_S = 60.0
"""How long one call may take, retries and the waits between them included."""
CONNECT_TIMEOUT_S = 10.0
"""How long one attempt may wait for its connection (less when the call has less time left)."""
DEFAULT_MAX_RETRIES = 3
"""Attempts after the first for a call that failed with 429, 5xx, a time-out or a dropped
connection."""
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
RETRY_AFTER_CAP_S = 60.0
# 529 is Anthropic's "overloaded" status; it clears like a 503.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
JSON_ONLY = "Reply with a single JSON value only: no prose, no code fences."
_DETAIL_LIMIT = 300
MAX_REPLY_BYTES = 16 * 2**20
"""The longest answer body read from a provider; a longer one fails the call."""
_CHUNK_BYTES = 64 * 1024
MAX_IN_FLIGHT = 1024
"""Most HTTP model calls one provider keeps in flight (its connection pool's size). The
workflow's ``concurrency`` bounds decide how many are in flight below that."""


def read_api_key(config: ProviderConfig) -> str | None:
    """The key from the variable named by ``api_key_env`` (None when none is named)."""
    variable = config.api_key_env
    if variable is None:
        return None
    key = os.environ.get(variable, "").strip()
    if not key:
        raise ConfigError(
            f"provider {config.name!r} reads its API key from the environment variable "
            f"{variable}, which is not set or empty: set {variable} before running"
        )
    # HTTP headers carry Latin-1 text without control characters; anything else would fail
    # every call with an encoding error that quotes the key.
    unsendable = next(
        (char for char in key if ord(char) > 0xFF or ord(char) < 0x20 or ord(char) == 0x7F),
        None,
    )
    if unsendable is not None:
        what = "a character outside Latin-1"
        if ord(unsendable) < 0x80:
            what = "a line break or another control character"
        raise ConfigError(
            f"provider {config.name!r}: the API key in the environment variable {variable} "
            f"holds {what}, which an HTTP header cannot carry: set {variable} to the key alone"
        )
    return key


def require_api_key(config: ProviderConfig) -> str:
    """Like :func:`read_api_key`, for providers that cannot work without a key."""
    key = read_api_key(config)
    if key is None:
        raise ConfigError(
            f"provider {config.name!r} needs an API key: set api_key_env in its configuration "
            "to the name of the environment variable that holds the key"
        )
    return key


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP-date), if valid."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def provider_message(body: Any) -> str | None:
    """The error text inside an error body, in the shapes OpenAI-likes and Anthropic use."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    for field in ("message", "detail"):
        if isinstance(body.get(field), str):
            return str(body[field])
    return None


def price_cost(config: ProviderConfig, model: str | None, prompt: int, completion: int) -> float:
    """Dollars for a call at the model's configured prices; 0 for an unpriced model."""
    info = config.models.get(model) if model is not None else None
    if info is None:
        return 0.0
    return (prompt * info.input_per_mtok + completion * info.output_per_mtok) / 1_000_000


def resolve_model(config: ProviderConfig, model: str | None) -> str:
    """The model to send: the request's, or the provider's only configured one."""
    if model:
        return model
    if len(config.models) == 1:
        return next(iter(config.models))
    raise ConfigError(
        f"provider {config.name!r} needs a model name: name one for the role in branchleaf.yaml "
        "(roles: <role>: {provider: ..., model: ...})"
    )


class Malformed(Exception):
    """A reply body without a field the API always sends; the provider turns it into an error."""


class Unfit(Malformed):
    """A reply the model wrote that is not what was asked for (a forced tool call's input of
    the wrong shape): the workflow's failure, not the provider's."""


def dig(data: Any, *path: str | int) -> Any:
    """``data[path[0]][path[1]]...``, or Malformed naming the first missing step."""
    here = "reply"
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or len(data) <= step:
                raise Malformed(f"{here} has no item [{step}]")
            here += f"[{step}]"
        else:
            if not isinstance(data, dict) or step not in data:
                raise Malformed(f"{here} has no field {step!r}")
            here += f".{step}"
        data = data[step]
    return data


def token_count(data: Any, *path: str) -> int | None:
    """An optional token count at ``path``; Malformed when present but not a count."""
    for step in path:
        if not isinstance(data, dict) or data.get(step) is None:
            return None
        data = data[step]
    if isinstance(data, bool) or not isinstance(data, int) or data < 0:
        raise Malformed(f"{'.'.join(path)} is {data!r}, not a token count")
    return data


def required_count(usage: Any, field: str) -> int:
    """A token count the reply must carry in ``usage``."""
    count = token_count(usage, field)
    if count is None:
        raise Malformed(f"usage has no {field!r}")
    return count


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, its body read in full."""

    status: int
    reason: str
    headers: Mapping[str, str]
    content: bytes
    url: str

    @property
    def text(self) -> str:
        """The body as text (UTF-8, anything undecodable replaced)."""
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Route:
    """What the environment says about reaching one endpoint, read once per client: the proxy
    (``HTTPS_PROXY``, ``NO_PROXY``...), the CA bundle (``REQUESTS_CA_BUNDLE``,
    ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``; else certifi's, as before) and, for an endpoint sent no
    key, the ``~/.netrc`` login."""

    proxy: str | None
    tls: ssl.SSLContext | None
    login: tuple[str, str] | None


class HttpClient:
    """A JSON-over-HTTP endpoint with timeouts, retries and scrubbed errors."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        secret: str | None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s) if timeout_s is not None else DEFAULT_TIMEOUT_S
        self.max_retries = max(0, max_retries if max_retries is not None else DEFAULT_MAX_RETRIES)
        self._redactor = Redactor([secret])
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._headers = {"User-Agent": f"branchleaf/{__version__}", **headers}
        self._route = _route(provider, self.base_url, self._headers)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncIterator[None] | None = None

    @classmethod
    def for_provider(
        cls,
        config: ProviderConfig,
        *,
        default_base_url: str,
        headers: Mapping[str, str],
        secret: str | None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> HttpClient:
        """The client for a configured provider: its URL, timeout and retries."""
        return cls(
            provider=config.name,
            base_url=config.base_url or default_base_url,
            headers=headers,
            secret=secret,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            sleep=sleep,
            rng=rng,
        )

    async def aclose(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        session, self._session = self._session, None
        if session is not None and self._session_loop is asyncio.get_running_loop():
            await session.close()

    def scrub(self, text: str) -> str:
        """``text`` with the API key replaced in every form it can take, safe to put in a
        message."""
        return self._redactor.redact(text)

    def error(
        self,
        path: str,
        detail: str,
        *,
        outage: tuple[Cause, str] | None = None,
        **fields: Any,
    ) -> ProviderError:
        """A ProviderError naming the provider and endpoint, with the key scrubbed; ``outage``:
        the cause and the phrase that make it a provider failure (see :class:`Outage`)."""
        where = f"provider {self.provider!r}: POST {self._shown_url(path)}"
        found = None
        if outage is not None:
            cause, phrase = outage
            found = Outage(
                provider=self.provider, endpoint=self.endpoint, cause=cause, detail=phrase
            )
        return ProviderError(self.scrub(f"{where} {detail}"), outage=found, **fields)

    async def post_json(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON and return the JSON object answered, retrying transient
        failures within ``timeout_s``."""
        payload = _encode(body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        attempt = 0
        scope = asyncio.timeout_at(deadline)
        try:
            async with scope:
                while True:
                    try:
                        return await self._attempt(path, payload, deadline - loop.time())
                    except ProviderError as exc:
                        retry = exc.retryable and attempt < self.max_retries
                        wait = self._delay(attempt, exc.retry_after_s) if retry else 0.0
                        late = retry and loop.time() + wait >= deadline
                        if not retry or late:
                            if attempt == 0 and not late:
                                raise
                            raise self._gave_up(exc, attempt, late) from exc
                    await self._sleep(wait)
                    attempt += 1
        except TimeoutError:
            if scope.expired():
                # A read time-out restarts with every byte received; this stops the call as a
                # whole, retries and waits included.
                raise self._timed_out(path) from None
            raise

    def _gave_up(self, exc: ProviderError, attempt: int, late: bool) -> ProviderError:
        why = f"gave up after {plural(attempt + 1, 'attempt')}"
        if late:
            why += f": a retry would end past timeout_s {self.timeout_s:g} s"
        return ProviderError(
            f"{exc} ({why})",
            status=exc.status,
            retryable=exc.retryable,
            retry_after_s=exc.retry_after_s,
            outage=exc.outage,
        )

    def _timed_out(self, path: str) -> ProviderError:
        """The error of a call whose deadline passed."""
        return self.error(
            path,
            f"timed out: no answer within timeout_s {self.timeout_s:g} s",
            retryable=True,
            outage=(Cause.TIMED_OUT, f"did not answer within timeout_s {self.timeout_s:g} s"),
        )

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, RETRY_AFTER_CAP_S)
        # Full jitter spreads out clients that failed together (AWS Architecture Blog,
        # "Exponential Backoff And Jitter").
        return self._rng.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))

    async def _open(self) -> aiohttp.ClientSession:
        """This event loop's session, made on first use."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._session_loop is loop and not session.closed:
            return session
        import aiohttp

        _allow_sockets(MAX_IN_FLIGHT)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=MAX_IN_FLIGHT,
                limit_per_host=0,
                ssl=self._route.tls if self._route.tls is not None else True,
            ),
            headers=self._headers,
            # The environment was read once, in _route; per request it walks it all again.
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self._session, self._session_loop = session, loop
        # asyncio.run closes the loop's open async generators before it closes the loop: this
        # one closes the session then, so no connection outlives the run that opened it.
        self._closer = _closing(session)
        await anext(self._closer)
        return session

    async def _attempt(self, path: str, payload: bytes, left_s: float) -> dict[str, Any]:
        """One attempt, given ``left_s`` seconds of the call's time."""
        import aiohttp

        if left_s <= 0:
            raise self._timed_out(path)
        session = await self._open()
        connect = min(CONNECT_TIMEOUT_S, left_s)
        route = self._route
        try:
            async with session.post(
                self.base_url + path,
                data=payload,
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
                proxy=route.proxy,
                auth=aiohttp.BasicAuth(*route.login) if route.login else None,
                # Waiting for a free connection of the pool is bounded by the call's deadline
                # alone; connecting itself by CONNECT_TIMEOUT_S.
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=None, sock_connect=connect, sock_read=left_s
                ),
            ) as response:
                content = await self._take_body(path, response)
                answer = Answer(
                    status=response.status,
                    reason=response.reason or "",
                    headers=response.headers,
                    content=content,
                    url=str(response.url),
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise self.error(
                path,
                f"timed out connecting ({connect:.3g} s)",
                retryable=True,
                outage=(Cause.UNREACHABLE, "could not be reached: connecting timed out"),
            ) from self._cause(exc)
        except aiohttp.ServerTimeoutError as exc:
            raise self._timed_out(path) from self._cause(exc)
        except (aiohttp.ClientError, ValueError) as exc:
            failure = wire_failure(exc)
            why = self.short(failure.why)
            if failure.tls:
                detail, retryable = f"failed the TLS handshake ({why})", False
            elif failure.unsent:
                detail, retryable = f"could not be sent ({why})", False
            else:
                detail, retryable = f"failed: {why}", True
            verb = "dropped the call" if failure.dropped else "could not be reached"
            raise self.error(
                path,
                detail,
                retryable=retryable,
                outage=(Cause.UNREACHABLE, f"{verb}: {why}"),
            ) from self._cause(exc)
        return self._read(path, answer)

    async def _take_body(self, path: str, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, failing the call once it is longer than :data:`MAX_REPLY_BYTES`
        rather than holding whatever an endpoint sends."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                mib = MAX_REPLY_BYTES // 2**20
                answered = f"answered with a body longer than {mib} MiB"
                raise self.error(
                    path,
                    f"{answered} (HTTP {response.status}), far more than a model's reply",
                    status=response.status,
                    outage=(Cause.BAD_ANSWER, answered),
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _read(self, path: str, response: Answer) -> dict[str, Any]:
        status = response.status
        if 300 <= status < 400:
            redirect = (
                Cause.BAD_ANSWER,
                f"answered HTTP {status}, a redirect: correct its base_url",
            )
            raise self.error(path, self._redirect(response), status=status, outage=redirect)
        data = read_json(response)
        if 200 <= status < 300:
            if isinstance(data, dict):
                return data
            if isinstance(data, JSONProblem):
                what = unusable_body(response, data)
            else:
                what = f"JSON {type(data).__name__} instead of an object"
            answered = f"returned HTTP {status} with {what}"
            raise self.error(
                path, answered, status=status, outage=(Cause.BAD_ANSWER, self.short(answered))
            )
        retryable = status in RETRYABLE_STATUSES
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        code = f"HTTP {status}" + (f" {self.short(response.reason)}" if response.reason else "")
        detail = f"failed with {code}"
        message = provider_message(data)
        if message:
            detail += f": {self.short(message)}"
        outage = _outage_of(status, code)
        if outage is not None and outage[0] is not Cause.UNAVAILABLE:
            detail += f"; {outage[1].partition(': ')[2]}"
        raise self.error(
            path,
            detail,
            status=status,
            retryable=retryable,
            retry_after_s=retry_after,
            outage=outage,
        )

    def _redirect(self, response: Answer) -> str:
        """Why a redirect answer is an error, naming where it pointed."""
        location = response.headers.get("Location", "")
        try:
            target = urlsplit(urljoin(response.url or self.base_url, location))
            # public_url drops a query or credentials that could carry a key.
            moved = f" to {public_url(target.geturl())}" if location and target.hostname else ""
            if moved and _origin(target.geturl()) != _origin(self.base_url):
                moved += f", another host ({target.hostname})"
        except ValueError:  # a port out of range, a broken IPv6 address
            moved = " to an address that is not valid"
        return (
            f"answered HTTP {response.status}, a redirect{moved or ' without saying where'}; "
            "provider calls do not follow redirects, so that the key is sent to the configured "
            "host only: set the provider's base_url to the address that answers"
        )

    def short(self, text: str) -> str:
        """``text`` scrubbed, on one line and cut to a few hundred characters for a message."""
        # Scrub before cutting, or a key split by the cut would survive in part.
        flat = " ".join(self.scrub(text).split())
        return flat if len(flat) <= _DETAIL_LIMIT else flat[: _DETAIL_LIMIT - 1] + "…"

    def _cause(self, exc: BaseException) -> BaseException | None:
        # A chained exception is printed with --debug; drop it rather than show the key.
        if self._redactor.leaks(_chain_text(exc)):
            return None
        return exc

    @property
    def endpoint(self) -> str:
        """The base URL, credentials left out: safe to store in call keys and traces."""
        return self.scrub(public_url(self.base_url))

    def _shown_url(self, path: str) -> str:
        # Credentials written into base_url (user:password@host) stay out of messages too.
        return public_url(self.base_url + path)


async def _closing(session: aiohttp.ClientSession) -> AsyncIterator[None]:
    """Closes ``session`` when closed itself: by the loop's shutdown, or when collected."""
    try:
        yield
    finally:
        await session.close()


@functools.cache
def _allow_sockets(count: int) -> None:
    """Let this process open ``count`` more files than it needs otherwise: a soft limit of
    1,024 open files, the default of many systems, is reached by 1,000 calls in flight. Raised
    within the hard limit only, which a process may do for itself."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))


def _encode(body: Mapping[str, Any]) -> bytes:
    """``body`` as JSON bytes."""
    try:
        return orjson.dumps(body)
    except TypeError:  # an integer beyond 64 bits, in a user's output schema
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode()


def _route(provider: str, base_url: str, headers: Mapping[str, str]) -> Route:
    """What the environment says about reaching ``base_url`` (see :class:`Route`)."""
    import requests.utils

    proxies = requests.utils.get_environ_proxies(base_url)
    scheme = urlsplit(base_url).scheme
    proxy = proxies.get(scheme) or proxies.get("all") or None
    if proxy is not None and urlsplit(proxy).scheme not in ("http", "https"):
        raise ConfigError(
            f"provider {provider!r}: the proxy for {public_url(base_url)} set in the environment "
            f"({public_url(proxy)}) is not an HTTP proxy, the only kind provider calls can use: "
            "set HTTPS_PROXY (or HTTP_PROXY) to an http:// proxy, or add the host to NO_PROXY"
        )
    tls = None
    if scheme == "https":
        tls = _trust(provider)
    login = None
    if not {"authorization", "x-api-key"} & {name.lower() for name in headers}:
        found = requests.utils.get_netrc_auth(base_url)
        login = (str(found[0]), str(found[1])) if found else None
    return Route(proxy=proxy, tls=tls, login=login)


def _trust(provider: str) -> ssl.SSLContext:
    """The certificates a TLS endpoint is checked against."""
    variable = next(
        (
            name
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
            if os.environ.get(name)
        ),
        None,
    )
    if variable is None:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    bundle = os.environ[variable]
    try:
        if os.path.isdir(bundle):
            return ssl.create_default_context(capath=bundle)
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"provider {provider!r}: the CA bundle {bundle!r} named by {variable} cannot be "
            f"used ({exc.strerror or exc}): point {variable} at a PEM file of certificates, or "
            "unset it"
        ) from None


def _outage_of(status: int, code: str) -> tuple[Cause, str] | None:
    """The provider failure an HTTP error status is (``code``: ``HTTP 401 Unauthorized``), or
    None for a request the provider refused for what it asked (400, 413, 422...)."""
    if status in (401, 403):
        check = "check the API key in the environment variable named by api_key_env"
        return Cause.AUTHENTICATION, f"refused the credentials ({code}): {check}"
    if status == 404:
        return Cause.NOT_FOUND, f"answered {code}: check the provider's base_url and the model name"
    if status in RETRYABLE_STATUSES or status >= 500:
        return Cause.UNAVAILABLE, f"was unavailable: {code}"
    return None


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port of ``url``, the port spelled out when it is the default one."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _chain_text(exc: BaseException | None) -> str:
    seen: list[str] = []
    while exc is not None and len(seen) < 16:
        seen.append(f"{exc!r} {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(seen)
