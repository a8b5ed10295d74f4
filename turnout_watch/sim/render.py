"""Write a turnout release the way the CEC and the media do: ru/kk/en, lists, prose, tables.

The simulator serves these pages, and the parser's property tests render every recorded release in
every combination drawn here and parse it back, so this module is the catalogue of the formats the
parser is claimed to handle. Each `Style` field is one way real releases differ.
"""

from __future__ import annotations

import html
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, time
from typing import Literal

from turnout_watch.core.gazetteer import NATIONAL, Gazetteer, default_gazetteer

Lang = Literal["ru", "kk", "en"]
Layout = Literal["list", "numbered", "prose", "table"]
LANGS: tuple[Lang, ...] = ("ru", "kk", "en")
LAYOUTS: tuple[Layout, ...] = ("list", "numbered", "prose", "table")
DASHES = ("-", "–", "—", "−", "‒")
DASH_SPACING = ("{d}", " {d} ", " {d}", "{d} ")
PCT_SIGNS = ("%", " %", "\u00a0%", "")

#: How each language writes "as of <time>" (the clock itself comes from TIME_FORMATS).
AS_OF = {
    "ru": ("на {t}", "по состоянию на {t}", "на {t} часов"),
    "kk": ("сағат {t}-дегі", "{t}-ге", "сағат {t} жағдай бойынша"),
    "en": ("as of {t}", "by {t}", "at {t}"),
}
TITLES = {
    "ru": "Явка избирателей {a}",
    "kk": "Сайлаушылардың келуі ({a})",
    "en": "Voter turnout {a}",
}
TIME_FORMATS = ("colon", "dot", "ampm", "ampm_short")
#: Prose templates: a name and its figure with nothing else a parser could mistake for either.
PROSE = {
    "ru": ("{name}{dash}{pct}", "{name}: {pct}", "в регионе «{name}» {pct}"),
    "kk": ("{name} бойынша {pct}", "{name}{dash}{pct}", "{name}: {pct}"),
    "en": ("in {name} {pct}", "{pct} cast their votes in {name}", "in the {name}{dash}{pct}", "{name}: {pct}"),
}
INTRO = {
    "ru": "По данным ЦИК, {a} в голосовании приняли участие избиратели во всех регионах.",
    "kk": "ОСК мәліметінше, {a} барлық өңірлерде дауыс беру жүріп жатыр.",
    "en": "According to the Central Election Commission, voting is under way in all regions {a}.",
}
HEADERS = {"ru": ("Регион", "Явка"), "kk": ("Өңір", "Келуі"), "en": ("Region", "Turnout")}
_KAZAKH_LETTERS = set("әғқңөұүһіӘҒҚҢӨҰҮҺІ")


@dataclass(frozen=True)
class Style:
    """One way of writing a release; every field is drawn independently (hypothesis or a seed)."""

    layout: Layout = "list"
    decimal: str = ","
    dash: str = "–"
    dash_spacing: str = " {d} "
    pct_sign: str = "%"
    as_of_form: int = 0  # index into AS_OF[lang]
    time_format: str = "colon"
    spelling: int = 0  # picks each region's spelling among those usable in the language
    national_first: bool = True
    template: int = 0  # prose: first template; rotates per region

    @classmethod
    def pick(cls, rng: random.Random) -> Style:
        return cls(
            layout=rng.choice(LAYOUTS),
            decimal=rng.choice(",."),
            dash=rng.choice(DASHES),
            dash_spacing=rng.choice(DASH_SPACING),
            pct_sign=rng.choice(PCT_SIGNS),
            as_of_form=rng.randrange(3),
            time_format=rng.choice(TIME_FORMATS),
            spelling=rng.randrange(1 << 16),
            national_first=rng.random() < 0.5,
            template=rng.randrange(8),
        )


def _script_ok(spelling: str, lang: Lang) -> bool:
    cyrillic = any("CYRILLIC" in unicodedata.name(c, "") for c in spelling)
    if lang == "en":
        return not cyrillic
    if lang == "ru":
        return cyrillic and not (_KAZAKH_LETTERS & set(spelling))
    return True  # Kazakh is written in Cyrillic and in several Latin alphabets


def spellings_for(code: str, lang: Lang, gazetteer: Gazetteer | None = None) -> list[str]:
    """The spellings of a unit a release in `lang` may use, its official name in that language first."""
    gazetteer = gazetteer or default_gazetteer()
    region = gazetteer.get(code)
    official = {"ru": region.name_ru, "kk": region.name_kk, "en": region.name}[lang]
    names = [official, *(s for s in gazetteer.spellings(code) if _script_ok(s, lang))]
    return list(dict.fromkeys(n for n in names if n))


def format_time(at: time, style: Style, lang: Lang) -> str:
    if style.time_format == "dot":
        clock = f"{at.hour:02d}.{at.minute:02d}"
    elif style.time_format in ("ampm", "ampm_short"):
        hour = at.hour % 12 or 12
        half = "a.m." if at.hour < 12 else "p.m."
        clock = f"{hour}:{at.minute:02d} {half}" if style.time_format == "ampm" or at.minute else f"{hour} {half}"
    else:
        clock = f"{at.hour:02d}:{at.minute:02d}"
    forms = AS_OF[lang]
    return forms[style.as_of_form % len(forms)].format(t=clock)


def format_pct(value: float, style: Style) -> str:
    text = f"{value:.2f}" if round(value, 2) == value else repr(value)
    return text.replace(".", style.decimal) + style.pct_sign


@dataclass(frozen=True)
class Rendered:
    title: str
    body_html: str  # the release's text as HTML (goes inside the page's article body)


def render_release(
    figures: dict[str, float],
    as_of: time,
    lang: Lang,
    style: Style,
    *,
    on: date | None = None,
    gazetteer: Gazetteer | None = None,
) -> Rendered:
    """`figures` by region code (national under ``KZ``) -> a title and an HTML body in `lang`."""
    gazetteer = gazetteer or default_gazetteer()
    codes = sorted(c for c in figures if c != NATIONAL)
    if NATIONAL in figures:
        codes = [NATIONAL, *codes] if style.national_first else [*codes, NATIONAL]
    names = {}
    for index, code in enumerate(codes):
        options = spellings_for(code, lang, gazetteer)
        names[code] = options[(style.spelling + 7 * index) % len(options)]
    at = format_time(as_of, style, lang)
    title = TITLES[lang].format(a=at)
    dash = style.dash_spacing.format(d=style.dash)
    esc = html.escape
    when = f'<p class="date">{on:%d.%m.%Y}</p>\n' if on else ""
    if style.layout == "table":
        head = "".join(f"<th>{esc(h)}</th>" for h in ("№", *HEADERS[lang]))
        rows = "".join(
            f"<tr><td>{i}</td><td>{esc(names[c])}</td><td>{esc(format_pct(figures[c], style))}</td></tr>\n"
            for i, c in enumerate(codes, start=1)
        )
        body = f"<p>{esc(title)}</p>\n<table>\n<tr>{head}</tr>\n{rows}</table>"
    elif style.layout in ("list", "numbered"):
        lines = [f"{esc(names[c])}{esc(dash)}{esc(format_pct(figures[c], style))}" for c in codes]
        if style.layout == "numbered":
            lines = [f"{i}. {line}" for i, line in enumerate(lines, start=1)]
            body = f"<p>{esc(title)}</p>\n" + "".join(f"<p>{line}</p>\n" for line in lines)
        else:
            body = f"<p>{esc(title)}</p>\n<ul>\n" + "".join(f"<li>{line}</li>\n" for line in lines) + "</ul>"
    else:
        templates = PROSE[lang]
        parts = [
            templates[(style.template + i) % len(templates)].format(
                name=names[c], pct=format_pct(figures[c], style), dash=dash
            )
            for i, c in enumerate(codes)
        ]
        sentences = [INTRO[lang].format(a=at), "; ".join(parts[:7]) + ".", ", ".join(parts[7:]) + "."]
        body = "".join(f"<p>{esc(s)}</p>\n" for s in sentences if s != ".")
    return Rendered(title, when + body)
