"""Reading back the JSON columns of the state: what the store wrote is canonical JSON, so text
that Python's reader would accept but the store never writes (``NaN``, ``1e999``, a lone
surrogate, nesting deep enough to exhaust the stack) means the row was damaged afterwards."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from runner.store.db import DamagedRow


def stored_value(text: str | bytes, what: str) -> Any:
    """The value of a stored JSON column; DamagedRow naming ``what`` (``the output of run X``)
    when it is not JSON the store could have written."""

    def constant(word: str) -> Any:
        raise DamagedRow(f"{what} holds {word}, which is not a JSON number")

    def finite(digits: str) -> float:
        number = float(digits)
        if not math.isfinite(number):  # 1e999 is read as infinity
            raise DamagedRow(f"{what} holds {digits[:40]}, which is too large for a JSON number")
        return number

    try:
        value = json.loads(text, parse_constant=constant, parse_float=finite)
    except RecursionError:
        raise DamagedRow(f"{what} nests lists and mappings too deeply to be read") from None
    except (DamagedRow, json.JSONDecodeError):
        raise  # the state's error boundary says a stored row is not valid JSON
    except ValueError as exc:  # Python's guard against slow conversion of huge integers
        raise DamagedRow(f"{what} holds an integer of more than 4300 digits") from exc
    escaped = b"\\ud" in text.lower() if isinstance(text, bytes) else "\\ud" in text.lower()
    if escaped:  # an escaped surrogate must be half of a pair, or no output can carry it
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise DamagedRow(f"{what} holds a lone surrogate, which is not text") from None
        except RecursionError:
            raise DamagedRow(f"{what} nests lists and mappings too deeply to be read") from None
    return value


_LONG_DIGITS = re.compile(r"\d{19}")
"""Nineteen digits in a row: perhaps an integer beyond 64 bits, which orjson reads as a float."""
_LONG_DIGIT_BYTES = re.compile(rb"\d{19}")


def fast_value(text: str | bytes, what: str) -> Any:
    """:func:`stored_value`, read by orjson where it reads the same value (several times
    faster, for the rows a replay reads by the thousand). Text orjson refuses (``NaN``,
    ``1e999``, a lone surrogate, deep nesting) or may read otherwise (long runs of digits) is
    read by :func:`stored_value`, which says how the row is damaged."""
    long = _LONG_DIGITS.search(text) if isinstance(text, str) else _LONG_DIGIT_BYTES.search(text)
    if long is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return stored_value(text, what)
