"""What a replay reads from an imported trace, checked when the trace is imported: the run's
workflow document, configuration, provider map and tests, and the answers of its events (a
reply, a request, a spend, an argv). Of the wrong shape, each would otherwise be found only
by the replay (or ``runs``), as an internal error (issue 11)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from runner.compiler.build import build_workflow
from runner.compiler.schema import schema_diagnostics
from runner.compiler.source import Document
from runner.config import from_data
from runner.errors import RunnerError, UsageError
from runner.executor.results import Spend

_SPEND = frozenset(field.name for field in fields(Spend))
_USAGE = {
    "prompt_tokens": int,
    "completion_tokens": int,
    "cached_prompt_tokens": int,
    "cost_usd": float,
    "estimated": bool,
}
_REQUEST = ("model", "messages", "temperature", "max_tokens", "json_mode", "sample")
_KEY_FIELDS = ("provider", "endpoint", "output_schema")


def check_run(run: dict[str, Any], where: str) -> None:
    """Refuse, naming ``where`` (the header line), a run a replay could not rebuild."""
    document = run["document"]
    problems = schema_diagnostics(Document(path=where, data=document, language="json"))
    if problems:
        first = problems[0]
        at = f" (at {first.pointer})" if first.pointer else ""
        raise UsageError(
            f"{where}: the run's workflow document is not a valid workflow: "
            f"{first.message}{at}; export the run again"
        )
    try:
        build_workflow(document)
        from_data(run["config"])
    except (RunnerError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{where}: the run's workflow or configuration cannot be rebuilt ({exc}); "
            "export the run again"
        ) from exc
    providers = run["providers"].get("providers", {})
    if not isinstance(providers, dict) or not all(
        isinstance(spec, dict) and isinstance(spec.get("endpoint"), str | None)
        for spec in providers.values()
    ):
        raise UsageError(f"{where}: the run's providers are not objects with an endpoint")
    tests = run["tests"] or []
    if not all(
        isinstance(test, dict)
        and isinstance(test.get("name"), str)
        and isinstance(test.get("passed"), bool)
        for test in tests
    ):
        raise UsageError(f"{where}: the run's tests are not objects with a name and passed")


def check(kind: str, data: dict[str, Any], where: str) -> None:
    """Refuse, naming ``where``, an event whose answer a replay could not read."""
    if "spend" in data:
        _spend(data["spend"], f"{where}: the {kind} event's spend")
    if kind == "model_call":
        _reply(data["reply"], f"{where}: the model_call event's reply")
        _request(data["request"], f"{where}: the model_call event's request")
    elif kind == "command" and not all(isinstance(item, str) for item in data["argv"]):
        raise UsageError(f"{where}: the command event's argv holds an item that is not a string")


def _spend(spend: dict[str, Any], where: str) -> None:
    for name, value in spend.items():
        if name not in _SPEND:
            raise UsageError(f"{where} has an unknown field {name!r}")
        if not _number(value, int if name not in ("cost_usd", "saved_usd") else float):
            raise UsageError(f"{where}: {name!r} is not a number")


def _reply(reply: dict[str, Any], where: str) -> None:
    if not isinstance(reply.get("text"), str):
        raise UsageError(f"{where} has no text (a string)")
    for name in ("model", "finish_reason"):
        if reply.get(name) is not None and not isinstance(reply[name], str):
            raise UsageError(f"{where}: {name!r} is not a string or null")
    usage = reply.get("usage")
    if not isinstance(usage, dict):
        raise UsageError(f"{where} has no usage (an object)")
    for name, value in usage.items():
        wanted = _USAGE.get(name)
        if wanted is None:
            raise UsageError(f"{where}: the usage has an unknown field {name!r}")
        if not (isinstance(value, bool) if wanted is bool else _number(value, wanted)):
            raise UsageError(f"{where}: the usage's {name!r} is not of its type")


def _request(request: dict[str, Any], where: str) -> None:
    fields_ = request.get("key_fields")
    if fields_ is None:
        return  # a call without a key: nothing of the request is read
    if not isinstance(fields_, dict) or any(name not in fields_ for name in _KEY_FIELDS):
        raise UsageError(f"{where}: key_fields is not an object of {', '.join(_KEY_FIELDS)}")
    missing = [name for name in _REQUEST if name not in request]
    if missing:
        raise UsageError(f"{where} has no {missing[0]!r} field")
    messages = request["messages"]
    if not isinstance(messages, list) or not all(
        isinstance(m, list) and len(m) == 2 and all(isinstance(part, str) for part in m)
        for m in messages
    ):
        raise UsageError(f"{where}: messages is not a list of [role, text] pairs")


def _number(value: Any, wanted: type) -> bool:
    # True is an int to Python, not a count here; an integral float is no count of tokens.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (wanted is float and isinstance(value, float))
