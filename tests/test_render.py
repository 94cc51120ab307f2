"""Run-time rendering: templates, expressions, replies against output schemas, typed inputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.compiler.build import build_workflow
from runner.errors import UsageError
from runner.expressions import environment
from runner.render import (
    OutputError,
    RenderError,
    Scope,
    evaluate,
    parse_reply,
    render,
    resolve_inputs,
    unmet,
)

SCOPE = Scope(
    inputs={"files": ["a.py", "b.py"]},
    outputs={"review": [{"ok": True}, {"ok": False}]},
    env={"CI": "true"},
    variables={"file": "a.py"},
)


def test_render_sees_inputs_outputs_env_and_variables() -> None:
    text = render("{{ file }} of {{ inputs.files | length }}; ci={{ env.CI }}", SCOPE)
    assert text == "a.py of 2; ci=true"


def test_evaluate_the_spec_example() -> None:
    assert evaluate("outputs.review | selectattr('ok') | list | length", SCOPE) == 1


@pytest.mark.parametrize(
    "source",
    ["{{ missing }}", "{{ outputs.nope.deeper }}", "{{ ''.__class__ }}", "{{ 1 / 0 }}"],
)
def test_render_failures_are_render_errors(source: str) -> None:
    with pytest.raises(RenderError):
        render(source, SCOPE)


def test_sandbox_blocks_python_internals_in_expressions() -> None:
    with pytest.raises(RenderError, match=r"SecurityError|UndefinedError"):
        evaluate("inputs.__class__.__mro__", SCOPE)


def test_with_variables_adds_without_changing_the_original() -> None:
    inner = SCOPE.with_variables(iteration=2)
    assert evaluate("iteration + 1", inner) == 3
    with pytest.raises(RenderError):
        evaluate("iteration", SCOPE)


SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


@pytest.mark.parametrize(
    "text", ['{"ok": true}', '```json\n{"ok": true}\n```', '```\n{"ok": true}```']
)
def test_parse_reply_with_one_repair_pass(text: str) -> None:
    assert parse_reply(text, SCHEMA) == {"ok": True}


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("ok!", "not JSON"),
        ('{"ok": "yes"}', "at /ok: 'yes' is not of type 'boolean'"),
        ("```json\n{}\n```", "'ok' is a required property"),
    ],
)
def test_parse_reply_failures_name_the_schema_error(text: str, phrase: str) -> None:
    with pytest.raises(OutputError, match=phrase.replace("/", ".")):
        parse_reply(text, SCHEMA)


WORKFLOW = build_workflow(
    {
        "version": 1,
        "name": "w",
        "inputs": {
            "files": {"type": "array", "default": ["x"]},
            "rounds": {"type": "integer"},
            "title": {"type": "string", "default": "t"},
            "strict": {"type": "boolean", "default": False},
        },
        "steps": {"kind": "leaf", "id": "a", "role": "r", "prompt": "p"},
    }
)


def test_inputs_are_typed_and_defaulted() -> None:
    values = resolve_inputs(WORKFLOW, {"rounds": "3", "title": "42"})
    assert values == {"files": ["x"], "rounds": 3, "title": "42", "strict": False}


@pytest.mark.parametrize(
    ("given", "phrase"),
    [
        ({}, "needs the input 'rounds'"),
        ({"rounds": "three"}, "not a valid integer"),
        ({"rounds": "true"}, "is not an integer"),
        ({"rounds": "1", "nope": "1"}, "has no input 'nope'"),
        ({"rounds": "1", "strict": "yes"}, "not a valid boolean"),
    ],
)
def test_bad_inputs_are_usage_errors(given: dict[str, str], phrase: str) -> None:
    with pytest.raises(UsageError, match=phrase):
        resolve_inputs(WORKFLOW, given)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(["a", " ", "\n", "\r", "}", "%", "#", "é"])))
def test_text_without_tags_renders_as_jinja_renders_it(text: str) -> None:
    scope = Scope(inputs={}, outputs={})
    assert render(text, scope) == environment().from_string(text).render()


PLAIN_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.text(alphabet=st.sampled_from(["a", " ", "\n", "}", "%", "é", "{"]), max_size=4),
            st.sampled_from(
                ["{{ item }}", "{{item}}", "{{ inputs }}", "{{ range }}", "{{ gone }}"]
            ),
        ),
        max_size=6,
    ),
    item=PLAIN_VALUES,
)
def test_bare_names_render_as_jinja_renders_them(pieces: list[str], item: object) -> None:
    source = "".join(pieces)
    scope = Scope(inputs={"n": 1}, outputs={}, variables={"item": item})
    try:
        expected = environment().from_string(source).render(scope.names())
    except Exception:  # whatever Jinja raises, render raises a RenderError for it
        expected = None
    if expected is None:
        with pytest.raises(RenderError):
            render(source, scope)
    else:
        assert render(source, scope) == expected


@pytest.mark.parametrize("source", ['"nan" | float', '"inf" | float', "1e400"])
def test_a_constant_nan_or_infinity_is_a_render_error(source: str) -> None:
    with pytest.raises(RenderError, match="NaN or infinity, which is not a JSON number"):
        evaluate(source, SCOPE)
    with pytest.raises(RenderError, match="NaN or infinity"):
        render("{% if " + source + " %}x{% endif %}", SCOPE)


@pytest.mark.parametrize(
    ("expect", "got"),
    [
        ("outputs.review | length == 3", "2 == 3"),
        ("outputs.review[0].ok != true", "True != True"),
        ("inputs.files | length > 2", "2 > 2"),
        ("1 <= inputs.files | length <= 1", "1 <= 2 <= 1"),
        ("'c.py' in inputs.files", "'c.py' in ['a.py', 'b.py']"),
        ("file not in inputs.files", "'a.py' not in ['a.py', 'b.py']"),
        ("inputs.files | length < 1 or false", "False"),
        ("'x' * 200 == ''", "'" + "x" * 78 + "… == ''"),
    ],
)
def test_a_failed_expectation_shows_the_values_it_compared(expect: str, got: str) -> None:
    assert not evaluate(expect, SCOPE)
    assert unmet(expect, False, SCOPE) == f"expected {expect!r} to hold, got {got}"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "outputs.review[0].okk",
            "`outputs.review[0].okk` is undefined: `outputs.review[0]` has no `okk`; "
            "did you mean `ok`?",
        ),
        (
            "outputs['review'][5]",
            "`outputs.review[5]` is undefined: `outputs.review` has 2 items, indexes 0 to 1",
        ),
        (
            "outputs.summary",
            "`outputs.summary` is undefined: `outputs` has no `summary` (it has `review`)",
        ),
        ("fiel", "`fiel` is undefined; did you mean `file`?"),
        ("rnage(3) | list", "`rnage` is undefined; did you mean `range`?"),
        ("env.CI.x", "`env.CI.x` is undefined: `env.CI` is text, which has no `x`"),
        (
            "(inputs.files | first).name",
            "`name` is undefined: the value is text, which has no `name`",
        ),
    ],
)
def test_an_undefined_name_says_what_was_read_and_the_nearest(source: str, message: str) -> None:
    with pytest.raises(RenderError) as raised:
        evaluate(source, SCOPE)
    assert str(raised.value) == message


def test_an_undefined_name_in_a_loop_of_a_template_names_its_path() -> None:
    with pytest.raises(RenderError) as raised:
        render("{% for r in outputs.review %}{{ r.okay }}{% endfor %}", SCOPE)
    assert str(raised.value) == "`r.okay` is undefined: `r` has no `okay`; did you mean `ok`?"


def test_a_value_shown_is_redacted_before_it_is_cut() -> None:
    secret = "tok-0123456789"
    scope = Scope(inputs={"text": "a" * 75 + secret}, outputs={})
    message = unmet("inputs.text == ''", False, scope, lambda t: t.replace(secret, "[redacted]"))
    assert message == "expected \"inputs.text == ''\" to hold, got '" + "a" * 75 + "[re… == ''"


def test_an_undefined_name_suggests_a_name_the_template_binds() -> None:
    with pytest.raises(RenderError) as raised:
        render("{% for item in outputs.review %}{{ itme.ok }}{% endfor %}", SCOPE)
    assert str(raised.value) == "`itme` is undefined; did you mean `item`?"
