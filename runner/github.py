"""The report as one pull-request comment, created once and then edited in place.

In GitHub Actions the comment goes to the pull request named in the event file at
``$GITHUB_EVENT_PATH`` (a ``pull_request`` or ``pull_request_target`` event, or an
``issue_comment`` event on a pull request), in the repository ``$GITHUB_REPOSITORY``, through the
REST API at ``$GITHUB_API_URL`` (``https://api.github.com`` when unset, so GitHub Enterprise
Server works too). The token comes from ``$GITHUB_TOKEN``, or ``$GH_TOKEN`` when that is unset;
it needs the ``pull-requests: write`` permission.

The comment is found again by :data:`MARKER`, a hidden HTML comment at the very start of its
body. When several comments start with it, the oldest one (the first GitHub lists) is edited and
the others are left alone, so the report keeps its place in the conversation and the listing can
stop at the first match.

A comment is a courtesy, never a reason to fail a CI job: everything that can go wrong outside
this code (no pull request, no token, a read-only token as on pull requests from forks, GitHub
unreachable, failing, slow or answering something that is not its API) ends as a skipped
:class:`CommentResult` with a one-sentence warning, in which the token never appears. Each
request waits at most :data:`TIMEOUT_S` seconds (``$BRANCHLEAF_GITHUB_TIMEOUT_S`` when set) to
connect and as long for each read of the answer; a request that timed out is not tried again.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self, cast

import github
import requests
from github.Issue import Issue
from github.IssueComment import IssueComment
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Retry

from runner.jsontext import JSONProblem, parse_json
from runner.plural import plural
from runner.secrets import Redactor

MARKER = "<!-- branchleaf-report -->"
COMMENT_LIMIT = 65536
"""The most characters GitHub accepts in the body of one comment."""
DEFAULT_API_URL = "https://api.github.com"
TIMEOUT_S = 30
TIMEOUT_ENV = "BRANCHLEAF_GITHUB_TIMEOUT_S"
"""The variable that sets another time-out, in seconds (a test's silent server, a slow proxy)."""
_TRUNCATED_NOTE = (
    "\n\n---\n\n_This report was cut short to fit GitHub's limit of "
    f"{COMMENT_LIMIT:,} characters per comment; the full report is in the job summary._\n"
)
_IN_SUMMARY = "the report is in the job summary"


class _Retry(Retry):
    """urllib3's retries, except that a time-out is final: a GitHub that does not answer within
    the time-out is not waited for three times over (issue 11: 93 s, then "the connection
    failed")."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        """The next state, or MaxRetryError at once for a time-out."""
        if isinstance(error, Urllib3Timeout):
            # MaxRetryError only keeps the pool, which urllib3 passes whenever it retries.
            raise MaxRetryError(cast("ConnectionPool", _pool), url or "", error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


# Reads are retried twice on a server error or a dropped connection, with at most a few seconds
# of waiting; writes are not retried, since a POST that failed late may have created a comment.
_RETRY = _Retry(
    total=2,
    backoff_factor=1.0,
    status_forcelist=(500, 502, 503, 504),
    allowed_methods=frozenset({"GET"}),
    # A Retry-After header could ask for minutes; a report comment is not worth the wait.
    respect_retry_after_header=False,
    # Hand the last error response to PyGithub, which turns it into a GithubException with
    # the status, instead of a bare "too many retries" from requests.
    raise_on_status=False,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommentResult:
    """What :func:`post_report` did."""

    action: Literal["created", "updated", "skipped"]
    """Whether a new comment was created, the marked one edited, or nothing was written."""
    url: str | None
    """The comment's address on github.com (or the Enterprise host), unless skipped."""
    warning: str | None
    """Why nothing was written, in one sentence, when skipped."""


class _Skip(Exception):
    """Nothing can be written; the message says why."""


def post_report(markdown: str, env: Mapping[str, str] | None = None) -> CommentResult:
    """Create the report comment on the pull request, or edit the one carrying the marker."""
    env = os.environ if env is None else env
    try:
        return _post(markdown, env)
    except _Skip as skip:
        # GitHub's error texts may quote what they were sent, the token among it.
        tokens = Redactor.from_environment(("GITHUB_TOKEN", "GH_TOKEN"), env)
        return CommentResult(action="skipped", url=None, warning=tokens.redact(str(skip)))


def comment_body(markdown: str) -> str:
    """The marker and the markdown, cut short with a visible note when over GitHub's limit."""
    body = f"{MARKER}\n{markdown}"
    if len(body) <= COMMENT_LIMIT:
        return body
    room = COMMENT_LIMIT - len(MARKER) - 1 - len(_TRUNCATED_NOTE)
    while True:
        head = markdown[:room]
        # End on a whole line, so no table row, link or word is cut in half.
        newline = head.rfind("\n")
        if newline > 0:
            head = head[:newline]
        fence = _open_fence(head)
        if fence is not None:
            # Close a code block (the Mermaid graph, say) so the note renders as text.
            head = f"{head}\n{fence}"
        body = f"{MARKER}\n{head}{_TRUNCATED_NOTE}"
        if len(body) <= COMMENT_LIMIT:
            return body
        room -= len(body) - COMMENT_LIMIT


def _open_fence(markdown: str) -> str | None:
    """The fence of a code block left open at the end of ``markdown``, if any."""
    fence: str | None = None
    for line in markdown.split("\n"):
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) > 3 or stripped[:3] not in ("```", "~~~"):
            continue
        run = len(stripped) - len(stripped.lstrip(stripped[0]))
        if fence is None:
            fence = stripped[:run]
        elif stripped.rstrip() == stripped[:run] and stripped[0] == fence[0] and run >= len(fence):
            fence = None
    return fence


def _post(markdown: str, env: Mapping[str, str]) -> CommentResult:
    """Do the work of :func:`post_report`, raising :class:`_Skip` when nothing can be written."""
    number = _pull_request_number(env)
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    if not repository:
        raise _Skip(
            f"cannot comment on pull request #{number}: GITHUB_REPOSITORY is not set; "
            "set it to the repository as owner/name"
        )
    owner, _, name = repository.partition("/")
    if not owner or not name or "/" in name:
        raise _Skip(
            f"cannot comment on pull request #{number}: GITHUB_REPOSITORY is "
            f"{repository!r}, not a repository as owner/name"
        )
    where = f"cannot comment on pull request #{number} of {repository}"
    token = env.get("GITHUB_TOKEN", "").strip() or env.get("GH_TOKEN", "").strip()
    if not token:
        raise _Skip(
            f"{where}: no token; set the environment variable GITHUB_TOKEN "
            "(for example to ${{ github.token }}, with the permission pull-requests: write)"
        )
    api_url = _api_url(env, where)

    timeout = _timeout(env, where)
    client = github.Github(
        base_url=api_url,
        auth=github.Auth.Token(token),
        timeout=timeout,
        retry=_RETRY,
        per_page=100,
        # Lazy objects skip the GET of the repository and of the issue: the comment listing
        # is the first request, and a token that cannot see the pull request fails there.
        lazy=True,
        # The throttles guard against secondary rate limits in long scripts; this module
        # writes once, and they would add seconds to every CI job.
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    body = comment_body(markdown)
    try:
        issue = client.get_repo(repository).get_issue(number)
        existing = _marked_comment(issue)
        if existing is None:
            created = issue.create_comment(body)
            return CommentResult(action="created", url=created.html_url, warning=None)
        existing.edit(body)
        return CommentResult(action="updated", url=existing.html_url, warning=None)
    except github.IncompletableObject as exc:
        raise _Skip(f"{where}: {_not_the_api(api_url)}; {_IN_SUMMARY}") from exc
    except github.GithubException as exc:
        raise _Skip(f"{where}: {_http_failure(exc)}; {_IN_SUMMARY}") from exc
    except requests.RequestException as exc:
        raise _Skip(
            f"{where}: cannot reach GitHub at {api_url} "
            f"({_network_failure(exc, timeout)}); {_IN_SUMMARY}"
        ) from exc
    except RecursionError as exc:
        # PyGithub reads answers with the standard reader, which gives up past about a
        # thousand levels of nesting; no answer of the API nests that deep.
        raise _Skip(
            f"{where}: {api_url} answered with JSON nested too deep to read, which GitHub's "
            f"REST API does not send; check that GITHUB_API_URL is the API's address; "
            f"{_IN_SUMMARY}"
        ) from exc
    except RuntimeError as exc:
        # PyGithub's words for a redirect to another host or scheme, which it does not follow.
        raise _Skip(
            f"{where}: GitHub at {api_url} redirected to another host or scheme, where the "
            f"token is not sent; set GITHUB_API_URL to the API's own address; {_IN_SUMMARY}"
        ) from exc
    except (ValueError, TypeError, KeyError, AttributeError, github.BadAttributeException) as exc:
        # PyGithub reads answers without checking their shape: an HTML page from a proxy or a
        # login portal, or JSON of another shape, fails inside it with one of these.
        raise _Skip(f"{where}: {_not_the_api(api_url)}; {_IN_SUMMARY}") from exc
    finally:
        client.close()


def _api_url(env: Mapping[str, str], where: str) -> str:
    """The API's base URL from ``$GITHUB_API_URL``, or :data:`DEFAULT_API_URL` when unset."""
    api_url = (env.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/")
    fix = f"set it to the API's address, or unset it for {DEFAULT_API_URL}"
    try:
        parsed = urllib.parse.urlsplit(api_url)
        # Reading the port checks its range, which urlsplit leaves to whoever connects.
        parsed.port  # noqa: B018
    except ValueError as exc:  # "Port out of range 0-65535", "Invalid IPv6 URL"
        reason = str(exc).rstrip(".")
        raise _Skip(
            f"{where}: GITHUB_API_URL is {api_url!r}, not a valid address "
            f"({reason[:1].lower() + reason[1:]}); {fix}"
        ) from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _Skip(f"{where}: GITHUB_API_URL is {api_url!r}, not an http(s) address; {fix}")
    return api_url


def _timeout(env: Mapping[str, str], where: str) -> int:
    """Seconds each request may wait: :data:`TIMEOUT_S`, or the value of :data:`TIMEOUT_ENV`."""
    text = env.get(TIMEOUT_ENV, "").strip()
    if not text:
        return TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise _Skip(
            f"{where}: {TIMEOUT_ENV} is {text!r}, not a number of seconds above 0; "
            f"unset it for the default of {TIMEOUT_S} seconds"
        )
    # PyGithub takes whole seconds.
    return max(1, math.ceil(seconds))


def _not_the_api(api_url: str) -> str:
    """Why an answer that is not GitHub's REST API fails the comment, as a clause."""
    return (
        f"{api_url} answered with something GitHub's REST API does not send (an HTML page, "
        "or JSON of another shape); check that GITHUB_API_URL is the API's address"
    )


def _pull_request_number(env: Mapping[str, str]) -> int:
    """The number of the pull request the event file is about."""
    path = env.get("GITHUB_EVENT_PATH", "").strip()
    if not path:
        raise _Skip(
            "no pull-request comment: GITHUB_EVENT_PATH is not set, "
            "so this run has no pull request to comment on"
        )
    try:
        with open(path, "rb") as file:
            # An event file is GitHub's JSON, read like every JSON from outside: strictly and
            # with bounded nesting, so a damaged one cannot exhaust the stack.
            event = parse_json(file.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, JSONProblem) as exc:
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
        elif isinstance(exc, UnicodeDecodeError):
            reason = "it is not UTF-8 text"
        else:
            at = f" at line {exc.line}, column {exc.col}" if exc.line is not None else ""
            reason = f"{exc.message}{at}"
        raise _Skip(
            f"no pull-request comment: cannot read the event file {path} "
            f"named by GITHUB_EVENT_PATH ({reason})"
        ) from exc
    number = _number_in(event)
    if number is None:
        event_name = env.get("GITHUB_EVENT_NAME", "").strip()
        which = f"the {event_name} event" if event_name else f"the event in {path}"
        raise _Skip(f"no pull-request comment: {which} is not about a pull request")
    return number


def _number_in(event: object) -> int | None:
    """The pull request number in an event payload, if the event is about a pull request."""
    if not isinstance(event, dict):
        return None
    pull_request = event.get("pull_request")
    if isinstance(pull_request, dict):
        return _positive_int(pull_request.get("number"))
    issue = event.get("issue")
    # An issue_comment event fires for issues and pull requests alike; only a pull request's
    # issue carries the "pull_request" key.
    if isinstance(issue, dict) and issue.get("pull_request") is not None:
        return _positive_int(issue.get("number"))
    return None


def _positive_int(value: object) -> int | None:
    """``value`` if it is a positive integer (and not a boolean)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _marked_comment(issue: Issue) -> IssueComment | None:
    """The oldest comment whose body starts with the marker, reading no further pages."""
    for comment in issue.get_comments():
        if (comment.body or "").startswith(MARKER):
            return comment
    return None


def _http_failure(exc: github.GithubException) -> str:
    """What an error answer from GitHub means for the comment, as a clause."""
    status = exc.status
    if isinstance(exc, github.RateLimitExceededException):
        return f"GitHub's API rate limit for the token is used up (HTTP {status})"
    if status == 401:
        return "GitHub rejected the token (HTTP 401); check GITHUB_TOKEN"
    if status == 403:
        return "the token may only read (HTTP 403), as for pull requests from forks"
    if status == 404:
        return "the token cannot see the repository or the pull request (HTTP 404)"
    if status >= 500:
        return f"GitHub failed with HTTP {status}, also when asked again"
    detail = exc.data.get("message") if isinstance(exc.data, dict) else None
    if isinstance(detail, str) and detail:
        return f"GitHub refused the request (HTTP {status}: {detail[:200]})"
    return f"GitHub refused the request (HTTP {status})"


def _network_failure(exc: requests.RequestException, timeout: int) -> str:
    """Why GitHub could not be reached, in a few words."""
    if isinstance(exc, requests.Timeout) or _timed_out(exc):
        return f"it timed out: no answer within {plural(timeout, 'second')}"
    from runner.providers.failures import connection_failure

    return connection_failure(exc)


def _timed_out(exc: BaseException) -> bool:
    """Whether a time-out lies under ``exc`` (requests wraps urllib3's in a ConnectionError)."""
    here: object = exc
    for _ in range(8):
        if isinstance(here, Urllib3Timeout | TimeoutError):
            return True
        if isinstance(here, MaxRetryError):
            here = here.reason
        elif isinstance(here, BaseException) and here.args:
            here = here.args[0]
        else:
            return False
    return False
