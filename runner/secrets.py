"""Which values are secret, and every form in which a secret's text can appear.

A key reaches text in more shapes than its own: ``repr`` and JSON escape quotes, backslashes,
newlines and non-ASCII characters; a URL carries it percent-encoded; a Basic ``Authorization``
header carries it in base64, next to a user name. A :class:`Redactor` knows all of those forms
for a set of secret values and replaces each one with :data:`REDACTED`; every place where text
leaves Branchleaf for a person or for disk (provider errors, the configuration and environment
stored with a run, the pull-request comment's warnings) goes through one.

A variable is secret when its name looks secret (:func:`looks_secret`) or when the configuration
names it as a provider's ``api_key_env`` (:func:`key_variables`), whatever its name.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.config import Config

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
# A base64 fragment this short could match ordinary text; the whole encoding is still redacted.
_MIN_FRAGMENT = 6


def looks_secret(name: str) -> bool:
    """Whether a variable's name says it holds a secret (``*_KEY``, ``*_TOKEN``...)."""
    return _SECRET_NAME.search(name) is not None


def key_variables(config: Config) -> frozenset[str]:
    """The variables the configured providers read their keys from."""
    return frozenset(p.api_key_env for p in config.providers.values() if p.api_key_env)


def forms(secret: str) -> set[str]:
    """Every text in which ``secret`` can appear: raw, repr- and JSON-escaped, percent-encoded
    and base64-encoded (also in the middle of a longer encoded value, as in Basic auth)."""
    found = {secret}
    for escape in (repr, ascii):
        # repr escapes character by character; whether a quote is escaped depends on the
        # whole text around the secret, so both spellings are forms.
        plain = "".join(escape(char)[1:-1] for char in secret)
        found |= {plain, plain.replace("'", "\\'")}
    for ensure_ascii in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ensure_ascii)[1:-1]
        found |= {escaped, escaped.replace("/", "\\/")}
    for safe in ("", "/", ":@"):
        for quoted in (
            urllib.parse.quote(secret, safe=safe),
            urllib.parse.quote_plus(secret, safe=safe),
        ):
            found |= {quoted, re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), quoted)}
    raw = secret.encode("utf-8", "surrogatepass")
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        # Characters that also carry bits of the bytes before or after the secret change with
        # its neighbours: only those made of the secret's bits alone are a fixed form.
        fragment = encoded[-(-offset * 8 // 6) : (offset + len(raw)) * 8 // 6]
        for text in {encoded, fragment} if offset == 0 else {fragment}:
            if len(text) >= _MIN_FRAGMENT or text == encoded:
                found |= {text, text.replace("+", "-").replace("/", "_")}
    found.discard("")
    return found


class Redactor:
    """Replaces every form of a set of secrets with :data:`REDACTED`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        every: set[str] = set()
        for secret in secrets:
            if secret:
                every |= forms(secret)
        # Longest first, so that a form containing another is replaced whole.
        self._forms = sorted(every, key=lambda form: (-len(form), form))
        self._pattern = (
            re.compile("|".join(re.escape(form) for form in self._forms)) if self._forms else None
        )

    @classmethod
    def from_environment(
        cls, names: Iterable[str], environ: Mapping[str, str] | None = None
    ) -> Redactor:
        """A redactor for the values of the variables ``names`` (those set and not empty)."""
        environ = os.environ if environ is None else environ
        values = {environ.get(name, "") for name in names}
        return cls(value for value in values | {value.strip() for value in values} if value)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def redact(self, text: str) -> str:
        """``text`` with every form of every secret replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def leaks(self, text: str) -> bool:
        """Whether ``text`` holds a form of a secret."""
        return self._pattern is not None and self._pattern.search(text) is not None
