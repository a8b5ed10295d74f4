"""Parse one CEC turnout release (HTML or text, ru/kk/en) into exact figures keyed by region code.

Releases are written by people: numbered lists, prose, tables; comma or dot decimals; every kind of
dash; "на 10.00", "10:10 a.m.", "сағат 10:00-дегі"; region names in any spelling the gazetteer
knows. The rule that matters more than coverage: a number is attached to a region only when the
text pairs them unambiguously (name, value, name, value ... in one segment). Anything else goes to
`unparsed` with its text, and a name the gazetteer does not know is reported with the closest
spellings, so the watch room never sees a figure under the wrong region.
"""

from __future__ import annotations

import bisect
import functools
import operator
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal, NamedTuple, cast
from zoneinfo import ZoneInfo

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector
from rapidfuzz import fuzz, process

from turnout_watch.core import morph
from turnout_watch.core.gazetteer import NATIONAL, Gazetteer, default_gazetteer

__all__ = ["Lang", "ParsedRelease", "css", "document_text", "html_to_text", "parse_release", "parse_text"]

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
_ANY_DASH = re.compile(f"[{_DASHES}]")  # each to "-" (a regex, as str.translate looks up every character)

_MONTHS = {
    "ru": "январ феврал март апрел ма июн июл август сентябр октябр ноябр декабр",
    "kk": "қаңтар ақпан наурыз сәуір мамыр маусым шілде тамыз қыркүйек қазан қараша желтоқсан",
    "en": "jan feb mar apr may jun jul aug sep oct nov dec",
}
# Digit first (then "no letter or digit before it"): the engine skips to digits, not tries every letter.
_DATE_NUMERIC = re.compile(
    r"(?P<d0>\d)(?<!\w\d)(?:(?P<y>\d{3})-(?P<m>\d{2})-(?P<d>\d{2})|(?P<dd>\d?)\.(?P<mm>\d{1,2})\.(?P<yy>\d{4}))\b"
)
# Possessive word runs ({3,}+): a shorter run would be followed by a letter, which cannot match.
_DATE_WORDS = re.compile(r"\b(\d{1,2})\s+([^\W\d_]{3,}+)\.?\s+(\d{4})\b|\b([^\W\d_]{3,}+)\.?\s+(\d{1,2}),?\s+(\d{4})\b")
# Every _DATE_WORDS match ends on a year, and starts at most this far before it: only the text just
# before each four-digit number is searched (_date_words).
_YEAR_DIGITS = re.compile(r"\d(?<!\d\d)\d{3}(?!\d)")
_DATE_REACH = 80


def _date_words(text: str) -> list[re.Match[str]]:
    """``_DATE_WORDS.finditer(text)``, searching only before each four-digit number."""
    out: list[re.Match[str]] = []
    end = 0
    for y in _YEAR_DIGITS.finditer(text):
        if y.start() < end:
            continue
        m = _DATE_WORDS.search(text, max(end, y.start() - _DATE_REACH), y.end() + 1)
        if m is not None:
            out.append(m)
            end = m.end()
    return out


# As-of keywords before a time ("на 10.00", "as of 10:00", "сағат 10:00") or Kazakh case endings after it.
_ASOF_BEFORE = r"(?:по\s+состоянию\s+на|по\s+данным\s+на|на|к|as\s+of|as\s+at|by|at|сағат|saǵat|sagat|sağat)"
# Kazakh case endings on a time ("12.00-дегі", "14-ке дейін", "16:05-tegi", "22-00-дегі"), any script.
_KK_AFTER = (
    r"(?:\s*-?\s*(?:[гқк][еа]|[гқк][еа]\s+дейін|[дт][еа]г?[іы]?|[дт][еа]|[дт]ағы|[дт]егі|"
    r"[gqk][ea]|[dt]eg[iı]|[dt]ag[iı]|[dt][ea]|[gq][ea]\s+de[iı]in))(?!\w)"
)
# "20 часов", "10 утра", "14 часам": an hour with the word for it, after an as-of keyword.
_HOUR_WORD = r"(?P<hw>\s*(?:час\w*|ч\b\.?|утра|дня|вечера|o'clock))"
_AMPM = r"(?P<ampm>[ap])\.?\s?m\.?"
# A time: the hour opens the pattern, so the engine skips to digits instead of trying every letter;
# the as-of keyword before it is read backwards from there (_TIME_KEYWORD), at most this far back.
# An hour followed by a digit, a comma or a % sign ("25,64 %") could only be a bare number: no time
# (see _times), nor a bound on the keyword of the next (a keyword holds no digit). The lookahead
# spares trying the rest of the pattern on every figure.
_TIME = re.compile(
    rf"(?P<h>\d(?<![\d.,:]\d)\d?)(?![\d,%])(?:(?P<sep>[:.]|-(?=\d\d-))(?P<m>\d{{2}}))?"
    rf"(?:\s*{_AMPM}|(?P<kk>{_KK_AFTER})|{_HOUR_WORD})?(?![\d%])",
    re.IGNORECASE,
)
_TIME_KEYWORD = re.compile(rf"(?P<kw>{_ASOF_BEFORE})\s+\Z", re.IGNORECASE)
_KEYWORD_REACH = 48


_ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}[.)]|\(\d{1,2}\)|[•·*▪►-])\s+")
# Segments: ";", a line, ". " after a figure, or a sentence end before a capital (not after "г." or
# "обл.": the name goes on), so a sentence naming a place and the figure of the next stay apart.
_DOT_BLANK = re.compile(r"\.\s")
_SEGMENT_SPLIT = re.compile(
    r"(?=[;.\s])(?:;|(?<=[%\d])\s*\.\s+(?!(?<=-\s\d\d\.\s)\d\d%)|(?<=%)\.(?=[A-ZА-ЯЁ])|\n"
    r"|(?<!\b\w)(?<!\bобл)(?<!\bим)\.\s+(?=[«\"(]?[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ]))"
)  # the lookahead spares trying the lookbehinds at every letter
# A sentence that points back at the place the one before it named: "Самая высокая явка в Шымкенте.
# Там ... 57,03 %", "Ақтөбе облысында ... Онда ... 34,3 пайызы", "There, 40% voted".
_POINTER = re.compile(r"(?<!\w)(?:там|здесь|онда|мұнда|сонда|there|here)(?!\w)", re.IGNORECASE)
_ANAPHORA = re.compile(r"\s*(?:там|здесь|онда|мұнда|сонда|there|here)\b", re.IGNORECASE)
# A national sentence that opens on a pointer ("This amounts to 55.3%", "Это составляет") is read with the
# sentence before it: a place named there makes the figure that place's, not the country's.
_BACK_REFERENCE = re.compile(r"\s*(?:this|that|это|бұл)\b", re.IGNORECASE)
# Digit first, as _TIME: "12,5", "12 345" or "12.5" after no letter, digit, dot or comma.
_NUMBER = re.compile(
    r"(?P<num>\d(?<![\w.,]\d)(?:\d?,\s\d{1,2}(?=\s*(?:%|процент|пайыз|paıyz|paiyz))|(?<=-\s\d)\d\.\s\d\d(?=%)|"
    r"\d{0,2}(?:[ \u00a0\u202f]\d{3})+|\d*(?:[.,]\d+)?))"
    r"(?P<pct>\s*(?:%|процент\w*|пайыз\w*|percent|per\s+cent))?(?![\w])",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NAME_BREAK = re.compile(r"[,;:()«»\"|/]| - ")
# Where an unpaired segment splits into sub-segments; "- 80 и Южно-Казахстанской - 78,76": "и" after a figure too.
_PIECES = re.compile(r",\s+|\s+\|\s+(?=\D)|(?<=\d)\s+(?:и|and|және|jáne)\s+(?=[^\W\d_])")
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
    # Names placed by an unambiguous near match: {"name": as written, "code", "value", "as": spelling}.
    corrected: list[dict[str, Any]] = field(default_factory=list)
    next_release: datetime | None = None  # the commission's announced time of its next release

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
            "corrected": self.corrected,
            "next_release": self.next_release.isoformat() if self.next_release else None,
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


@functools.lru_cache(maxsize=64)
def _compiled(selector: str) -> CSSSelector:
    return CSSSelector(selector, translator="html")


def css(root: lxml.html.HtmlElement, selector: str) -> list[lxml.html.HtmlElement]:
    """``root.cssselect(selector)`` with the selector compiled once per process, not per page."""
    return cast(list[lxml.html.HtmlElement], _compiled(selector)(root))


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
    return document_text(doc, selector)


def _cell_text(cell: lxml.html.HtmlElement) -> str:
    """``cell.text_content()``: an element with no child holds only its own text (most cells), read
    without the XPath evaluation text_content runs."""
    return (cell.text or "") if len(cell) == 0 else str(cell.text_content())


_OPENS_LINE = frozenset(("li", "tr", "p", "div"))  # blocks whose own text starts on a line of its own
_NOT_ELEMENTS = (etree.Comment, etree.ProcessingInstruction)  # their text is none of the page's


def document_text(doc: lxml.html.HtmlElement, selector: str | None = None) -> tuple[str, bool]:
    """:func:`html_to_text` of a parsed page (which it rewrites: read anything else from it first)."""
    for bad in list(doc.iter("script", "style", "noscript")):
        bad.drop_tree()
    root, found = doc, True
    if selector:
        matches = css(doc, selector)
        if matches:
            root = matches[0]
        else:
            found = False
    text = _walked_text(root)
    return (_rewritten_text(root) if text is None else text), found


def _opening(el: lxml.html.HtmlElement) -> str:
    """An element's own text as _rewritten_text leaves it: a row's is its cells joined."""
    tag = el.tag
    if tag == "tr":
        text = " | ".join([" ".join(_cell_text(cell).split()) for cell in el if cell.tag in _CELL])
    else:
        text = el.text or ""
    return "\n" + text if text and tag in _OPENS_LINE else text


def _closing(el: lxml.html.HtmlElement) -> str:
    """An element's tail as _rewritten_text leaves it."""
    tail = el.tail or ""
    if el.tag in _CELL:
        return " | " + tail
    if el.tag in _BLOCK:
        return "\n" + tail
    return tail


def _walked_text(root: lxml.html.HtmlElement) -> str | None:
    """What _rewritten_text returns, read off the tree in one walk without rewriting it (setting the
    texts and tails on the tree, then reading it back whole, costs about twice as much).

    The text of every node in document order, the root's tail aside, as text_content gives it: an
    element's text, its children's, then its tail; a comment or processing instruction gives its
    tail only; a row gives its cells and nothing under them. None if the tree holds an entity
    reference (whose text text_content resolves): read that one by rewriting it."""
    parts = [_opening(root)]
    if root.tag == "tr":
        return parts[0]
    stack = [(root, iter(root))]
    while stack:
        el, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if stack:  # an element closed (the root's tail is not the page's)
                parts.append(_closing(el))
            continue
        tag = child.tag
        if not isinstance(tag, str):
            if tag not in _NOT_ELEMENTS:
                return None
            parts.append(child.tail or "")
        elif tag == "tr":
            parts += [_opening(child), _closing(child)]
        else:
            parts.append(_opening(child))
            stack.append((child, iter(child)))
    return "".join(parts)


def _rewritten_text(root: lxml.html.HtmlElement) -> str:
    """The text, one line per block element and cells joined by " | ", by rewriting the tree."""
    for row in list(root.iter("tr")):
        # One line per row with cells joined, whatever blocks the cells hold inside.
        cells = [" ".join(_cell_text(cell).split()) for cell in row if cell.tag in _CELL]
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
            if el.tag in _OPENS_LINE and el.text:
                el.text = "\n" + el.text
    return str(root.text_content())


class _Item(NamedTuple):
    """A name (R) or a figure (V) in a segment; a tuple, as a release makes thousands of them."""

    start: int
    end: int
    kind: Literal["R", "V"]
    code: str | None = None  # R: the code, None when known but not in force
    text: str = ""
    value: float = 0.0
    problem: str = ""


_START = operator.attrgetter("start")


@functools.lru_cache(maxsize=1 << 16)
def _lookup(gazetteer: Gazetteer, on: date | None, text: str) -> tuple[str | None, str] | None:
    """(code, "") for a known name in any of its forms; (None, why) for a known unit not in force on
    `on` or a form two units share; None if unknown.

    Cached across releases: every release of a day repeats the same few hundred word windows, and
    normalising them is most of the parser's time.
    """
    codes = _forms(gazetteer, text)
    if not codes:
        return None
    if on is not None:
        in_force = [c for c in codes if gazetteer.get(c).in_force(on)]
        if not in_force:
            code = min(codes)
            return None, f"{gazetteer.get(code).name} ({code}) was not in force on {on} (asked for {text!r})"
        codes = frozenset(in_force)
    if len(codes) > 1:
        return None, f"{text!r} may be any of {sorted(codes)}"
    return next(iter(codes)), ""


_is_unit_word = morph.is_unit_word


# A name followed by these is the clock or the commission, not a figure's owner ("по времени Астаны",
# "Астана уақыты бойынша", "комиссиями городов Астана и Алматы"); not "сайлаушылардың" (voters').
_NOT_OWNER_AFTER = ("времен", "уақыт", "уакыт", "time", "комисси", "избирательн", "сайлау", "election", "commission",
                    "аумақтық", "территориальн", "territorial")  # fmt: skip
_NOT_OWNER_BEFORE = ("времен", "time")
_CLOCK_AFTER = ("времен", "уақыт", "уакыт", "time")
# A cardinal direction before a name that did not take it in qualifies it into another place
# ("Оңтүстік астанамыз" = Almaty, "южная столица", "northern Kazakhstan"): skeletons, any script.
_SUPERLATIVE = frozenset(("больше", "меньше", "более", "менее", "выше", "ниже", "лучше", "хуже", "чаще", "активнее"))
_QUALIFIERS = ("ontustik", "soltustik", "batis", "shigis", "iujn", "severn", "zapadn", "vostochn",
               "south", "north", "west", "east")  # fmt: skip


class _Resolver:
    def __init__(self, gazetteer: Gazetteer, on: date | None) -> None:
        self.gazetteer, self.on = gazetteer, on

    def __call__(self, text: str) -> tuple[str | None, str] | None:
        return _lookup(self.gazetteer, self.on, text)


def _plain_gap(gap: str) -> bool:
    """Whether words this far apart are read as separate words by every form of lookup."""
    return gap == " " or all(ch.isspace() or ch in "-." for ch in gap)


def _mentions(segment: str, blocked: list[tuple[int, int]], resolve: _Resolver, owners: bool = True) -> list[_Item]:
    """Region names in the segment: greedy longest word windows that the gazetteer knows.

    Names never span a blocked part (the numbers), so the answer depends only on the segment with
    each of those parts cut down to one blank; it is cached on that, as the same lines recur release
    after release with other figures.
    """
    parts, shifts, pos, cut = [], [], 0, 0  # shifts: (position in the key, characters cut before it)
    for start, end in sorted(blocked):
        if start < pos:  # overlapping spans: the part past what is already cut
            start = pos
            if start >= end:
                continue
        parts += [segment[pos:start], _BLANK]
        cut += end - start - 1
        pos = end
        shifts.append((start - (cut - (end - start - 1)) + 1, cut))
    parts.append(segment[pos:])
    items = _mentions_in(resolve.gazetteer, resolve.on, "".join(parts), owners)
    if not shifts:
        return list(items)
    out = []
    for item in items:
        shift = 0
        for at, c in reversed(shifts):
            if at <= item.start:
                shift = c
                break
        out.append(_Item(item.start + shift, item.end + shift, "R", item.code, item.text, problem=item.problem))
    return out


_BLANK = "\x00"
_NAME_BREAK_OR_BLANK = re.compile(_NAME_BREAK.pattern + "|\x00+")
# A word, or what parts names (told apart by group): a segment's words and breaks in one pass.
_WORD_OR_BREAK = re.compile(rf"(?P<word>{_WORD.pattern})|{_NAME_BREAK_OR_BLANK.pattern}")


@functools.lru_cache(maxsize=1 << 14)
def _mentions_in(gazetteer: Gazetteer, on: date | None, segment: str, owners: bool = True) -> tuple[_Item, ...]:
    """`owners` False: every name but the clock's ("по времени Астаны"), a commission's too."""
    items = []
    for start, end, text, unit_beside in _windows_in(gazetteer, segment, owners):
        code, problem = _lookup(gazetteer, on, text) or (None, "")
        if code is not None and unit_beside:
            # "Алматы" beside a unit word the name did not take in: the whole phrase names
            # something else (Алматы облысы is not Алматы); never place it.
            code, problem = None, f"unit word beside {text!r} not understood"
        items.append(_Item(start, end, "R", code, text.strip(), problem=problem))
    return tuple(items)


@functools.lru_cache(maxsize=1 << 14)
def _windows_in(gazetteer: Gazetteer, segment: str, owners: bool) -> tuple[tuple[int, int, str, bool], ...]:
    """The word windows of `segment` that name a known unit, whatever the day (which of them is in
    force is the caller's question): (start, end, text, whether a unit word stands beside it).
    Cached apart from the day, as the days of a benchmark or a backfill share their lines."""
    could_name = gazetteer.could_name
    found: list[tuple[int, int, str, bool]] = []
    runs: list[list[re.Match[str]]] = [[]]  # the words between two breaks (_NAME_BREAK_OR_BLANK)
    for m in _WORD_OR_BREAK.finditer(segment):
        if m.lastgroup == "word":
            runs[-1].append(m)
        elif runs[-1]:
            runs.append([])
    for words in runs:
        # A window holding a word no known form has, set off by plain gaps, cannot be a name: it is
        # skipped without a lookup (the lookup would say None), which is most windows of a release.
        # next_dead[k]: the first such word at or after k; next_break[k]: the first gap at or after
        # k (between words g and g+1) that is not plain.
        n = len(words)
        next_dead, next_break = [n] * (n + 1), [n] * (n + 1)
        for k in range(n - 1, -1, -1):
            next_dead[k] = k if not could_name(words[k].group()) else next_dead[k + 1]
            if k < n - 1 and not _plain_gap(segment[words[k].end() : words[k + 1].start()]):
                next_break[k] = k
            else:
                next_break[k] = next_break[k + 1]
        i = 0
        while i < n:
            # Skipped: the widths taking in the next dead word but no gap that is not plain.
            dead, gap = next_dead[i] - i, next_break[i] - i + 1
            for width in range(min(_MAX_WINDOW, n - i), 0, -1):
                if dead < width <= gap:
                    continue
                start, end = words[i].start(), words[i + width - 1].end()
                text = segment[start:end]
                if not _forms(gazetteer, text):
                    continue
                before = words[i - 1].group().casefold() if i else ""
                after = words[i + width].group().casefold() if i + width < n else ""
                if before and morph.skeleton(before)[0].startswith(_QUALIFIERS):
                    pass  # "Оңтүстік астанамыз Алматыда": the southern capital is not the capital
                elif before in _SUPERLATIVE and text.casefold() == "всего":
                    pass  # "меньше всего явка в Алматы": "least", not the country's total
                elif not (
                    (after.startswith(_NOT_OWNER_AFTER if owners else _CLOCK_AFTER) and not after.startswith("сайлауш"))
                    or before.startswith(_NOT_OWNER_BEFORE)
                ):
                    beside = bool((after and _is_unit_word(after)) or (before and _is_unit_word(before)))
                    found.append((start, end, text, beside))
                i += width
                break
            else:
                i += 1
    return tuple(found)


@functools.lru_cache(maxsize=1 << 16)
def _forms(gazetteer: Gazetteer, text: str) -> frozenset[str]:
    """:meth:`Gazetteer.find_forms`, cached: a release repeats the same few hundred windows."""
    return gazetteer.find_forms(text)


def _number(text: str) -> float:
    """A _NUMBER's figure: decimal comma or dot, thousands set off by any of its spaces."""
    return float(text.replace(",", ".").replace(" ", "").replace("\u00a0", "").replace("\u202f", ""))


def _numbered_list(patterns: list[str]) -> list[str]:
    """Give each alternative its own `val<i>` group (a regex names a group once)."""
    return [p.replace("(?P<val>", f"(?P<val{i}>") for i, p in enumerate(patterns)]


_VAL = (
    r"(?P<val>\d(?<![\d.,]\d)(?:\d?(?:[.,]\s?\d{1,2})?|00))\s*(?:%|процент\w*|пайыз\w*|paıyz\w*|paiyz\w*|percent|per\s+cent)"
    r"(?:\s*-?\s*(?:ы|і|ін|ын)\b)?"
)
# Up to a few words (no figures) between a cue and its value: "явка избирателей ... составила".
_GAP = r"(?:\s+[^\W\d_]+\.?){0,5}?"
# The national figure in each language's own sentence, in two tiers.
#
# "country": the words say the figure is the whole country's ("от общего количества", "жалпы
# санының", "Республика бойынша", "по стране", "nationwide", "of the total"). Read unless the
# sentence names a region or city (then the figure may be that unit's).
# "voters": the sentence's subject is the voters or the turnout ("явка составила X%", "проголосовали
# X% избирателей", "сайлаушылардың X пайызы", "turnout stood at X%"): the country's figure only when
# the sentence names no place at all, not even "в городе" or "in the region".
# Both are read only as a share of voters (a % word), at the release's own hour, never as a bound
# ("более 50%"), a change ("выросла на 10%"), a vote for or against, or another election's figure.
_NATIONAL_PATTERNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    # ru
    (
        "country",
        ("от", "из"),
        rf"{_VAL}\s+(?:от|из)\s+(?:общего|всех|числа\s+(?:всех|включ|зарегистр)|включ[её]нных|зарегистрированных)",
    ),
    (
        "country",
        ("стран", "республик", "казахстан", "целом", "общ", "итогов"),
        r"(?:(?:в\s+целом\s+)?по\s+(?:всей\s+)?(?:стране|республике|Казахстану|РК)|в\s+целом|в\s+масштабах\s+(?:всей\s+)?"
        r"страны|(?:общ(?:ая|ий|енациональн\w+)|итогов\w+)(?:\s+уровень)?\s+явк\w*)"
        rf"{_GAP}\s*[-:]?\s*{_VAL}",
    ),
    (
        "country",
        ("стран", "республик", "казахстан", "целом"),
        rf"{_VAL}\s+(?:в\s+целом|по\s+(?:всей\s+)?(?:стране|республике|Казахстану))",
    ),
    ("voters", ("явк",), rf"явк\w*{_GAP}\s*[-:]?\s*{_VAL}"),
    (
        "voters",
        ("голос", "участ", "бюллетен"),
        r"(?:проголосовал\w*|голосовали|(?:приняли|принимают|приняло)\s+участие|участие(?:\s+в\s+\w+)?\s+приняли|"
        r"пришли\s+на\s+(?:избирательные\s+)?участки|получили\s+(?:избирательные\s+)?бюллетени|бюллетени\s+получили|"
        rf"отдали\s+(?:свои\s+)?голоса){_GAP}\s+{_VAL}",
    ),
    (
        "voters",
        ("избирател", "граждан", "казахстанц", "участник", "голосующ", "электорат", "проголосовал"),
        rf"{_VAL}\s+(?:от\s+(?:числа\s+)?)?(?:избирателей|граждан|казахстанцев|участников|голосующих|электората|"
        r"проголосовал\w*)",
    ),
    # kk (Cyrillic)
    ("country", ("жалпы",), rf"жалпы\s+сан\w*\s+{_VAL}"),
    (
        "country",
        ("бойынша", "көлемінде"),
        rf"(?:Республика|Еліміз|Ел|Қазақстан|бүкіл\s+ел)\s+(?:бойынша|көлемінде){_GAP}\s*[-:]?\s*{_VAL}",
    ),
    ("country", ("барлық",), rf"барлық\s+(?:адам|сайлаушы|азамат)\w*{_GAP}\s+{_VAL}"),
    (
        "voters",
        ("сайлаушы", "азамат", "қазақстандық", "қатыс", "белсенділ"),
        rf"(?<!\w)(?:сайлаушы|азамат|қазақстандық|дауыс\s+берген|сайлауға\s+қатыс|қатысу|белсенділі)\w*{_GAP}\s+{_VAL}",
    ),
    ("voters", ("сайлаушы", "азамат"), rf"{_VAL}\s+(?:сайлаушы|азамат)\w*"),
    # kk (Latin, the alphabets of 2017, 2018 and 2021)
    ("country", ("jalpy",), rf"jalpy\s+san\w*\s+{_VAL}"),
    (
        "country",
        ("bo",),
        rf"(?:Resp[uúýw]bl[iıí]ka|El[iıí]m[iıí]z|El|Qazaqstan)\s+bo[iıí']*ynsha{_GAP}\s*[-:]?\s*{_VAL}",
    ),
    ("country", ("barlyq",), rf"barlyq\s+(?:adam|sa[iıí]la|azamat)\w*{_GAP}\s+{_VAL}"),
    (
        "voters",
        ("sa", "azamat", "qatys"),
        rf"(?:sa[iıí]la[uúýw']*sh[yı]|azamat|qatys[uúýw])\w*{_GAP}\s+{_VAL}",
    ),
    # en
    ("country", ("of",), rf"{_VAL}\s+of\s+(?:the\s+)?(?:all|total|registered)"),
    (
        "country",
        ("nation", "country", "kazakhstan", "overall", "total"),
        r"(?:nation-?wide|country-?wide|nationally|across\s+(?:the\s+country|Kazakhstan|the\s+republic)|in\s+Kazakhstan|"
        r"(?:throughout|in)\s+the\s+country|(?:national|overall|total)\s+(?:voter\s+)?turnout)"
        rf"{_GAP}\s*[-:]?\s*{_VAL}",
    ),
    ("country", ("nation", "country"), rf"{_VAL}\s+(?:nation-?wide|country-?wide|nationally|across\s+the\s+country)"),
    ("voters", ("turnout",), rf"turnout{_GAP}\s*[-:]?\s*{_VAL}"),
    (
        "voters",
        ("voter", "turnout", "electorate", "citizens"),
        rf"{_VAL}\s+(?:of\s+(?:[^\W\d_]+\s+){{0,2}}?)?(?:voters?|turnout|electorate|citizens)",
    ),
    (
        "voters",
        ("vot", "ballot", "part"),
        r"(?:voted|cast\s+(?:their\s+)?(?:ballots|votes)|took\s+part|participated|received\s+(?:their\s+)?ballots|"
        rf"ballots\s+were\s+received\s+by){_GAP}\s+{_VAL}",
    ),
    # A count restated as a share: "..., что составляет 70,98%", "7 млн казахстанцев, или 57,68%",
    # "This amounts to 68.44% of the residents on the voting list".
    ("voters", ("состав", "или"), rf"(?:(?:что|это)\s+состав\w+|,\s+или)\s+{_VAL}"),
    ("voters", ("amount", "represent"), rf"(?:amount(?:s|ed|ing)?\s+to|representing)\s+{_VAL}"),
)
# The patterns that open on a word, each behind a lookahead on the letters it can start with (which
# spares trying its alternatives at every position); those that open on the figure, joined into one
# alternation (one pass over the text's digits; a "country" reading first) and told apart by group.
_NATIONAL_FIRST = (
    "", "впоиВПОИ", "", "яЯ", "пгубоПГУБО", "", "жЖ", "реқбРЕҚБ", "бБ", "сақдбСАҚДБ", "", "jJ", "reqREQ", "bB",
    "saqSAQ", "", "ncaitoNCAITO", "", "tT", "", "vctprbVCTPRB", "чЧэЭ,", "arAR",
)  # fmt: skip
_NATIONAL_RES = tuple(
    (tier, cues, re.compile(f"(?=[{first}])" + p, re.IGNORECASE))
    for (tier, cues, p), first in zip(_NATIONAL_PATTERNS, _NATIONAL_FIRST, strict=True)
    if first
)
_NATIONAL_CUES = frozenset(cue for _, cues, _ in _NATIONAL_PATTERNS for cue in cues)
_AFTER_VALUE = sorted(
    (tier, p.removeprefix(_VAL), cues)
    for (tier, cues, p), first in zip(_NATIONAL_PATTERNS, _NATIONAL_FIRST, strict=True)
    if not first
)


@functools.lru_cache(maxsize=64)
def _national_by_value(active: tuple[int, ...]) -> re.Pattern[str]:
    """The figure-first patterns (by index in _AFTER_VALUE) joined into one: only those whose cue
    words the release holds, so a Russian release does not try the English ones at every figure."""
    rests = "|".join(f"(?P<{_AFTER_VALUE[i][0]}{i}>{_AFTER_VALUE[i][1]})" for i in active)
    # Every one of them goes on with blanks and then a word: a figure followed by anything else (the
    # end of a list's line, the next number) is passed over without trying them one by one.
    return re.compile(_VAL + r"(?=\s+[^\W\d_])(?:" + rests + ")", re.IGNORECASE)


_NATIONAL_BY_ANY_VALUE = _national_by_value(tuple(range(len(_AFTER_VALUE))))


def _by_value_matches(text: str, present: set[str]) -> list[re.Match[str]]:
    """The matches of ``_national_by_value(active)`` over the text, `active` the figure-first patterns
    with a cue word `present` in the folded text, without compiling a pattern per set of cues (a compile
    costs as much as reading a few releases).

    All the patterns joined, compiled once, are tried first. When each match they find is by an
    active pattern, the active ones alone find the same matches: at each place the joined pattern
    takes the first way to match in its order, and the narrower one, whose alternatives keep the
    same order, has that same way first. A match by an inactive pattern (its cue words absent, which
    should not happen) sends the text to the narrower pattern itself."""
    active = tuple(i for i, (_, _, cues) in enumerate(_AFTER_VALUE) if not present.isdisjoint(cues))
    if not active:
        return []
    found = list(_NATIONAL_BY_ANY_VALUE.finditer(text))
    names = {f"{_AFTER_VALUE[i][0]}{i}" for i in active}
    if all(m.lastgroup in names for m in found):
        return found
    return list(_national_by_value(active).finditer(text))


# Sentence ends: a line, ";", or ". ! ?" before a capital (not after a one-letter or short
# abbreviation: "г. Астана", "обл. Абай" stay in their sentence).
# The end is taken first (the engine skips to those characters), then what stands before a "." checked.
_SENTENCE_END = re.compile(
    r"[\n;!?.](?:(?<=[\n;!?])|(?<!\b\w\.)(?<!\bобл\.)(?<!\bим\.)(?=\s*[«\"(]?[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ]))"
)
# A place without a name ("в городе", "в регионе", "in the region"): the figure is that place's.
_PLACE = re.compile(
    r"\b(?:город\w*|г\.|област\w*|обл\.|регион\w*|район\w*|округ\w*|сел[еоа]\w*|аул\w*|мегаполис\w*|облыс\w*|"
    r"қала\w*|өңір\w*|аудан\w*|ауыл\w*|oblys\w*|qala\w*|óńir\w*|aýdan\w*|region\w*|city|cities|oblast\w*|"
    r"province\w*|district\w*|area\w*|local\w*(?!\s+(?:[^\W\d_]+\s+)?time))",  # "local (Astana) time": a clock
    re.IGNORECASE,
)
# The commissions that report, by level: places that own no figure ("по данным, представленным
# областными, городов Астана и Алматы избирательными комиссиями", "облыстардың, республикалық маңызы
# бар қалалардың, астананың сайлау комиссиялары", "regional ... commissions").
_COMMISSION_WORD = r"(?:к[оө]м[иій]сс[иій]\w*|commissions?)"
_LEVELS = (
    r"(?:област\w*|облыс\w*|город\w*|столиц\w*|республ\w*|значени\w*|территориальн\w*|окружн\w*|избирательн\w*|"
    r"маңызы|бар|аумақ\w*|қала\w*|елорда\w*|астана\w*|алматы\w*|шымкент\w*|нур-султан\w*|нұр-сұлтан\w*|regions?|oblasts?|"
    r"almaty|astana|nur-sultan|shymkent|city|cities|district\w*|territorial|capital|election|electoral|of|republican|"
    r"significance|the|сайлау|и|мен|және|and)"
)
_COMMISSIONS = re.compile(
    rf"\b(?:областн\w*|облыст\w*|regional|oblast)(?:\W+{_LEVELS}){{0,12}}?\W+{_COMMISSION_WORD}"
    r"(?:\s+и\s+комисси\w*\s+город\w*\s+[^\W\d_]+(?:\s+и\s+[^\W\d_]+)?)?"
    rf"|{_COMMISSION_WORD}\s+(?:of\s+(?:the\s+)?(?:regions|oblasts)|областн\w*|областей)(?:\W+{_LEVELS}){{0,12}}",
    re.IGNORECASE,
)
# A dateline opening the text ("ASTANA -", "НҰР-СҰЛТАН, 10 қаңтар -"): where the story was filed.
_DATELINE = re.compile(r"\s*(?:[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ][A-ZА-ЯЁӘҒҚҢӨҰҮҺІ-]+\s?){1,3}(?=\s*[,-])")
# Another figure than this turnout: a vote for or against, a change, a comparison, an earlier vote.
_NOT_TURNOUT = re.compile(
    r"\b(?:за|против|выбрал\w*|избрал\w*|поддержал\w*|поддержк\w*|воздержал\w*|кандидат\w*|парти\w*|набрал\w*|вырос\w*|вырастет|вырасти|"
    r"вырост\w*|увеличил\w*|вырос|прирост\w*|рост\w*|снизил\w*|сравнени\w*|чем|прошл\w*|предыдущ\w*|"
    r"in\s+favou?r|against|candidate\w*|part(?:y|ies)|increase\w*|rose|risen|grew|grown|up\s+by|compared|than|"
    r"previous\w*|last|versus|vs|жақта\w*|қарсы|үміткер\w*|өсті|артты|өткен|алдыңғы|бұрынғы|салыстыр\w*)\b",
    re.IGNORECASE,
)
# A year that is not part of a date ("в 2019 году", "in 2019"; not "2021 жылғы 10 қаңтарда").
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)(?!\s*(?:ж\.|жыл\w*|год\w*|г\.|y\.)?\s*\d{1,2}\s+[^\W\d_])")
# A figure inside a range ("от 40% до 70%", "from 40 to 70%", "40-70%").
_RANGE_BEFORE = re.compile(
    r"(?:\bот|\bдо|\bfrom|(?<!amount\s)(?<!amounts\s)(?<!amounted\s)(?<!amounting\s)\bto|\bbetween|\bмежду|\d\s*-)\s*$",
    re.IGNORECASE,
)  # not "amounts to 68.44%"
_RANGE_AFTER = re.compile(r"\s*(?:-|до\b|to\b|and\b|и\b)\s*\d", re.IGNORECASE)


def _sentence_bounds(text: str) -> list[int]:
    """Where each sentence starts (0 first): see _SENTENCE_END."""
    return [0, *(m.end() for m in _SENTENCE_END.finditer(text))]


def _names_a_place(sentence: str, resolve: _Resolver, voters: bool) -> bool:
    """Whether the sentence names a region or city (any known name but the country's, the clock's
    "времени столицы" aside); for a "voters" sentence also a place without a name ("в городе").
    Cached with every digit as 0: releases repeat their sentences with other figures."""
    return _names_a_place_in(resolve.gazetteer, resolve.on, _ANY_DIGIT.sub("0", sentence), voters)


_ANY_DIGIT = re.compile(r"\d")
_DIGIT_LINE = re.compile(r"^.*\d.*$", re.MULTILINE)  # a line ("." is all but "\n") holding a digit


@functools.lru_cache(maxsize=1 << 12)
def _names_a_place_in(gazetteer: Gazetteer, on: date | None, sentence: str, voters: bool) -> bool:
    resolve = _Resolver(gazetteer, on)
    if "омисси" in sentence or "ommission" in sentence or "өмйссй" in sentence:
        sentence = _COMMISSIONS.sub(lambda m: " " * len(m.group()), sentence)
    if voters and (_PLACE.search(sentence) or _POINTER.search(sentence)):
        return True  # "в городе", or "мұнда" (here): the place named before
    spans = [(m.start(), m.end()) for m in _NUMBER.finditer(sentence)]
    return any(item.code != NATIONAL for item in _mentions(sentence, spans, resolve, owners=False))


def _governing_time(stated: list[tuple[int, time]], lo: int, hi: int, pos: int) -> time | None:
    """The hour a figure at `pos` is stated for: the last one before it in its sentence, else the first after."""
    before = [t for p, t in stated if lo <= p < pos]
    if before:
        return before[-1]
    return next((t for p, t in stated if pos <= p < hi), None)


def _national(
    text: str,
    at: time | None,
    stated: list[tuple[int, time]],
    resolve: _Resolver,
    sections: list[tuple[int, int, time]] | None = None,
) -> tuple[float | None, list[tuple[int, int]], str]:
    """The national figure stated in a sentence of the release's own (see _NATIONAL_PATTERNS), the
    spans of its value (masked afterwards) and a note when two such sentences disagree (then none is
    returned: never guess which is right)."""
    folded = text.casefold()
    present = {cue for cue in _NATIONAL_CUES if cue in folded}  # each cue word looked for once
    # Each value once, with the strongest tier any pattern reads it in, and that pattern's match.
    candidates: dict[tuple[int, int], tuple[bool, int, int]] = {}
    for tier, cues, pattern in _NATIONAL_RES:
        if present.isdisjoint(cues):
            continue
        for m in pattern.finditer(text):
            span, voters = (m.start("val"), m.end("val")), tier == "voters"
            if span not in candidates or candidates[span][0] > voters:
                candidates[span] = (voters, m.start(), m.end())
    for m in _by_value_matches(text, present):
        span, voters = (m.start("val"), m.end("val")), m.lastgroup is not None and m.lastgroup.startswith("voters")
        if span not in candidates or candidates[span][0] > voters:
            candidates[span] = (voters, m.start(), m.end())
    if not candidates:
        return None, [], ""
    bounds = _sentence_bounds(text)
    year = resolve.on.year if resolve.on else None
    values: list[float] = []
    spans, stated_again = [], []  # stated_again: the same figure in a commission's sentence read as no one's
    for (vs, ve), (voters, ms, me) in sorted(candidates.items()):
        at_ = bisect.bisect_right(bounds, ms) - 1
        lo = bounds[at_]
        if at_ and _ANAPHORA.match(text, lo):
            lo = bounds[at_ - 1]  # "Самая низкая явка - в Алматы. Там ... 11 % граждан": Almaty's
        elif _BACK_REFERENCE.match(text, lo):
            # "This amounts to 55.3%": read with the sentence before it (from its last ". ", as sentence
            # bounds do not split before a figure: "... across the country. 8,030,739 received ...")
            dot = text.rfind(". ", 0, max(0, lo - 1))
            lo = max(dot + 2 if dot >= 0 else 0, text.rfind("\n", 0, lo) + 1)  # never past its line
        hi = next((b for b in bounds if b > me), len(text) + 1) - 1
        sentence = text[lo:hi]
        if (
            _APPROX_BEFORE.search(text[max(0, vs - 24) : vs])
            or _RANGE_BEFORE.search(text[max(0, vs - 12) : vs])
            or _APPROX_AFTER.match(text, ve)
            or _RANGE_AFTER.match(text, _PCT_AFTER.match(text, ve).end())  # type: ignore[union-attr]
        ):
            continue  # a bound or a range, not the figure
        if at is not None and (t := _governing_time(stated, lo, hi, vs)) is not None and _minutes_apart(t, at) > 10:
            continue  # stated for another hour
        if sections and any(a <= vs < b for a, b, _ in sections):
            continue  # in a part of the text that gives another hour's figures
        if _NOT_TURNOUT.search(sentence) or _EARLIER.search(sentence):
            continue
        if any(int(y.group()) != year for y in _YEAR.finditer(sentence)):
            continue  # another election's figure, or a count read as a year
        # A "voters" figure is another unit's when the sentence names a place; a "country" figure when
        # a name stands in its own clause, or before it with no figure of its own in between ("в
        # Астане 40%, а общая явка 60%" is the country's 60; "в Астане общая явка 40%" is Astana's).
        start, scope = lo, sentence
        if not voters:
            start = max((f.end() for f in _PCT_FIGURE.finditer(text, lo, min(ms, vs))), default=lo)
            scope = text[start : (c.start() if (c := _CLAUSE_END.search(text, me, hi)) else hi)]
        if not text[:start].strip() and (d := _DATELINE.match(scope)):
            scope = " " * d.end() + scope[d.end() :]
        if _names_a_place(scope, resolve, voters):
            if not voters:
                stated_again.append((vs, ve))
            continue
        values.append(_number(text[vs:ve].replace(" ", "")))
        spans.append((vs, ve))
    spans += [(vs, ve) for vs, ve in stated_again if _number(text[vs:ve].replace(" ", "")) in values]
    exact = {v for v in values if v != round(v)}
    whole = {v for v in values if v == round(v)}
    if len(exact) > 1 or (not exact and len(whole) > 1):
        return None, spans, f"national figure stated twice: {sorted(set(values))}"
    if exact:
        (value,) = exact
        if any(int(value) != w for w in whole):
            return None, spans, f"national figure stated twice: {sorted(set(values))}"
        return value, spans, ""
    return (next(iter(whole)), spans, "") if whole else (None, spans, "")


_PCT_FIGURE = re.compile(r"\d\s*(?:%|процент\w*|пайыз\w*|paıyz\w*|paiyz\w*|percent|per\s+cent)", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[,;:]|\s-\s")
_PCT_AFTER = re.compile(
    r"\s*(?:%|процент\w*|пайыз\w*|paıyz\w*|paiyz\w*|percent|per\s+cent)?(?:\s*-?\s*(?:ы|і|ін|ын)\b)?"
)


# "Информация ... будет представлена в 14.00", "next update at 14:00", "The next operational information
# will be presented at 12:10", "data will be given at 12:10 p.m., 02:10 p.m.", "is to be available at",
# "келесі ... сағат 14.00-де".
_NEXT = re.compile(
    r"(?:будет\s+представлена|будут\s+представлены|будет\s+опубликована|"
    r"next\s+(?:[^\W\d_]+\s+){0,2}?(?:update|data|release|information|briefing|figures|report)\w*(?:\s+[^\W\d_]+){0,4}?|"
    r"(?:data|information|figures|numbers)(?:\s+[^\W\d_]+){0,4}?\s+(?:will|is\s+to|are\s+to)\s+be\s+"
    r"(?:presented|announced|given|available|released|published|provided)|"
    r"келесі\s+(?:\w+\s+){0,4}?сағат)\s+(?:в|at|к|by)?\s*(?P<h>\d{1,2})[.:](?P<m>\d{2})"
    r"(?:\s*(?P<ampm>[ap])\.?\s?m\b\.?)?",
    re.IGNORECASE,
)
# The further announced times of a list ("at 12:10 p.m., 02:10 p.m., 04:10 p.m."), masked too.
_NEXT_MORE = re.compile(
    r"(?:\s*-?\s*(?:[дт][еаә]|[dt][ea])(?!\w))?"
    r"(?:\s*,?\s*(?:(?:and|и|және|жане|жәнә|jáne|jane)\s+)?\d{1,2}[.:]\d{2}(?:\s*[ap]\.?\s?m\b\.?)?"
    r"(?:\s*-?\s*(?:[дт][еаә]|[dt][ea])(?!\w))?)*",
    re.IGNORECASE,
)
# A time the text says something will be published or given at ("сағат 22.00-де ұсынылады",
# "20:05-te jarııalanady", "завершение ... состоится в 21:00"): a schedule, never the as-of time.
_SCHEDULE_AFTER = re.compile(
    r"\s*-?\s*(?:[дт][еаә]|[dt][ea])?\s+(?:[^\W\d_]+\s+){0,2}?"
    r"(?:ұсыны\w*|жариял\w*|берілед\w*|беріледі|jar[ıi]+alan\w*|jariyalan\w*|usyn[yı]l\w*|ber[iı]led\w*)",
    re.IGNORECASE,
)
_SCHEDULE_BEFORE = re.compile(
    r"(?:состоится|состоятся|завершится|закончится|закроются|продлится|продлятся|будет\w*|будут|will)"
    r"(?:\s+[^\W\d_]+){0,3}?\s+(?:в|к|до|at|by|until)\s*$",
    re.IGNORECASE,
)
_NEXT_CUES = ("будет", "будут", "next", "келесі", " be ")  # one of which every _NEXT match holds
_SCHEDULE_CUES = ("ұсыны", "жариял", "берілед", "jar", "usyn", "ber", "состоятся", "состоится", "заверш", "законч",
                  "закро", "продл", "будет", "будут", "will")  # fmt: skip


# A time the Kazakh schedule sentence states ("Astana ýaqyty boıynsha 20:05-te jarııalanady").
_NEXT_KK = re.compile(r"(?P<h>\d(?<![\d.,:]\d)\d?)[.:-](?P<m>\d{2})(?P<ampm>(?!))?(?![\d%])")  # digit first
_DECIMAL = re.compile(r"\d+[.,]\d{1,2}")


def _values(
    segment: str, table: bool, approx: bool = True, whole: bool = True
) -> tuple[list[_Item], list[tuple[int, int]]]:
    """Candidate percentages: with a % sign if any has one, else decimals, else (tables) integers.
    `approx` False says the release holds no word of an approximate figure (_APPROX_WORDS); `whole`
    False that a whole number here may be a figure rounded in prose (see _rounding_prose): skipped."""
    with_pct: list[_Item] = []
    decimals: list[_Item] = []
    integers: list[_Item] = []
    spans = []
    approx = approx and _holds_any(segment, _APPROX_WORDS)
    for m in _NUMBER.finditer(segment):
        num = m.group("num")
        start, end = span = m.span()
        spans.append(span)
        if approx and (_APPROX_BEFORE.search(segment[max(0, start - 24) : start]) or _APPROX_AFTER.match(segment, end)):
            continue  # "более 64%", "64%-дан астамы", "over 60%": a bound, not the figure
        if not whole and num.isdecimal():
            continue  # "Қарағанды облысы -77%" among "80,66 %": the 77,39 of the list, rounded
        if m.group("pct"):
            rank = with_pct
        elif _DECIMAL.fullmatch(num):
            rank = decimals
        elif table and num.isdigit() and len(num) <= 3:
            rank = integers
        else:
            continue
        rank.append(_Item(start, end, "V", None, m.group().strip(), _number(num)))
    return with_pct or decimals or integers, spans


_APPROX_BEFORE = re.compile(
    r"(?:более|свыше|около|почти|порядка|примерно|больше|менее|over|more\s+than|about|nearly|almost|around|"
    r"less\s+than|above|exceed\w*|surpass\w*|roughly|approximately|приблизительно|шамамен|превысила|превысил|"
    r"превышает)(?:\s+чем)?\s*$",
    re.IGNORECASE,
)
_APPROX_AFTER = re.compile(
    r"\s*(?:%|процент\w*|пайыз\w*)?\s*-?\s*(?:[дтн][ае]н\s+(?:астам|асты|артық|жоғары|көп)|[гқк][ае]\s+жуы[қғ]|"
    r"жуы[қғ]|шамасында|астам\w*|артық|astam\w*|и\s+более|с\s+лишним|plus|or\s+more)",
    re.IGNORECASE,
)
# Words (case folded) without one of which neither pattern above can match: most releases hold none.
_APPROX_WORDS = (
    "более", "свыше", "около", "почти", "порядка", "примерно", "больше", "менее", "over", "more", "about",
    "nearly", "almost", "around", "less", "above", "exceeded", "превысил", "превышает", "астам", "асты",
    "артық", "жоғары", "көп", "жуық", "шамасында", "лишним", "plus",
    "exceed", "surpass", "roughly", "approximately", "приблизительно", "шамамен", "жуығ",
)  # fmt: skip


def _holds_any(text: str, words: tuple[str, ...]) -> bool:
    folded = text.casefold()
    return any(word in folded for word in words)


def _candidate_name(segment: str, spans: list[tuple[int, int]]) -> str:
    text = segment
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
    words = [w for w in _WORD.findall(text) if w.casefold() not in _STOPWORDS]
    return " ".join(words)


def _rounded_same(a: float, b: float) -> bool:
    """Whether one is the other written as a whole number (80 and 80,66; 32 and 32,25)."""
    whole, exact = (a, b) if a == round(a) else (b, a) if b == round(b) else (None, None)
    return whole is not None and exact is not None and whole != exact and int(exact) == whole


@functools.lru_cache(maxsize=1 << 12)
def _spelling(gazetteer: Gazetteer, code: str, text: str) -> str:
    """The name to key a figure by in the raw event: the source's own text when it is a spelling the
    gazetteer resolves exactly to `code`, else the unit's official name in the text's script (an
    inflected or misspelt form would not resolve past ingest: "Акмолинской области" becomes
    "Акмолинская область", "Алматы облысында" "Алматы облысы")."""
    found = gazetteer.find(text)
    if found is not None and found.code == code:
        return text
    unit = gazetteer.get(code)
    if _KAZAKH_CUE.search(text):
        return unit.name_kk or unit.name
    if _CYRILLIC.search(text):
        return unit.name_ru or unit.name
    return unit.name


_KAZAKH_CUE = re.compile(r"[әғқңөұүһі]|облыс|қала", re.IGNORECASE)
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


class _Collector:
    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        self.figures: dict[str, float] = {}
        self.names: dict[str, str] = {}
        self.conflicts: set[str] = set()
        self.unparsed: list[str] = []
        self.unknown: list[dict[str, Any]] = []
        self.near: list[tuple[str, float, str]] = []  # (name as written, value, segment): maybe a typo

    def place(self, mention: _Item, value: _Item, segment: str) -> None:
        if mention.code is None:
            self.unparsed.append(segment.strip())
            self.unknown.append({"name": mention.text, "value": value.value, "error": mention.problem})
            return
        code = mention.code
        if code in self.figures and _rounded_same(self.figures[code], value.value):
            # "80%" in a summary and "80,66%" in the list are one figure: keep the exact one.
            if value.value != round(value.value):
                self.figures[code] = value.value
            return
        if code in self.figures and self.figures[code] != value.value:
            self.conflicts.add(code)
            self.unparsed.append(f"{segment.strip()} (conflicts with {self.figures[code]} for {code})")
            return
        self.figures.setdefault(code, value.value)
        if code not in self.names:
            self.names[code] = self.spelling(code, mention.text)

    def spelling(self, code: str, text: str) -> str:
        return _spelling(self.gazetteer, code, text)

    def orphan(self, values: list[_Item], mentions: list[_Item], segment: str, spans: list[tuple[int, int]]) -> None:
        """Values the segment does not pair with one name each. With no known name beside a single
        value, the words around it are probably a misspelt region: report them with suggestions."""
        self.unparsed.append(segment.strip())
        candidate = _candidate_name(segment, spans)
        if len(values) == 1 and not mentions and 0 < len(candidate.split()) <= 4:
            self.near.append((candidate, values[0].value, segment.strip()))

    def correct(self, on: date | None) -> list[dict[str, Any]]:
        """Place a misspelt name only when exactly one unit this release has not named yet is near
        it (and no named one is nearer); anything else stays in `unknown` with suggestions."""
        corrected: list[dict[str, Any]] = []
        if not self.near:
            return corrected
        units = [u for u in self.gazetteer if not u.is_national and (on is None or u.in_force(on))]
        for name, value, segment in self.near:
            scores = _nearness(name, units, self.gazetteer)
            open_ = [(score, code) for code, score in scores.items() if code not in self.figures]
            named = max((score for code, score in scores.items() if code in self.figures), default=0.0)
            close = [(score, code) for score, code in open_ if score >= _NEAR]
            if len(close) == 1 and close[0][0] > named and value not in self.figures.values():
                code = close[0][1]
                self.figures[code] = value
                self.names[code] = self.spelling(code, name)
                self.unparsed.remove(segment)
                corrected.append({"name": name, "code": code, "value": value, "as": self.gazetteer.get(code).name})
            else:
                self.unknown.append({"name": name, "value": value, "suggestions": self.gazetteer.suggest(name)})
        return corrected


_NEAR = 88.0  # rapidfuzz ratio (0-100) of skeletons: one or two letters wrong in a region's name


def _nearness(name: str, units: list[Any], gazetteer: Gazetteer) -> dict[str, float]:
    """Best similarity of `name` (and its Kazakh suffix-stripped forms) to each unit's spellings."""
    words = morph.skeleton(name)
    # The name may carry words around it ("went to Pavodar region"): every run of 1-4 words.
    runs = [words[i:j] for i in range(len(words)) for j in range(i + 1, min(len(words), i + 4) + 1)]
    forms = {" ".join(run) for run in runs}
    tokens = words
    for i, token in enumerate(tokens):
        forms |= {" ".join([*tokens[:i], stem, *tokens[i + 1 :]]) for stem in morph.strip_kazakh_suffixes(token)}
    best: dict[str, float] = {}
    for unit in units:
        choices = [" ".join(morph.skeleton(s)) for s in gazetteer.spellings(unit.code)]
        for form in forms:
            hit = process.extractOne(form, choices, scorer=fuzz.ratio)
            if hit is not None:
                best[unit.code] = max(best.get(unit.code, 0.0), float(hit[1]))
    return best


def _apposed(mentions: list[_Item], values: list[_Item]) -> list[_Item]:
    """One mention for a name in apposition: "the capital city of Astana", "столица Астана" (two names
    of one unit with no figure between them)."""
    out = [mentions[0]]
    for item in mentions[1:]:
        last = out[-1]
        if (
            item.code is not None
            and item.code == last.code
            and not any(last.end <= v.start < item.start for v in values)
        ):
            out[-1] = last._replace(end=item.end)
        else:
            out.append(item)
    return out


def _pair(items: list[_Item]) -> list[tuple[_Item, _Item]] | None:
    """Pair names with values when they strictly alternate (R V R V or V R V R); else None."""
    if len(items) % 2 or not items:
        return None
    kinds = [item.kind for item in items]
    if kinds[0] == kinds[1] or kinds[2:] != kinds[:-2]:  # not two kinds in turn
        return None
    names, values = (items[::2], items[1::2]) if kinds[0] == "R" else (items[1::2], items[::2])
    return list(zip(names, values, strict=True))


_RESPECTIVELY = re.compile(r"\b(?:respectively|соответственно|тиісінше|сәйкесінше)\b", re.IGNORECASE)
_PARTY_SHARE = re.compile(
    r"(?<!\w)(?:парти[яиюейё]\w*|partii?a\w*|party|parties|кандидат\w*|candidate\w*|үміткер\w*|ümitker\w*|"
    r"umitker\w*|проголосовал\w*\s+за|voted\s+for|за\s+(?:[^\W\d_]+\s+)?президент\w*|выбрал\w*|избрал\w*)(?!\w)",
    re.IGNORECASE,
)


def _parse_segment(
    segment: str,
    resolve: _Resolver,
    out: _Collector,
    depth: int = 0,
    approx: bool = True,
    whole: bool = True,
    run: bool = False,
) -> None:
    table = run or " | " in segment
    values, spans = _values(segment, table, approx, whole)
    if not values:
        return
    if _PARTY_SHARE.search(segment):
        # "Қызылордалықтардың 74,46%-ы «Nur Otan» партиясын таңдады": a party's or a candidate's
        # share of the place's vote, not its turnout.
        out.unparsed.append(segment.strip())
        return
    mentions = _mentions(segment, spans, resolve)
    if len(mentions) > 1:
        mentions = _apposed(mentions, values)
    ordered = sorted(values + mentions, key=_START)
    pairs = _pair(ordered)
    # "The East Kazakhstan and the Abai regions ... 73.79% and 69.57%, respectively": every name, then
    # as many figures, paired in order because the text says so (never without the word)
    if (
        pairs is None
        and len(mentions) == len(values) > 1
        and _RESPECTIVELY.search(segment)
        and [item.kind for item in ordered] == ["R"] * len(mentions) + ["V"] * len(values)
    ):
        pairs = list(zip(ordered[: len(mentions)], ordered[len(mentions) :], strict=True))
    if pairs is not None:
        for mention, value in pairs:
            out.place(mention, value, segment)
        return
    if depth == 0 and len(pieces := _PIECES.split(segment)) > 1:
        # A run of "name figure" pieces without % signs ("Ақмола облысы бойынша 81, Ақтөбе облысы
        # бойынша 84,1, ..."): a whole number among its decimals is a figure too, as in a table.
        run = sum(1 for piece in pieces if _BARE_DECIMAL_END.search(piece)) >= 4
        for piece in pieces:
            _parse_segment(piece, resolve, out, depth + 1, approx, whole, run)
        return
    out.orphan(values, mentions, segment, spans)


def _refers_back(before: str, segment: str, resolve: _Resolver, out: _Collector, approx: bool, whole: bool) -> bool:
    """Place the one figure of a sentence that opens by pointing back ("Там", "Онда") on the one
    place the sentence before it names, when that one states no figure of its own; False (nothing
    placed) otherwise."""
    if _NUMBER.search(before):
        return False
    values, spans = _values(segment, " | " in segment, approx, whole)
    if len(values) != 1 or _mentions(segment, spans, resolve):
        return False
    named = _mentions(before, [], resolve)
    if len(named) != 1 or named[0].code in (None, NATIONAL):
        return False
    out.place(named[0], values[0], f"{before.strip()} {segment.strip()}")
    return True


_BARE_DECIMAL_END = re.compile(r"[^\W\d_]\s*-?\s*\d{1,2}[.,]\d{1,2}\s*$")
_TWO_DECIMALS = re.compile(r"\d[.,]\d\d(?!\d)\s*(?:%|процент|пайыз|paıyz|paiyz|percent)", re.IGNORECASE)


def _rounding_prose(text: str, approx: bool, resolve: _Resolver) -> bool:
    """Whether a whole-number figure in prose may be one rounded by the writer, not the commission's:
    the release gives its other figures to two decimals (the commission then writes "65,00"), or
    hedges a place's figure ("Шымкент - там больше 34%" beside "В Алматы 15%", which was 15,7; a
    hedged national figure, "превысила 35 процентов", says nothing of the regions' "38 процентов").
    Lists keep their whole numbers (the commission's own "- 16%" of 2011)."""
    if _TWO_DECIMALS.search(text):
        return True
    if not approx:
        return False
    bounds = None
    for m in _PCT_FIGURE.finditer(text):
        start = m.start()
        while start and text[start - 1].isdigit():
            start -= 1
        if _APPROX_BEFORE.search(text[max(0, start - 24) : start]) or _APPROX_AFTER.match(text, m.start() + 1):
            bounds = bounds or _sentence_bounds(text)
            lo = bounds[bisect.bisect_right(bounds, start) - 1]
            hi = next((b for b in bounds if b > start), len(text))
            if _names_a_place(text[lo:hi], resolve, True):
                return True
    return False


def _find_date(text: str, lang: Lang) -> date | None:
    m = _DATE_NUMERIC.search(text)
    if m:
        d0 = m.group("d0")
        with_year = (d0 + m["y"], m["m"], m["d"]) if m["y"] else (m["yy"], m["mm"], d0 + m["dd"])
        try:
            return date(int(with_year[0]), int(with_year[1]), int(with_year[2]))
        except ValueError:
            pass
    langs = ("ru", "kk", "en") if lang == "auto" else (lang,)
    for m in _date_words(text):
        day, word, year = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(5), m.group(4), m.group(6))
        for code in langs:
            for index, stem in enumerate(_MONTHS[code].split(), start=1):
                if word.casefold().startswith(stem):
                    try:
                        return date(int(year), index, int(day))
                    except ValueError:
                        break
    return None


_STRONG_KW = re.compile(r"по\s|as\s", re.IGNORECASE)
_STRONG_KK = re.compile(r"\s*-?\s*(?:[дт][еа][гғ]|[dt][ea][gǵğ])")
_SITUATION = re.compile(r"\s+(?:жағдай|жагдай|jaǵdaı|jagdai|jağdai)", re.IGNORECASE)
# The commission's Russian sentence goes on from its as-of to who received ballots: "по состоянию на
# 18:05 часов ... бюллетени получили" (a lead's "по состоянию на 18:00 рассказали" is the media's).
# Not in English: media put "received ballots" before the time as often as after it.
_REMINDER = re.compile(r"напомн\w*|ранее|прежде|в\s+прошлый", re.IGNORECASE)  # "Напомним, на 10:00 ..."
_BALLOTS = re.compile(r"бюллетени\s+получил|получили\s+бюллетени", re.IGNORECASE)
# A time on another zone's clock ("9:00 GMT", "(09:00 MSK)", "9:00 мск", "по московскому времени").
_OTHER_ZONE = re.compile(
    r"\s*\(?\s*(?:(?:GMT|UTC)(?!\s*\+\s*0?[56](?!\d))|MSK|мск|Moscow|по\s+московскому|по\s+Москве|московского|Мәскеу)",
    re.IGNORECASE,
)
_ZONE_CUES = ("gmt", "utc", "msk", "мск", "moscow", "московск", "москве", "мәскеу")
# Voting abroad: its own count and hour ("Over 10 thousand Kazakhstanis voted abroad as of 5 p.m.").
_ABROAD = re.compile(r"abroad|overseas|за\s+рубеж|зарубеж|за\s+границ|шетел|shetel", re.IGNORECASE)
_ABROAD_CUES = ("abroad", "overseas", "рубеж", "границ", "шетел", "shetel")


def _sentence_end(text: str, pos: int) -> int:
    m = _SENTENCE_END.search(text, pos)
    return m.start() if m else len(text)


def _times(text: str) -> tuple[time | None, list[tuple[int, int]], list[tuple[int, time]]]:
    """The as-of time, the spans of every time expression (masked before reading figures), and where
    each as-of phrase stands with its time (a line stating another hour is not this release)."""
    best: tuple[int, time] | None = None
    spans = []
    stated: list[tuple[int, time]] = []
    folded = text.casefold()
    schedule = any(cue in folded for cue in _SCHEDULE_CUES)
    zones = any(cue in folded for cue in _ZONE_CUES)
    abroad = any(cue in folded for cue in _ABROAD_CUES)
    ballots = "бюллетени" in folded
    for m in _NOON.finditer(text) if any(cue in folded for cue in _NOON_CUES) else ():
        spans.append((m.start(), m.end()))
        begin = max(text.rfind(". ", 0, m.start()), text.rfind("\n", 0, m.start())) + 1
        if _ANY_DIGIT.search(text, begin, _sentence_end(text, m.end())):
            # "к полудню проголосовали 25,1 %": noon is the as-of only where its sentence gives a figure,
            # not in "half of the city's voters had voted before noon" of a later release
            best = (1, time(12, 0))
    # Each time expression, left to right without overlap, is read as one pattern with an optional
    # as-of keyword before the hour: the keyword is looked for back from the hour, never past the
    # end of the expression before. It is looked for last, as most numbers of a release are figures:
    # a bare number (the "45" of "45,67 %") is no time with a keyword or without, nor is "43.67".
    end = 0
    for m in _TIME.finditer(text):
        previous, end = end, m.end()
        if m.lastgroup == "h":  # nothing matched after the hour
            continue
        has_minutes, ampm = m.group("m") is not None, m.group("ampm")
        explicit = m.group("sep") in (":", "-") or ampm or m.group("kk")
        hour, minute = int(m.group("h")), int(m.group("m") or 0)
        if ampm:
            # "12:00 a.m." on a polling day is noon (no release is made at midnight).
            hour = hour % 12 + (12 if ampm.lower() == "p" or hour == 12 else 0)
        elif m.group("hw") and m.group("hw").strip().casefold() in ("вечера", "дня") and hour < 12:
            hour += 12
        if hour > 23 or minute > 59:
            continue
        k = _TIME_KEYWORD.search(text, max(previous, m.start() - _KEYWORD_REACH), m.start())
        kw, begin = (k.group("kw"), k.start()) if k is not None else (None, m.start())
        if not (explicit or (kw and (has_minutes or m.group("hw")))):
            continue
        spans.append((m.start("h"), m.end()))
        if schedule and (
            _SCHEDULE_AFTER.match(text, m.end("m") if m.group("m") else m.end("h"))
            or _SCHEDULE_BEFORE.search(text, max(0, begin - 60), begin)
        ):
            continue  # "сағат 22.00-де ұсынылады", "состоится в 21:00": a schedule
        if zones and _OTHER_ZONE.match(text, m.end()):
            continue  # "By 9:00 GMT", "К 9:00 мск": another zone's clock, not the as-of in Kazakhstan's
        # The as-of phrase itself ("по состоянию на", "as of", "-дегі жағдай") outranks a bare "на"/"к",
        # which outranks a time with no keyword (a publication stamp, "11:00 мск").
        strong = (kw and _STRONG_KW.match(kw)) or _STRONG_KK.match(m.group("kk") or "")
        score = 0 if strong else 1 if (kw or m.group("kk")) else 2
        if strong and m.group("kk") and _SITUATION.match(text, m.end()):
            score = -1  # "сағат 18.10-дағы жағдай бойынша", the commission's own, over "18.00-дегі ақпарат"
        elif (
            strong
            and ballots
            and _BALLOTS.search(text, m.end(), _sentence_end(text, m.end()))
            and not _REMINDER.search(text, max(0, begin - 40), begin)
        ):
            score = -1  # "по состоянию на 18:05 ... бюллетени получили", over a lead's "на 18:00"
        if score < 2:
            stated.append((begin, time(hour, minute)))
        if abroad and _ABROAD.search(text, text.rfind("\n", 0, begin) + 1, _sentence_end(text, m.end())):
            score += 3  # "voted abroad as of 5 p.m.": the count abroad's hour, the as-of only if none other is
        if best is None or score < best[0]:
            best = (score, time(hour, minute))
    return (best[1] if best else None), spans, stated


# A line that speaks of an earlier hour ("Два часа назад явка ... составила", "two hours ago").
_EARLIER = re.compile(
    r"\b(?:назад|ранее|накануне|в\s+прошлый\s+раз|ago|earlier|previously|бұрын|алдында\s+\w+\s+сағат)\b",
    re.IGNORECASE,
)
_EARLIER_WORDS = ("назад", "ранее", "накануне", "прошлый", "ago", "earlier", "previously", "бұрын", "алдында")
_NOON = re.compile(r"\b(?:к\s+полудню|at\s+noon|by\s+noon|түске\s+дейін)", re.IGNORECASE)
_NOON_CUES = ("полудн", "noon", "түске")  # one of which every _NOON match holds


_PCT_WORD = re.compile(r"%|процент|пайыз|percent", re.IGNORECASE)
_CUT_TAIL = re.compile(r"[\d.,\s]+$")


# Digit first, then "no letter, digit, dot or comma before it", as _NUMBER.
_DECIMAL_FIGURE = re.compile(r"\d(?<![\w.,]\d)\d?[.,]\d(?!\d)")
_ANY_DECIMAL = re.compile(r"\d(?<![\w.,]\d)\d?[.,]\d{1,2}(?!\d)")


def _plain_list(line: str) -> bool:
    """A line listing six figures or more, each to one decimal and none hedged ("Ақмола облысы
    бойынша 41,3%, ... Алматы облысы бойынша 43%"): its whole number is the commission's "43,0" with
    the zero dropped, not a figure rounded in prose (a list to two decimals rounds: "-77%" by "80,66")."""
    return (
        len(_DECIMAL_FIGURE.findall(line)) >= 6
        and not _TWO_DECIMALS.search(line)
        and not re.search(r"\d[.,]\d\d", line)
        and not _holds_any(line, _APPROX_WORDS)
    )


# A whole-number figure ending its list item: "Turkestan region - 72%,", "Павлодарской - 71,", "- 80 и".
_WHOLE_FIGURE = re.compile(
    r"(?<![\w.,])\d{1,2}(?![\w.,]?\d)(?=\s*(?:%|процент|пайыз|percent|[,;]|\.(?!\d)|\s(?:и|және|and)\s|$))",
    re.IGNORECASE,
)


_COMPARES = re.compile(
    r"\b(?:чем|than|compared|сравнени\w*|прошл\w*|предыдущ\w*|previous\w*|өткен|алдыңғы|салыстыр\w*)\b", re.IGNORECASE
)


def _lone_whole(line: str) -> bool | None:
    """None when the line holds no whole-number figure; else whether its whole numbers are few enough
    among its decimals (one in six or fewer, at least six decimals, nothing hedged) to be the
    commission's own figures with the zeros dropped ("Turkestan region - 72%" among "72.26%"), not
    a writer's roundings ("Qaraghandy oblysy -77%, Pavlodar oblysy-75,53, Aqmola oblysy-73%")."""
    wholes = len(_WHOLE_FIGURE.findall(line))
    if not wholes:
        return None
    return (
        len(_ANY_DECIMAL.findall(line)) >= max(6, 6 * wholes)
        and not _holds_any(line, _APPROX_WORDS)
        and not _COMPARES.search(line)  # "выше, чем в 2019 году - 61%": another figure's rounding
    )


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with each span blanked (same length, so every position still holds)."""
    if not spans:
        return text
    parts, pos = [], 0
    for start, end in sorted(spans):
        start = max(start, pos)
        if end > start:
            parts += [text[pos:start], " " * (end - start)]
            pos = end
    parts.append(text[pos:])
    return "".join(parts)


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
    text = morph.arabic_to_cyrillic(unicodedata.normalize("NFKC", text))
    text = _ANY_DASH.sub("-", text)
    date_spans = [(m.start(), m.end()) for m in (*_DATE_NUMERIC.finditer(text), *_date_words(text))]
    if ":" in text:
        date_spans += _stamps(text)
    day = on or _find_date(text, lang)
    text = _mask(text, date_spans)
    if text.rstrip()[-1:].isdecimal() and len(_PCT_WORD.findall(text)) >= 2:
        # The text stops on a bare number where its figures carry a % sign: a body cut short
        # ("... Алмате - 5,2"), the figure itself maybe cut too.
        cut = _CUT_TAIL.search(text)
        if cut:
            text = text[: cut.start()] + " " * (len(text) - cut.start())
    next_at, next_spans = _next_release(text)
    text = _mask(text, next_spans)
    at, time_spans, stated_times = _times(text)
    text = _mask(text, time_spans)
    as_of = datetime.combine(day, at, tzinfo=ZoneInfo(tz)) if day and at else None
    resolve = _Resolver(gazetteer, day)
    sections = _other_hour_sections(text, at, stated_times) if at else []
    stated, national_spans, national_note = _national(text, at, stated_times, resolve, sections)
    text = _mask(text, national_spans)
    out = _Collector(gazetteer)
    # Whole-text checks spare the per-line and per-figure searches in most releases.
    folded = text.casefold()
    earlier = any(w in folded for w in _EARLIER_WORDS) and _EARLIER.search(text) is not None
    approx = any(w in folded for w in _APPROX_WORDS)
    rounding = _rounding_prose(text, approx, resolve)
    elsewhen = [(pos, t) for pos, t in stated_times if at and _minutes_apart(t, at) > 10]
    # Only lines with a digit: nothing on the others is placed (most lines of a page).
    for found in _DIGIT_LINE.finditer(text):
        line, start, offset = found.group(), found.start(), found.end() + 1
        other = [t for pos, t in elsewhen if start <= pos < offset]
        if other and _NUMBER.search(line):
            out.unparsed.append(f"{line.strip()} (stated for {other[0].strftime('%H:%M')}, not {at})")
            continue
        if sections and (past := [t for a, b, t in sections if a <= start < b]) and _NUMBER.search(line):
            out.unparsed.append(f"{line.strip()} (stated for {past[0].strftime('%H:%M')}, not {at})")
            continue
        line = _ENUMERATOR.sub("", line)
        # A split point is a ";", a "." before a blank or a "%." glued to the next sentence (a line
        # holds no "\n"): most lines hold no such ".", and then only their ";" split them.
        parts = _SEGMENT_SPLIT.split(line) if _DOT_BLANK.search(line) or "%." in line else line.split(";")
        segments = [segment for segment in parts if segment.strip()]
        if earlier and _EARLIER.search(line):
            # The sentence about an earlier hour is dropped; what follows it on the line is read only
            # when it is a list of its own (five figures or more), never the sentence's own figures.
            last = max((k for k, segment in enumerate(segments) if _EARLIER.search(segment)), default=len(segments))
            rest = segments[last + 1 :]
            if _NUMBER.search(line):
                out.unparsed.append(f"{line.strip()} (about an earlier release)")
            if sum(len(_ANY_DECIMAL.findall(segment)) for segment in rest) < 5:
                continue
            segments = rest
        # Prose: more than one sentence or figure on the line (a list gives one of each per line).
        whole = not (rounding and (len(segments) > 1 or len(_PCT_FIGURE.findall(line)) > 1)) or _plain_list(line)
        if not whole and (lone := _lone_whole(line)) is not None:
            whole = lone  # one whole number among many decimals: the commission's "72,00", not a rounding
            if not whole:
                out.unparsed.append(f"{line.strip()} (a whole number among decimals, maybe rounded: not placed)")
        for k, segment in enumerate(segments):
            if k and _refers_back(segments[k - 1], segment, resolve, out, approx, whole):
                continue
            _parse_segment(segment, resolve, out, approx=approx, whole=whole)
    corrected = out.correct(day)
    for code in out.conflicts:
        out.figures.pop(code, None)
    national = out.figures.pop(NATIONAL, None)
    if stated is not None:
        if national is not None and national != stated and not _rounded_same(national, stated):
            out.unparsed.append(f"national figure {national} beside {stated} from the commission's sentence")
            national = None
        else:
            national = stated
    elif national_note:
        out.unparsed.append(national_note)
    expected = _expected(gazetteer, day) if day else frozenset()
    return ParsedRelease(
        as_of=as_of,
        national=national,
        turnout_pct=out.figures,
        names=out.names,
        unparsed=out.unparsed,
        unknown_regions=out.unknown,
        missing=sorted(expected - out.figures.keys() - ({NATIONAL} if national is not None else set())),
        corrected=corrected,
        next_release=datetime.combine(day, next_at, tzinfo=ZoneInfo(tz)) if day and next_at else None,
    )


@functools.lru_cache(maxsize=64)
def _expected(gazetteer: Gazetteer, day: date) -> frozenset[str]:
    """What a complete release that day gives: the national figure and every unit in force."""
    return frozenset({NATIONAL, *(r.code for r in gazetteer.regions_on(day))})


def _other_hour_sections(text: str, at: time, stated: list[tuple[int, time]]) -> list[tuple[int, int, time]]:
    """Parts of the text that give another hour's figures: from a line stating a figure for another
    hour than `at` ("By 10 a.m. ... 19.17% of all the voters", an earlier release appended to the
    article or a live blog's earlier update) up to a line that states `at` again."""
    lines: dict[int, tuple[int, list[time]]] = {}  # line start -> (line end, hours stated on it)
    for pos, t in stated:
        lo = text.rfind("\n", 0, pos) + 1
        hi = text.find("\n", pos)
        lines.setdefault(lo, (len(text) if hi < 0 else hi, []))[1].append(t)
    out: list[tuple[int, int, time]] = []
    opened: tuple[int, time] | None = None
    for lo, (hi, hours) in sorted(lines.items()):
        if any(_minutes_apart(t, at) <= 10 for t in hours):
            if opened is not None:
                out.append((opened[0], lo, opened[1]))
                opened = None
        elif opened is None and _PCT_FIGURE.search(text, lo, hi):
            opened = (lo, hours[0])
    if opened is not None:
        out.append((opened[0], len(text), opened[1]))
    return out


# A page's publication stamp: a date, then a clock time ("05.12.2005 03:10", "26.07.2021ж. 20:00"),
# with no as-of phrase before the date. It says when the page was written, not the release's hour.
_STAMP = re.compile(
    r"(?<![\d.])\d{1,2}\.\d{1,2}\.(?:19|20)\d\d\s*(?:ж\.?|г\.?|жыл\w*|y\.)?\s*,?\s*(?:в\s+|at\s+)?"
    r"(?P<time>\d{1,2}:\d{2})(?!\d)",
    re.IGNORECASE,
)
_STAMP_ASOF = re.compile(r"(?:состоянию\s+на|данным\s+на|as\s+of|as\s+at|на|к|by)\s*\Z", re.IGNORECASE)


def _stamps(text: str) -> list[tuple[int, int]]:
    """The spans of the clock times of publication stamps (masked with the dates: never the as-of)."""
    return [
        (m.start("time"), m.end("time"))
        for m in _STAMP.finditer(text)
        if not _STAMP_ASOF.search(text, max(0, m.start() - 30), m.start())
        and not _STRONG_KK.match(text, m.end("time"))  # "20.11.2022 ж. 14:00-дегі жағдай бойынша": the as-of
    ]


def _minutes_apart(a: time, b: time) -> int:
    return abs((a.hour * 60 + a.minute) - (b.hour * 60 + b.minute))


def _next_release(text: str) -> tuple[time | None, list[tuple[int, int]]]:
    """The announced time of the next release, and the spans to mask (it is not the as-of time)."""
    folded = text.casefold()
    announced = any(cue in folded for cue in _NEXT_CUES)
    scheduled = any(cue in folded for cue in _SCHEDULE_CUES[:6])
    if not (announced or scheduled):
        return None, []
    found = list(_NEXT.finditer(text)) if announced else []
    if scheduled:
        first = next((m for m in _NEXT_KK.finditer(text) if _SCHEDULE_AFTER.match(text, m.end())), None)
        if first is not None and (not found or first.start() < found[0].start()):
            found = [first]
    for m in found:
        hour, minute = int(m.group("h")), int(m.group("m"))
        if ampm := m.group("ampm"):
            # As for the as-of time: "12:00 a.m." on a polling day is noon.
            hour = hour % 12 + (12 if ampm.lower() == "p" or hour == 12 else 0)
        if hour <= 23 and minute <= 59:
            return time(hour, minute), [(m.start("h"), _NEXT_MORE.match(text, m.end()).end())]  # type: ignore[union-attr]
    return None, []


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
