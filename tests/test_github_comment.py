"""The pull-request comment against recorded GitHub REST API answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from runner.github import COMMENT_LIMIT, MARKER, CommentResult, comment_body, post_report

REPOSITORY = "octo-org/widgets"
NUMBER = 7
TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
API_URL = "https://github.example.test/api/v3"
# PyGithub spells out the default port in the URLs it requests.
SERVED = "https://github.example.test:443/api/v3"
COMMENTS = f"{SERVED}/repos/{REPOSITORY}/issues/{NUMBER}/comments"
WEB = f"https://github.example.test/{REPOSITORY}/pull/{NUMBER}"
REPORT = "## Branchleaf\n\n**passed**: 3/3 tests, 12 nodes, 4,210 tokens, $0.02\n"

USER = {
    "login": "octocat",
    "id": 1,
    "node_id": "MDQ6VXNlcjE=",
    "avatar_url": "https://github.example.test/avatars/u/1",
    "url": f"{API_URL}/users/octocat",
    "html_url": "https://github.example.test/octocat",
    "type": "User",
    "site_admin": False,
}
BOT = {
    "login": "github-actions[bot]",
    "id": 41898282,
    "node_id": "MDM6Qm90NDE4OTgyODI=",
    "avatar_url": "https://github.example.test/avatars/in/15368",
    "url": f"{API_URL}/users/github-actions%5Bbot%5D",
    "html_url": "https://github.example.test/apps/github-actions",
    "type": "Bot",
    "site_admin": False,
}


def comment_json(comment_id: int, body: str, *, user: dict[str, Any] = BOT) -> dict[str, Any]:
    """An issue comment as GitHub's REST API returns it."""
    return {
        "id": comment_id,
        "node_id": f"IC_kwDOABCD{comment_id}",
        "url": f"{API_URL}/repos/{REPOSITORY}/issues/comments/{comment_id}",
        "html_url": f"{WEB}#issuecomment-{comment_id}",
        "body": body,
        "user": user,
        "created_at": "2025-03-01T10:00:00Z",
        "updated_at": "2025-03-01T10:00:00Z",
        "issue_url": f"{API_URL}/repos/{REPOSITORY}/issues/{NUMBER}",
        "author_association": "NONE" if user["type"] == "Bot" else "MEMBER",
    }


def error_json(status: int, message: str) -> dict[str, Any]:
    """An error answer as GitHub's REST API returns it."""
    return {
        "message": message,
        "documentation_url": "https://docs.github.com/rest/issues/comments",
        "status": str(status),
    }


def write_event(tmp_path: Path, payload: dict[str, Any]) -> Path:
    """The event file GitHub Actions would write for ``payload``."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def pull_request_event(number: int = NUMBER) -> dict[str, Any]:
    """A trimmed ``pull_request`` event payload."""
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "url": f"{API_URL}/repos/{REPOSITORY}/pulls/{number}",
            "state": "open",
            "head": {"ref": "feature", "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"},
        },
        "repository": {"full_name": REPOSITORY},
    }


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a pull-request job on a GitHub Enterprise Server."""
    return {
        "GITHUB_API_URL": API_URL,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(write_event(tmp_path, pull_request_event())),
        "GITHUB_TOKEN": TOKEN,
    }


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    """GitHub's REST API, refusing any request not registered and requiring every one made."""
    with responses.RequestsMock() as mock:
        yield mock


def sent(call: Any) -> tuple[str, str, Any]:
    """Method, URL without query and JSON body of a recorded request."""
    body = json.loads(call.request.body) if call.request.body else None
    return call.request.method, call.request.url.split("?")[0], body


def test_first_run_creates_one_comment(env: dict[str, str], api: responses.RequestsMock) -> None:
    others = [comment_json(11, "Looks good to me.", user=USER)]
    api.get(COMMENTS, json=others)
    api.post(COMMENTS, json=comment_json(12, f"{MARKER}\n{REPORT}"), status=201)

    result = post_report(REPORT, env)

    assert result == CommentResult(action="created", url=f"{WEB}#issuecomment-12", warning=None)
    assert [sent(call) for call in api.calls] == [
        ("GET", COMMENTS, None),
        ("POST", COMMENTS, {"body": f"{MARKER}\n{REPORT}"}),
    ]
    assert api.calls[0].request.headers["Authorization"] == f"token {TOKEN}"


def test_second_run_edits_the_marked_comment_in_place(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    listed = [
        comment_json(11, "Looks good to me.", user=USER),
        comment_json(12, f"{MARKER}\n## Branchleaf\n\n**failed**: 2/3 tests\n"),
        comment_json(13, f"> {MARKER}\n> quoted by a reviewer", user=USER),
    ]
    api.get(COMMENTS, json=listed)
    patch_url = f"{SERVED}/repos/{REPOSITORY}/issues/comments/12"
    api.patch(patch_url, json=comment_json(12, f"{MARKER}\n{REPORT}"))

    result = post_report(REPORT, env)

    assert result == CommentResult(action="updated", url=f"{WEB}#issuecomment-12", warning=None)
    assert [sent(call) for call in api.calls] == [
        ("GET", COMMENTS, None),
        ("PATCH", patch_url, {"body": f"{MARKER}\n{REPORT}"}),
    ]


def test_the_oldest_of_several_marked_comments_is_edited(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    listed = [comment_json(21, f"{MARKER}\nold"), comment_json(22, f"{MARKER}\nnewer")]
    api.get(COMMENTS, json=listed)
    api.patch(
        f"{SERVED}/repos/{REPOSITORY}/issues/comments/21",
        json=comment_json(21, f"{MARKER}\n{REPORT}"),
    )

    assert post_report(REPORT, env).action == "updated"
    assert [call.request.method for call in api.calls] == ["GET", "PATCH"]


def test_a_marked_comment_on_the_second_page_is_found(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    # GitHub's Link header names the repository by id; page 3 is never fetched, since the
    # marked comment is on page 2 (an unregistered request would fail the run).
    pages = f"https://github.example.test/api/v3/repositories/4242/issues/{NUMBER}/comments"
    link = f'<{pages}?per_page=100&page=2>; rel="next", <{pages}?per_page=100&page=3>; rel="last"'
    first_page = [comment_json(100 + i, f"comment {i}", user=USER) for i in range(100)]
    second_page = [comment_json(200, "thanks", user=USER), comment_json(201, f"{MARKER}\nold")]
    api.get(
        COMMENTS,
        json=first_page,
        headers={"Link": link},
        match=[matchers.query_param_matcher({"per_page": "100"})],
    )
    api.get(
        f"{SERVED}/repositories/4242/issues/{NUMBER}/comments",
        json=second_page,
        headers={"Link": link.replace("page=2>", "page=3>")},
        match=[matchers.query_param_matcher({"per_page": "100", "page": "2"})],
    )
    patch_url = f"{SERVED}/repos/{REPOSITORY}/issues/comments/201"
    api.patch(patch_url, json=comment_json(201, f"{MARKER}\n{REPORT}"))

    result = post_report(REPORT, env)

    assert result.action == "updated"
    assert result.url == f"{WEB}#issuecomment-201"
    assert [call.request.method for call in api.calls] == ["GET", "GET", "PATCH"]


def test_a_read_only_token_is_a_warning(env: dict[str, str], api: responses.RequestsMock) -> None:
    api.get(COMMENTS, json=[])
    api.post(COMMENTS, json=error_json(403, "Resource not accessible by integration"), status=403)

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.url is None
    assert result.warning == (
        f"cannot comment on pull request #{NUMBER} of {REPOSITORY}: the token may only read "
        "(HTTP 403), as for pull requests from forks; the report is in the job summary"
    )
    assert TOKEN not in result.warning


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (404, "Not Found", "the token cannot see the repository or the pull request (HTTP 404)"),
        (401, "Bad credentials", "GitHub rejected the token (HTTP 401)"),
        (422, "Validation Failed", "GitHub refused the request (HTTP 422: Validation Failed)"),
        (
            403,
            "API rate limit exceeded for installation ID 1.",
            "GitHub's API rate limit for the token is used up (HTTP 403)",
        ),
    ],
)
def test_other_refusals_are_warnings(
    env: dict[str, str], api: responses.RequestsMock, status: int, message: str, expected: str
) -> None:
    api.get(COMMENTS, json=error_json(status, message), status=status)

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.warning is not None
    assert result.warning.startswith(f"cannot comment on pull request #{NUMBER} of {REPOSITORY}")
    assert expected in result.warning


def test_a_server_error_is_retried_briefly_then_a_warning(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    api.get(COMMENTS, json={"message": "Server Error"}, status=502)

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.warning is not None
    assert "HTTP 502" in result.warning
    assert len(api.calls) == 3


def test_a_failed_write_is_not_repeated(env: dict[str, str], api: responses.RequestsMock) -> None:
    # A POST that failed late may still have created the comment; sending it again could
    # leave two.
    api.get(COMMENTS, json=[])
    api.post(COMMENTS, json={"message": "Server Error"}, status=502)

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert [call.request.method for call in api.calls] == ["GET", "POST"]


def test_an_unreachable_github_is_a_warning(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    api.get(COMMENTS, body=requests.ConnectionError("Name or service not known"))

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.warning == (
        f"cannot comment on pull request #{NUMBER} of {REPOSITORY}: cannot reach GitHub at "
        f"{API_URL} (the connection failed); the report is in the job summary"
    )


def test_a_push_event_is_skipped_without_a_request(
    env: dict[str, str], api: responses.RequestsMock, tmp_path: Path
) -> None:
    push = {"ref": "refs/heads/main", "before": "0" * 40, "after": "6dcb09b5" * 5}
    env["GITHUB_EVENT_NAME"] = "push"
    env["GITHUB_EVENT_PATH"] = str(write_event(tmp_path, push))

    result = post_report(REPORT, env)

    assert result == CommentResult(
        action="skipped",
        url=None,
        warning="no pull-request comment: the push event is not about a pull request",
    )
    assert len(api.calls) == 0


def test_without_an_event_file_nothing_is_sent(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    del env["GITHUB_EVENT_PATH"]

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.warning is not None
    assert "GITHUB_EVENT_PATH is not set" in result.warning
    assert len(api.calls) == 0


def test_an_unreadable_event_file_is_a_warning(
    env: dict[str, str], api: responses.RequestsMock, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    env["GITHUB_EVENT_PATH"] = str(broken)

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.warning is not None
    assert f"cannot read the event file {broken}" in result.warning
    assert len(api.calls) == 0


def test_without_a_token_the_variable_to_set_is_named(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    del env["GITHUB_TOKEN"]

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.warning is not None
    assert result.warning.startswith(
        f"cannot comment on pull request #{NUMBER} of {REPOSITORY}: no token; "
        "set the environment variable GITHUB_TOKEN"
    )
    assert len(api.calls) == 0


def test_gh_token_is_the_fallback(env: dict[str, str], api: responses.RequestsMock) -> None:
    del env["GITHUB_TOKEN"]
    env["GH_TOKEN"] = "ghp_fallback"
    api.get(COMMENTS, json=[])
    api.post(COMMENTS, json=comment_json(12, f"{MARKER}\n{REPORT}"), status=201)

    assert post_report(REPORT, env).action == "created"
    assert api.calls[0].request.headers["Authorization"] == "token ghp_fallback"


def test_without_a_repository_it_is_a_warning(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    del env["GITHUB_REPOSITORY"]

    result = post_report(REPORT, env)

    assert result.action == "skipped"
    assert result.warning == (
        f"cannot comment on pull request #{NUMBER}: GITHUB_REPOSITORY is not set; "
        "set it to the repository as owner/name"
    )
    assert len(api.calls) == 0


def test_a_comment_on_a_pull_request_names_it_by_its_issue(
    env: dict[str, str], api: responses.RequestsMock, tmp_path: Path
) -> None:
    event = {
        "action": "created",
        "issue": {
            "number": 9,
            "pull_request": {"url": f"{API_URL}/repos/{REPOSITORY}/pulls/9"},
        },
        "comment": comment_json(5, "/branchleaf run", user=USER),
    }
    env["GITHUB_EVENT_NAME"] = "issue_comment"
    env["GITHUB_EVENT_PATH"] = str(write_event(tmp_path, event))
    comments_9 = f"{SERVED}/repos/{REPOSITORY}/issues/9/comments"
    api.get(comments_9, json=[])
    api.post(comments_9, json=comment_json(12, f"{MARKER}\n{REPORT}"), status=201)

    assert post_report(REPORT, env).action == "created"


def test_a_comment_on_a_plain_issue_is_skipped(
    env: dict[str, str], api: responses.RequestsMock, tmp_path: Path
) -> None:
    event = {"action": "created", "issue": {"number": 9}, "comment": {"body": "hello"}}
    env["GITHUB_EVENT_NAME"] = "issue_comment"
    env["GITHUB_EVENT_PATH"] = str(write_event(tmp_path, event))

    result = post_report(REPORT, env)

    assert (
        result.warning
        == "no pull-request comment: the issue_comment event is not about a pull request"
    )
    assert len(api.calls) == 0


def test_the_public_api_is_the_default(env: dict[str, str], api: responses.RequestsMock) -> None:
    del env["GITHUB_API_URL"]
    comments = f"https://api.github.com:443/repos/{REPOSITORY}/issues/{NUMBER}/comments"
    api.get(comments, json=[])
    api.post(comments, json=comment_json(12, f"{MARKER}\n{REPORT}"), status=201)

    assert post_report(REPORT, env).action == "created"


def test_an_oversized_report_is_cut_short_with_a_note(
    env: dict[str, str], api: responses.RequestsMock
) -> None:
    rows = "".join(f"| node_{i:05d} | passed | 1.2 s |\n" for i in range(3000))
    markdown = f"{REPORT}\n| node | status | time |\n|---|---|---|\n{rows}"
    assert len(markdown) > COMMENT_LIMIT
    api.get(COMMENTS, json=[])
    api.post(COMMENTS, json=comment_json(12, "stored"), status=201)

    assert post_report(markdown, env).action == "created"

    body = sent(api.calls[1])[2]["body"]
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(f"{MARKER}\n{REPORT}")
    kept, note = body.split("\n\n---\n\n")
    assert kept.endswith("| passed | 1.2 s |")
    assert "cut short to fit GitHub's limit of 65,536 characters" in note


def test_a_report_at_the_limit_is_kept_whole() -> None:
    markdown = "x" * (COMMENT_LIMIT - len(MARKER) - 1)

    assert comment_body(markdown) == f"{MARKER}\n{markdown}"
    assert "cut short" in comment_body(markdown + "x")


def test_a_cut_inside_a_code_block_closes_it() -> None:
    graph = "".join(f"  n{i} --> n{i + 1}\n" for i in range(8000))
    markdown = f"{REPORT}\n````mermaid\ngraph TD\n{graph}````\n"

    body = comment_body(markdown)

    assert len(body) <= COMMENT_LIMIT
    kept = body.split("\n\n---\n\n")[0]
    assert kept.endswith("\n````")
    assert kept.count("````") == 2
