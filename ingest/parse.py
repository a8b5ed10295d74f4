"""Parse one CEC turnout release (HTML or text, ru/kk/en) into exact figures keyed by region code.

Releases are written by people: numbered lists, prose, tables; comma or dot decimals; every kind of
dash; "на 10.00", "10:10 a.m.", "сағат 10:00-дегі"; region names in any spelling the gazetteer
knows. The rule that matters more than coverage: a number is attached to a region only when the
text pairs them unambiguously (name, value, name, value ... in one segment). Anything else goes to
`unparsed` with its text, and a name the gazetteer does not know is reported with the closest
spellings, so the watch room never sees a figure under the wrong region.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

import lxml.html
from lxml import etree

from turnout_watch.core.errors import RegionNotInForceError
from turnout_watch.core.gazetteer import NATIONAL, Gazetteer, default_gazetteer

__all__ = ["Lang", "ParsedRelease", "html_to_text", "parse_release", "parse_text"]

Lang = Literal["ru", "kk", "en", "auto"]

_BLOCK = frozenset(
    [
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "br",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "thead",
        "tbody",
        "article",
        "section",
        "header",
        "footer",
        "blockquote",
        "dd",
        "dt",
        "dl",
        "title",
        "pre",
        "main",
        "aside",
        "nav",
    ]
)
_CELL = frozenset({"td", "th"})
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u2e3a\u2e3b"
_DASH_TO_HYPHEN = str.maketrans(dict.fromkeys(map(ord, _DASHES), "-"))

_MONTHS = {
    "ru": "январ феврал март апрел ма июн июл август сентябр октябр ноябр декабр",
    "kk": "қаңтар ақпан наурыз сәуір мамыр маусым шілде тамыз қыркүйек қазан қараша желтоқсан",
    "en": "jan feb mar apr may jun jul aug sep oct nov dec",
}
_DATE_NUMERIC = re.compile(r"\b(?:(\d{4})-(\d{2})-(\d{2})|(\d{1,2})\.(\d{1,2})\.(\d{4}))\b")
_DATE_WORDS = re.compile(r"\b(\d{1,2})\s+([^\W\d_]{3,})\.?\s+(\d{4})\b|\b([^\W\d_]{3,})\.?\s+(\d{1,2}),?\s+(\d{4})\b")
# As-of keywords before a time ("на 10.00", "as of 10:00", "сағат 10:00") or Kazakh case endings after it.
_ASOF_BEFORE = r"(?:по\s+состоянию\s+на|на|к|as\s+of|as\s+at|by|at|сағат|saǵat|sagat)"
_KK_AFTER = r"(?:\s*-?\s*(?:ге|ге\s+дейін|дегі|де|дағы|қа|ке|те|тегі|ge|degi|de))(?!\w)"
_AMPM = r"(?P<ampm>[ap])\.?\s?m\.?"
_TIME = re.compile(
    rf"(?:(?P<kw>{_ASOF_BEFORE})\s+)?(?<![\d.,:])(?P<h>\d{{1,2}})(?:(?P<sep>[:.])(?P<m>\d{{2}}))?"
    rf"(?:\s*{_AMPM}|(?P<kk>{_KK_AFTER}))?(?![\d%])",
    re.IGNORECASE,
)
_ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}[.)]|\(\d{1,2}\)|[•·*▪►-])\s+")
_SEGMENT_SPLIT = re.compile(r";|(?<=[%\d])\s*\.\s+|\n")
_NUMBER = re.compile(
    r"(?<![\w.,])(?P<num>\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+(?:[.,]\d+)?)"
    r"(?P<pct>\s*(?:%|процент\w*|пайыз\w*|percent|per\s+cent))?(?![\w])",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NAME_BREAK = re.compile(r"[,;:()«»\"|/]| - ")
_PIECES = re.compile(r",\s+|\s+\|\s+(?=\D)")  # where an unpaired segment splits into sub-segments
_STOPWORDS = frozenset(
    [
        "in",
        "the",
        "of",
        "at",
        "on",
        "for",
        "and",
        "with",
        "was",
        "were",
        "by",
        "turnout",
        "voters",
        "cast",
        "their",
        "votes",
        "voted",
        "ballots",
        "region's",
        "в",
        "во",
        "на",
        "по",
        "и",
        "явка",
        "составила",
        "составляет",
        "проголосовали",
        "избирателей",
        "регионе",
        "бойынша",
        "жəне",
        "және",
        "сайлаушылар",
        "дауыс",
        "берді",
        "сайлаушылардың",
    ]
)
_MAX_WINDOW = 6


@dataclass
class ParsedRelease:
    """What one release says. `turnout_pct` holds sub-national units only; `national` the country."""

    as_of: datetime | None
    national: float | None
    turnout_pct: dict[str, float]
    names: dict[str, str] = field(default_factory=dict)  # code -> the spelling the source used
    unparsed: list[str] = field(default_factory=list)
    unknown_regions: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # units in force that day the release did not give

    def figures(self) -> dict[str, float]:
        """Every placed figure by code, the national one under ``KZ`` (the pipeline's key)."""
        out = dict(self.turnout_pct)
        if self.national is not None:
            out[NATIONAL] = self.national
        return out

    def spelled(self) -> dict[str, float]:
        """Figures keyed by the source's own spelling: a day file's `turnout_pct`."""
        return {self.names.get(code, code): pct for code, pct in self.figures().items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "national": self.national,
            "turnout_pct": dict(sorted(self.turnout_pct.items())),
            "unparsed": self.unparsed,
            "unknown_regions": self.unknown_regions,
            "missing": self.missing,
        }


def decode(content: bytes, charset: str | None = None) -> str:
    """Bytes to text: the declared charset, else UTF-8, else Windows-1251 (older Cyrillic sites).

    A declared charset that fails strictly (a body cut mid-character) is kept with replacement
    characters rather than guessed away: a truncated page must read as truncated, not as mojibake.
    """
    for encoding in (charset, "utf-8"):
        if encoding:
            try:
                return content.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    try:
        return content.decode(charset or "cp1251", errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def looks_like_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<body" in head or "<p" in head or "<li" in head or "<div" in head or "<tr" in head


def html_to_text(html: str, selector: str | None = None) -> tuple[str, bool]:
    """The visible text, one line per block element and cells joined by " | ".

    Returns (text, found): `found` is False when `selector` matched nothing and the whole body was
    used instead, which is how a changed page layout shows up.
    """
    if not html.strip():
        return "", selector is None
    try:
        # An HtmlElement (text_content, drop_tree), as in pages.py; lxml-stubs type it a plain _Element.
        doc: lxml.html.HtmlElement = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return "", False
    for bad in doc.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    root, found = doc, True
    if selector:
        matches = doc.cssselect(selector)
        if matches:
            root = matches[0]
        else:
            found = False
    for row in list(root.iter("tr")):
        # One line per row with cells joined, whatever blocks the cells hold inside.
        cells = [" ".join(cell.text_content().split()) for cell in row if cell.tag in _CELL]
        tail = row.tail
        row.clear()
        row.text, row.tail = " | ".join(cells), tail
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag in _CELL:
            el.tail = " | " + (el.tail or "")
        elif el.tag in _BLOCK:
            el.tail = "\n" + (el.tail or "")
            if el.tag in ("li", "tr", "p", "div") and el.text:
                el.text = "\n" + el.text
    return str(root.text_content()), found


@dataclass(frozen=True)
class _Item:
    start: int
    end: int
    kind: Literal["R", "V"]
    code: str | None = None  # R: the code, None when known but not in force
    text: str = ""
    value: float = 0.0
    problem: str = ""


@functools.lru_cache(maxsize=1 << 16)
def _lookup(gazetteer: Gazetteer, on: date | None, text: str) -> tuple[str | None, str] | None:
    """(code, "") for a known name; (None, why) for a known unit not in force on `on`; None if unknown.

    Cached across releases: every release of a day repeats the same few hundred word windows, and
    normalising them is most of the parser's time.
    """
    if gazetteer.find(text) is None:
        return None
    try:
        return gazetteer.resolve(text, on=on).code, ""
    except RegionNotInForceError as exc:
        return None, str(exc)


class _Resolver:
    def __init__(self, gazetteer: Gazetteer, on: date | None) -> None:
        self.gazetteer, self.on = gazetteer, on

    def __call__(self, text: str) -> tuple[str | None, str] | None:
        return _lookup(self.gazetteer, self.on, text)


def _mentions(segment: str, blocked: list[tuple[int, int]], resolve: _Resolver) -> list[_Item]:
    """Region names in the segment: greedy longest word windows that the gazetteer knows."""
    items: list[_Item] = []
    cuts = sorted([*blocked, *((m.start(), m.end()) for m in _NAME_BREAK.finditer(segment))])
    bounds, pos = [], 0
    for start, end in cuts:
        if start > pos:
            bounds.append((pos, start))
        pos = max(pos, end)
    bounds.append((pos, len(segment)))
    for lo, hi in bounds:
        words = list(_WORD.finditer(segment, lo, hi))
        i = 0
        while i < len(words):
            for width in range(min(_MAX_WINDOW, len(words) - i), 0, -1):
                start, end = words[i].start(), words[i + width - 1].end()
                hit = resolve(segment[start:end])
                if hit is not None:
                    code, problem = hit
                    items.append(_Item(start, end, "R", code, segment[start:end].strip(), problem=problem))
                    i += width
                    break
            else:
                i += 1
    return items


def _number(text: str) -> float:
    return float(re.sub(r"[ \u00a0\u202f]", "", text).replace(",", "."))


def _values(segment: str, table: bool) -> tuple[list[_Item], list[tuple[int, int]]]:
    """Candidate percentages: with a % sign if any has one, else decimals, else (tables) integers."""
    found: dict[int, list[_Item]] = {0: [], 1: [], 2: []}
    spans = []
    for m in _NUMBER.finditer(segment):
        num = m.group("num")
        spans.append((m.start(), m.end()))
        if m.group("pct"):
            rank = 0
        elif re.fullmatch(r"\d+[.,]\d{1,2}", num):
            rank = 1
        elif table and num.isdigit() and len(num) <= 3:
            rank = 2
        else:
            continue
        found[rank].append(_Item(m.start(), m.end(), "V", text=m.group(0).strip(), value=_number(num)))
    best = next((found[r] for r in (0, 1, 2) if found[r]), [])
    return best, spans


def _candidate_name(segment: str, spans: list[tuple[int, int]]) -> str:
    text = segment
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    words = [w for w in _WORD.findall(text) if w.casefold() not in _STOPWORDS]
    return " ".join(words)


class _Collector:
    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        self.figures: dict[str, float] = {}
        self.names: dict[str, str] = {}
        self.conflicts: set[str] = set()
        self.unparsed: list[str] = []
        self.unknown: list[dict[str, Any]] = []

    def place(self, mention: _Item, value: _Item, segment: str) -> None:
        if mention.code is None:
            self.unparsed.append(segment.strip())
            self.unknown.append({"name": mention.text, "value": value.value, "error": mention.problem})
            return
        code = mention.code
        if code in self.figures and self.figures[code] != value.value:
            self.conflicts.add(code)
            self.unparsed.append(f"{segment.strip()} (conflicts with {self.figures[code]} for {code})")
            return
        self.figures.setdefault(code, value.value)
        self.names.setdefault(code, mention.text)

    def orphan(self, values: list[_Item], mentions: list[_Item], segment: str, spans: list[tuple[int, int]]) -> None:
        """Values the segment does not pair with one name each. With no known name beside a single
        value, the words around it are probably a misspelt region: report them with suggestions."""
        self.unparsed.append(segment.strip())
        candidate = _candidate_name(segment, spans)
        if len(values) == 1 and not mentions and 0 < len(candidate.split()) <= 4:
            self.unknown.append(
                {"name": candidate, "value": values[0].value, "suggestions": self.gazetteer.suggest(candidate)}
            )


def _pair(items: list[_Item]) -> list[tuple[_Item, _Item]] | None:
    """Pair names with values when they strictly alternate (R V R V or V R V R); else None."""
    if len(items) % 2 or not items:
        return None
    kinds = "".join(i.kind for i in items)
    if kinds != kinds[:2] * (len(items) // 2) or kinds[0] == kinds[1]:
        return None
    pairs = [(items[i], items[i + 1]) for i in range(0, len(items), 2)]
    return [(a, b) if a.kind == "R" else (b, a) for a, b in pairs]


def _parse_segment(segment: str, resolve: _Resolver, out: _Collector, depth: int = 0) -> None:
    table = " | " in segment
    values, spans = _values(segment, table)
    if not values:
        return
    mentions = _mentions(segment, spans, resolve)
    pairs = _pair(sorted(values + mentions, key=lambda i: i.start))
    if pairs is not None:
        for mention, value in pairs:
            out.place(mention, value, segment)
        return
    if depth == 0 and len(pieces := _PIECES.split(segment)) > 1:
        for piece in pieces:
            _parse_segment(piece, resolve, out, depth + 1)
        return
    out.orphan(values, mentions, segment, spans)


def _find_date(text: str, lang: Lang) -> date | None:
    m = _DATE_NUMERIC.search(text)
    if m:
        with_year = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(6), m.group(5), m.group(4))
        try:
            return date(int(with_year[0]), int(with_year[1]), int(with_year[2]))
        except ValueError:
            pass
    langs = ("ru", "kk", "en") if lang == "auto" else (lang,)
    for m in _DATE_WORDS.finditer(text):
        day, word, year = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(5), m.group(4), m.group(6))
        for code in langs:
            for index, stem in enumerate(_MONTHS[code].split(), start=1):
                if word.casefold().startswith(stem):
                    try:
                        return date(int(year), index, int(day))
                    except ValueError:
                        break
    return None


def _times(text: str) -> tuple[time | None, list[tuple[int, int]]]:
    """The as-of time and the spans of every time expression (masked before reading figures)."""
    best: tuple[int, time] | None = None
    spans = []
    for m in _TIME.finditer(text):
        has_minutes, ampm = m.group("m") is not None, m.group("ampm")
        explicit = m.group("sep") == ":" or ampm or m.group("kk")
        if not (explicit or (m.group("kw") and has_minutes)):
            continue
        hour, minute = int(m.group("h")), int(m.group("m") or 0)
        if ampm:
            hour = hour % 12 + (12 if ampm.lower() == "p" else 0)
        if hour > 23 or minute > 59:
            continue
        spans.append((m.start("h"), m.end()))
        score = 0 if (m.group("kw") or m.group("kk")) else 1
        if best is None or score < best[0]:
            best = (score, time(hour, minute))
    return (best[1] if best else None), spans


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def parse_text(
    text: str,
    *,
    on: date | None = None,
    tz: str = "Asia/Almaty",
    lang: Lang = "auto",
    gazetteer: Gazetteer | None = None,
) -> ParsedRelease:
    """Parse a release's text. `on` is the election date (else a date in the text is used)."""
    gazetteer = gazetteer or default_gazetteer()
    text = unicodedata.normalize("NFKC", text).translate(_DASH_TO_HYPHEN)
    date_spans = [(m.start(), m.end()) for m in (*_DATE_NUMERIC.finditer(text), *_DATE_WORDS.finditer(text))]
    day = on or _find_date(text, lang)
    text = _mask(text, date_spans)
    at, time_spans = _times(text)
    text = _mask(text, time_spans)
    as_of = datetime.combine(day, at, tzinfo=ZoneInfo(tz)) if day and at else None
    resolve = _Resolver(gazetteer, day)
    out = _Collector(gazetteer)
    for line in text.split("\n"):
        line = _ENUMERATOR.sub("", line)
        for segment in _SEGMENT_SPLIT.split(line):
            if segment.strip():
                _parse_segment(segment, resolve, out)
    for code in out.conflicts:
        out.figures.pop(code, None)
    national = out.figures.pop(NATIONAL, None)
    expected = {NATIONAL, *(r.code for r in gazetteer.regions_on(day))} if day else set()
    return ParsedRelease(
        as_of=as_of,
        national=national,
        turnout_pct=out.figures,
        names=out.names,
        unparsed=out.unparsed,
        unknown_regions=out.unknown,
        missing=sorted(expected - out.figures.keys() - ({NATIONAL} if national is not None else set())),
    )


def parse_release(
    content: bytes | str,
    *,
    on: date | None = None,
    tz: str = "Asia/Almaty",
    lang: Lang = "auto",
    selector: str | None = None,
    charset: str | None = None,
    gazetteer: Gazetteer | None = None,
) -> ParsedRelease:
    """Parse HTML or plain text; `selector` (CSS) picks the release body out of a whole page."""
    text = decode(content, charset) if isinstance(content, bytes) else content
    if looks_like_html(text):
        text, _found = html_to_text(text, selector)
    return parse_text(text, on=on, tz=tz, lang=lang, gazetteer=gazetteer)
