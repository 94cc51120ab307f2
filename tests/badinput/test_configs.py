"""``branchleaf.yaml`` mutated and damaged, given with --config or found in the working folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import GOOD_YAML

from badinput.cli import BAD, BAD_OR_UNSERVED, assert_clean, run_inprocess
from badinput.mutate import Variant, damaged, structural, to_yaml
from badinput.peers import refusing_port

KEY_ENV = "BL_BADINPUT_KEY"
CONFIG = f"""\
providers:
  local:
    type: openai
    base_url: http://127.0.0.1:PORT/v1
    api_key_env: {KEY_ENV}
    timeout_s: 2
    max_retries: 0
    models:
      small:
        capabilities: [json_mode]
        price: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
  judge:
    type: anthropic
    base_url: http://127.0.0.1:PORT
    api_key_env: {KEY_ENV}_JUDGE
    timeout_s: 3
    max_retries: 1
    models:
      big: {{capabilities: [json_mode, long_context]}}
  dry: {{type: mock}}
roles:
  reviewer: {{provider: local, model: small}}
  default: {{provider: dry}}
"""


@pytest.fixture
def port() -> Iterator[int]:
    with refusing_port() as number:
        yield number


def _variants() -> list[Variant]:
    document = yaml.safe_load(CONFIG)
    variants = list(structural("config", document, to_yaml, count=6, required=set()))
    variants += damaged("config", CONFIG.encode())
    return variants


def _edit(**replace: str) -> bytes:
    text = CONFIG
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


URL = "http://127.0.0.1:PORT/v1"
RUN_TIME_ONLY = {"key_env_unset", "mock_script_missing", "mock_script_is_config"}
"""Problems that validate (offline, as in a pre-commit hook) need not find."""
HAND: dict[str, tuple[bytes, bool]] = {
    "latin1_comment": (b"# r\xe9glages\n" + CONFIG.encode(), True),
    "latin1_value": (
        _edit(**{"type: openai": "type: openai\n    # \xe9"}).replace("\xe9".encode(), b"\xe9"),
        True,
    ),
    "empty": (b"", False),
    "whitespace": (b"   \n\t\n", False),
    "not_a_mapping": (b"- a\n- b\n", True),
    "scalar": (b"providers\n", True),
    "port_99999": (_edit(**{URL: "http://127.0.0.1:99999/v1"}), True),
    "port_0": (_edit(**{URL: "http://127.0.0.1:0/v1"}), True),
    "port_negative": (_edit(**{URL: "http://127.0.0.1:-1/v1"}), True),
    "port_letters": (_edit(**{URL: "http://127.0.0.1:abc/v1"}), True),
    "url_not_url": (_edit(**{URL: "not a url"}), True),
    "url_ftp": (_edit(**{URL: "ftp://127.0.0.1:PORT/v1"}), True),
    "url_no_host": (_edit(**{URL: "http:///v1"}), True),
    "url_bad_ipv6": (_edit(**{URL: "http://[::1/v1"}), True),
    "url_empty": (_edit(**{URL: "''"}), True),
    "url_with_password": (_edit(**{URL: "http://user:hunter2@127.0.0.1:PORT/v1"}), False),
    "url_with_query": (_edit(**{URL: "http://127.0.0.1:PORT/v1?key=hunter2"}), False),
    "url_control_chars": (_edit(**{URL: '"http://127.0.0.1:PORT/v1\\r\\nX: y"'}), True),
    "url_unicode_host": (_edit(**{URL: "http://\u00e9xample.invalid:PORT/v1"}), False),
    "timeout_zero": (
        _edit(**{"timeout_s: 2": "timeout_s: 0"}),
        True,
    ),
    "timeout_negative": (
        _edit(**{"timeout_s: 2": "timeout_s: -1"}),
        True,
    ),
    "timeout_inf": (
        _edit(**{"timeout_s: 2": "timeout_s: .inf"}),
        True,
    ),
    "timeout_nan": (
        _edit(**{"timeout_s: 2": "timeout_s: .nan"}),
        True,
    ),
    "timeout_1e999": (
        _edit(**{"timeout_s: 2": "timeout_s: 1.0e+999"}),
        True,
    ),
    "timeout_exponent": (
        _edit(**{"timeout_s: 2": "timeout_s: 2e0"}),
        False,
    ),
    "timeout_string": (
        _edit(**{"timeout_s: 2": "timeout_s: soon"}),
        True,
    ),
    "retries_11": (
        _edit(**{"max_retries: 0": "max_retries: 11"}),
        True,
    ),
    "retries_float": (
        _edit(**{"max_retries: 0": "max_retries: 1.5"}),
        True,
    ),
    "retries_huge": (
        _edit(**{"max_retries: 0": "max_retries: " + "9" * 50 + ""}),
        True,
    ),
    "key_env_digit": (
        _edit(**{f"api_key_env: {KEY_ENV}\n": "api_key_env: 1BAD\n"}),
        True,
    ),
    "key_env_space": (
        _edit(**{f"api_key_env: {KEY_ENV}\n": "api_key_env: 'A B'\n"}),
        True,
    ),
    "key_env_unset": (
        _edit(**{f"api_key_env: {KEY_ENV}\n": "api_key_env: BL_BADINPUT_UNSET\n"}),
        True,
    ),
    "unknown_type": (_edit(**{"type: openai": "type: gemini"}), True),
    "type_list": (_edit(**{"type: openai": "type: [openai]"}), True),
    "models_list": (_edit(**{"models:\n      small:": "models:\n      - small:"}), True),
    "roles_list": (_edit(**{"roles:\n  reviewer:": "roles:\n  - reviewer:"}), True),
    "role_missing_provider": (
        _edit(**{"{provider: local, model: small}": "{provider: nowhere}"}),
        True,
    ),
    "role_missing_model": (
        _edit(**{"{provider: local, model: small}": "{provider: local, model: nope}"}),
        True,
    ),
    "role_without_model_of_two": (
        _edit(
            **{
                "      small:\n": "      other: {}\n      small:\n",
                "{provider: local, model: small}": "{provider: local}",
            }
        ),
        True,
    ),
    "capability_unknown": (
        _edit(**{"capabilities: [json_mode]": "capabilities: [telepathy]"}),
        True,
    ),
    "price_negative": (_edit(**{"input_per_mtok: 0.15": "input_per_mtok: -1"}), True),
    "price_nan": (_edit(**{"input_per_mtok: 0.15": "input_per_mtok: .nan"}), True),
    "price_huge": (_edit(**{"input_per_mtok: 0.15": "input_per_mtok: 1.0e+308"}), False),
    "mock_script_missing": (
        _edit(**{"dry: {type: mock}": "dry: {type: mock, script: nope.yaml}"}),
        True,
    ),
    "mock_script_is_config": (
        _edit(**{"dry: {type: mock}": "dry: {type: mock, script: branchleaf.yaml}"}),
        True,
    ),
    "duplicate_provider": (CONFIG.encode() + b"providers: {}\n", True),
    "alias_bomb": (
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode()
            for i in range(8)
        ),
        True,
    ),
    "deep_nesting": (b"providers: " + b"[" * 500 + b"]" * 500 + b"\n", True),
}


def _config(tmp_path: Path, data: bytes, port: int) -> str:
    path = tmp_path / "given.yaml"
    path.write_bytes(data.replace(b"PORT", str(port).encode()))
    return str(path)


def _workflow(tmp_path: Path) -> str:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD_YAML, encoding="utf-8")
    return str(path)


KEY = {KEY_ENV: "sk-badinput-0123456789", f"{KEY_ENV}_JUDGE": "sk-badinput-judge-0123456789"}


@pytest.mark.parametrize("variant", _variants(), ids=lambda v: v.id)
@pytest.mark.parametrize("command", ["validate"])
def test_config_variant(
    command: str, variant: Variant, tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, variant.data, port)
    workflow = _workflow(tmp_path)
    if command == "validate":
        argv = ["validate", "--config", config, workflow]
    else:
        argv = ["run", workflow, "--config", config, "--plain", "--state", str(tmp_path / "s")]
    assert_clean(run_inprocess(argv, capsys, env=KEY), allowed=BAD if variant.bad else None)


# Those a run also reads differently from validate (implicitly found, or used at run time).
AT_RUN_TIME = [
    "latin1_comment",
    "empty",
    "whitespace",
    "port_99999",
    "port_negative",
    "url_bad_ipv6",
    "url_with_password",
    "url_control_chars",
    "key_env_unset",
    "role_without_model_of_two",
    "timeout_exponent",
    "deep_nesting",
    "mock_script_missing",
]
HOW = [("validate --config", case) for case in sorted(HAND)]
HOW += [("run implicit", case) for case in AT_RUN_TIME]


@pytest.mark.parametrize(("how", "case"), HOW, ids=[f"{how}-{case}" for how, case in HOW])
def test_hand_written_config(
    how: str, case: str, tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    data, bad = HAND[case]
    workflow = _workflow(tmp_path)
    state = ["--plain", "--state", str(tmp_path / "s")]
    if how == "run implicit":
        (tmp_path / "branchleaf.yaml").write_bytes(data.replace(b"PORT", str(port).encode()))
        argv = ["run", workflow, *state]
    else:
        config = _config(tmp_path, data, port)
        argv = (
            ["validate", "--config", config, workflow]
            if how.startswith("validate")
            else ["run", workflow, "--config", config, *state]
        )
    # A configuration that loads but cannot serve a call fails the node at run time (exit 1),
    # or, when its provider cannot be reached, ends the run provider_failed (exit 4).
    allowed = (BAD if how.startswith("validate") else BAD_OR_UNSERVED) if bad else None
    if how.startswith("validate") and case in RUN_TIME_ONLY:
        allowed = None
    assert_clean(run_inprocess(argv, capsys, env=KEY), allowed=allowed)


@pytest.mark.parametrize(
    "key",
    ["k\u00e9y-\u2603", "line1\nline2", "tab\tkey", " ", "k\x00ey", "\udcff", "x" * 100_000],
    ids=["non_latin1", "newline", "tab", "blank", "nul", "surrogate", "long"],
)
def test_hostile_api_key(
    key: str, tmp_path: Path, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, CONFIG.encode(), port)
    workflow = _workflow(tmp_path)
    argv = ["run", workflow, "--config", config, "--plain", "--state", str(tmp_path / "s")]
    if "\x00" in key:
        pytest.skip("an environment variable cannot hold a NUL byte")
    outcome = run_inprocess(argv, capsys, env={**KEY, KEY_ENV: key})
    # A key a header can carry reaches the provider, which nothing serves here (exit 4).
    assert_clean(outcome, allowed=BAD_OR_UNSERVED)
    if len(key.strip()) > 3:
        assert key not in outcome.text, "the API key was printed"


@pytest.mark.parametrize("how", ["given", "implicit"])
@pytest.mark.parametrize("command", ["validate", "run", "ci"])
def test_config_is_a_directory(
    how: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "branchleaf.yaml").mkdir()
    workflow = _workflow(tmp_path)
    given = ["--config", str(tmp_path / "branchleaf.yaml")] if how == "given" else []
    if command == "validate" and how == "implicit":
        given = ["--config", "branchleaf.yaml"]
    state = [] if command == "validate" else ["--state", str(tmp_path / "s")]
    outcome = run_inprocess([command, workflow, *given, *state], capsys)
    assert_clean(outcome, allowed=BAD)


@pytest.mark.parametrize("command", ["validate", "run", "ci", "replay"])
def test_config_missing(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workflow = _workflow(tmp_path)
    missing = ["--config", str(tmp_path / "nope.yaml")]
    if command == "replay":
        argv = ["replay", "last", "--allow-live", *missing, "--state", str(tmp_path / "s")]
    elif command == "validate":
        argv = ["validate", workflow, *missing]
    else:
        argv = [command, workflow, *missing, "--state", str(tmp_path / "s")]
    assert_clean(run_inprocess(argv, capsys), allowed=BAD)


def test_config_unreadable_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "locked.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    path.chmod(0)
    if os.access(path, os.R_OK):
        path.chmod(0o600)
        pytest.skip("file modes do not stop this user from reading")
    outcome = run_inprocess(["validate", "--config", str(path), _workflow(tmp_path)], capsys)
    assert_clean(outcome, allowed=BAD)
