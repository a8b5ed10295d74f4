"""Request bodies read with bounds: nesting depth, number length, finiteness and media type.

The standard `json` module recurses once per nesting level and turns any run of digits into an
`int`, so `[` x 100,000 ends in `RecursionError` and a 5,000-digit number in Python's
int-conversion limit: both were 500s. Here the depth is measured first (a linear scan that skips
strings), numbers are parsed through hooks that refuse long or non-finite ones, and every refusal is a
`BodyError` carrying the HTTP status and the usual error code, so the view answers a 4xx.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any, NoReturn

from ingest.observers.errors import ObserverIntakeError

#: A count is an object of scalars, a batch an array of them: 2 levels. Room for a mistake to be
#: reported per item (a field holding a small object), none for a parser bomb.
MAX_DEPTH = 8
#: Digits a number may have. A count's numbers have at most 7; 30 leaves room, Python's 4,300 does not.
MAX_DIGITS = 30
#: Characters a JSON float literal may have (`1e400` is short but infinite: refused by value).
MAX_FLOAT_TEXT = 40

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class BodyError(ObserverIntakeError):
    """The body cannot be read as a request: answered with `status` and `{"error": {code, message}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _media(content_type: str, charset: str | None, allowed: tuple[str, ...]) -> None:
    if content_type not in allowed:
        raise BodyError(
            415,
            "unsupported_media_type",
            f"send the body as {' or '.join(allowed)} (UTF-8), not {content_type or 'no Content-Type'}",
        )
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise BodyError(415, "unsupported_media_type", f"send the body in UTF-8, not {charset}")


def depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings do not count)."""
    deepest = level = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def _bad_number(text: str) -> NoReturn:
    shown = text if len(text) <= 20 else text[:20] + "…"
    raise BodyError(422, "bad_number", f"{shown} is not a number a count can hold (too long, or not finite)")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        _bad_number(text)
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_FLOAT_TEXT:
        _bad_number(text)
    value = float(text)
    if not math.isfinite(value):
        _bad_number(text)
    return value


#: What `json.loads(text, parse_int=..., parse_float=..., parse_constant=...)` builds on every call, built once.
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_bad_number)


def read_json(raw: bytes, content_type: str, charset: str | None) -> Any:
    """The JSON value of a `/v1/counts` body, or BodyError (415, 400 or 422)."""
    _media(content_type, charset, ("application/json",))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, "bad_json", f"the body is not UTF-8: {exc}") from exc
    # Nesting cannot exceed the opening brackets there are: most bodies need no scan at all.
    found = 0 if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH else depth(raw)
    if found > MAX_DEPTH:
        raise BodyError(400, "too_deep", f"the body nests {found} levels deep; a batch of counts needs 2")
    if text.startswith("\ufeff"):  # `json.loads` says so itself; the decoder it wraps does not
        raise BodyError(400, "bad_json", "the body starts with a UTF-8 byte order mark; send it without one")
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise BodyError(400, "bad_json", f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:  # unbalanced brackets the depth scan could not pair
        raise BodyError(400, "too_deep", "the body nests too deeply") from exc
    if "\\ud" in text or "\\uD" in text:  # `\\ud800` escapes give lone surrogates: text no one can store
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise BodyError(
                400, "bad_json", "the body holds a lone surrogate (\\ud800-\\udfff), which is not text"
            ) from exc
    return value


def read_csv(raw: bytes, content_type: str, charset: str | None) -> tuple[list[dict[str, str]], list[int]]:
    """The rows of a `/v1/counts.csv` body (empty cells left out) with their line numbers, or BodyError."""
    _media(content_type, charset, ("text/csv", "application/csv"))
    try:
        text = raw.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        items: list[dict[str, str]] = []
        lines: list[int] = []
        for row in reader:
            if None in row:
                raise BodyError(400, "bad_csv", f"line {reader.line_num} has more cells than the header")
            items.append({k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip()})
            lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BodyError(400, "bad_csv", f"the body is not UTF-8 CSV with a header row: {exc}") from exc
    return items, lines
