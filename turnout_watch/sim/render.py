"""Write a turnout release the way the CEC and the media do: ru/kk/en, lists, prose, tables.

The simulator serves these pages, and the parser's property tests render every recorded release in
every combination drawn here and parse it back, so this module is the catalogue of the formats the
parser is claimed to handle. Each `Style` field is one way real releases differ.
"""

from __future__ import annotations

import functools
import html
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, time
from typing import Any, Literal

from turnout_watch.core.gazetteer import NATIONAL, Gazetteer, default_gazetteer

Lang = Literal["ru", "kk", "en"]
Layout = Literal["list", "numbered", "prose", "table", "commission", "media"]
LANGS: tuple[Lang, ...] = ("ru", "kk", "en")
LAYOUTS: tuple[Layout, ...] = ("list", "numbered", "prose", "table", "commission", "media")
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


# --- the commission's own templates, and the media's re-typing of them ---------------------------
#
# Faithful to the real releases in tests/ingest/corpus: the CEC's Russian release ("ЦИК сообщает,
# что ... по состоянию на 20 часов времени столицы ... избирательные бюллетени получили 63,1% от
# общего количества избирателей, включенных в списки. В том числе в разрезе регионов: - по
# Акмолинской области – 72,8 %"), its Kazakh one ("Сағат 14.00-дегі жағдай бойынша тізімге енгізілген
# азаматтардың 68,48 %-ы бюллетень алды. Оның ішінде: 1. Абай облысы бойынша – 15,36 %"), its English
# translation, and the media's forms: other cases of a name ("в Абайской области", "области Абай"),
# the adjective alone ("Алматинской"), "в Атырауском регионе", ЗКО, Kazakh locatives ("Алматы
# облысында - 80,31 пайызы", "Алматыда"). Russian forms are inflected by pymorphy3 from the
# nominative names; Kazakh ones by the harmony rules below. Neither asks the parser what it knows.

RU_MONTHS = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]
EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
#: The standard abbreviations, as the commission and the media write them (corpus: "по ЗКО", "в ВКО").
RU_ABBREVIATIONS = {"KZ-27": "ЗКО", "KZ-63": "ВКО", "KZ-59": "СКО"}
#: Other Russian names the media give the regions of 2022, as printed ("по Абайской области",
#: "в области Жетысу", "в Улытауской"): their nominatives, inflected like the official names.
RU_MEDIA_NAMES = {
    "KZ-10": ("Абайская область",),
    "KZ-33": ("Жетысуская область", "область Жетысу"),
    "KZ-62": ("Улытауская область", "область Улытау"),
}
#: The template's own slip, copied for years: "по Туркестанский области" (masculine adjective).
RU_COMMISSION_SLIPS = {"KZ-61": "Туркестанский области"}
COMMISSION = {
    "ru": (
        "ЦИК сообщает, что согласно данным, представленным областными, городов республиканского значения, "
        "столицы избирательными комиссиями по состоянию на {t} времени столицы {d}избирательные бюллетени "
        "получили {n} от общего количества избирателей, включенных в списки."
    ),
    "kk": "{t}-дегі жағдай бойынша тізімге енгізілген азаматтардың {n}-{sfx} бюллетень алды.",
    "en": (
        "According to the data represented by regional, city and capital election commissions, {n} of all "
        "voters included into the lists received ballot papers as of {t}{d}."
    ),
}
COMMISSION_BY_REGION = {"ru": "В том числе в разрезе регионов:", "kk": "Оның ішінде:", "en": "Including by region:"}
COMMISSION_NEXT = {
    "ru": '"Информация о предварительных итогах явки избирателей будет представлена в {t} ч"',
    "kk": "Келесі ақпарат сағат {t}-де беріледі.",
    "en": "Next update on turnout at {t}.",
}
#: Media lines: (template, value word). {name} is a form from the language's form list.
MEDIA_NATIONAL = {
    "ru": "Явка по стране составила {n}.",
    "kk": "Республика бойынша сайлаушылардың {n} дауыс берді.",
    "en": "Voter turnout in Kazakhstan was {n}.",
}
MEDIA_VALUE_WORDS = {"ru": ("%", " %", " процента"), "kk": ("%", " %", " пайызы"), "en": ("%", " percent")}


@functools.cache
def _morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


def _same_case(word: str, like: str) -> str:
    """`word` (lower case) written with the capitals of `like`, hyphenated part by part."""
    parts, models = word.split("-"), like.split("-")
    if len(parts) != len(models):
        return word.capitalize() if like[:1].isupper() else word
    return "-".join(p.capitalize() if m[:1].isupper() else p for p, m in zip(parts, models, strict=True))


def _inflect_word(word: str, grammemes: frozenset[str]) -> str:
    """One Russian word in another case (and gender), by pymorphy3; unchanged if it cannot say."""
    parses = _morph().parse(word.lower())
    nominative = [p for p in parses if "nomn" in p.tag and p.tag.POS in ("NOUN", "ADJF")]
    for parse in nominative or parses[:1]:
        form = parse.inflect(set(grammemes))
        if form is not None:
            return _same_case(str(form.word), word)
    return word


def ru_inflect(name: str, case: str, gender: str | None = None) -> str:
    """A Russian region or city name in `case` (gent, datv, loct): "Акмолинская область" ->
    "Акмолинской области", "область Абай" -> "области Абай" (the name after the noun stays as it is),
    "Астана" -> "Астане"; with `gender`, the adjective alone in that gender ("атырауском")."""
    words = name.split()
    grammemes = frozenset({case, gender} if gender else {case})
    if len(words) == 1:
        return _inflect_word(words[0], grammemes)
    if words[0].lower() in ("область", "город"):
        return " ".join([_inflect_word(words[0], grammemes), *words[1:]])
    return " ".join(_inflect_word(w, grammemes) for w in words)


def _ru_nominative(code: str, gazetteer: Gazetteer) -> str:
    """The official Russian name, without "город" for a city."""
    name = gazetteer.get(code).name_ru
    return name.split(" ", 1)[1] if name.lower().startswith("город ") else name


def ru_forms(code: str, commission: bool, gazetteer: Gazetteer) -> list[str]:
    """How a line names the unit: the commission's "по Акмолинской области", "по г. Алматы"; the
    media's "в Абайской области", "в Астане", "Алматинской" alone, "в Атырауском регионе", ЗКО."""
    name = _ru_nominative(code, gazetteer)
    city = gazetteer.get(code).kind == "city"
    if commission:
        if city:
            return [f"по г. {name}"]
        return [f"по {RU_COMMISSION_SLIPS.get(code) or ru_inflect(name, 'datv')}"]
    forms = []
    for other in (name, *RU_MEDIA_NAMES.get(code, ())):
        forms += [f"в {ru_inflect(other, 'loct')}", f"по {ru_inflect(other, 'datv')}"]
        first, *rest = other.split()
        if rest == ["область"]:
            forms += [ru_inflect(first, "loct"), f"в {ru_inflect(first, 'loct', 'masc')} регионе"]
    if city:
        forms += [f"в городе {name}", f"в г. {name}", f"в городе {ru_inflect(name, 'loct')}"]
    if code in RU_ABBREVIATIONS:
        forms.append(RU_ABBREVIATIONS[code])
    return list(dict.fromkeys(forms))


_KK_FRONT = set("әеіөүэ")
_KK_VOWELS = set("аәеиіоөұүуыэюя")
_KK_VOICELESS = set("кқпстфхцчшщ")


def kk_locative(name: str) -> str:
    """Kazakh locative by vowel harmony: "Ақмола облысы" -> "Ақмола облысында", "Алматы" ->
    "Алматыда", "Шымкент" -> "Шымкентте", "Ақтөбе" -> "Ақтөбеде"."""
    if name.endswith(("облысы", "қаласы")):
        return name + "нда"
    vowels = [ch for ch in name.lower() if ch in _KK_VOWELS]
    front = bool(vowels) and vowels[-1] in _KK_FRONT
    consonant = "т" if name[-1].lower() in _KK_VOICELESS else "д"
    return name + consonant + ("е" if front else "а")


def kk_forms(code: str, commission: bool, gazetteer: Gazetteer) -> list[str]:
    """The commission's "Абай облысы бойынша"; the media's locatives ("Алматы облысында",
    "Алматыда", "Астана қаласында")."""
    region = gazetteer.get(code)
    name = region.name_kk
    if commission:
        return [f"{name} бойынша"]
    forms = [kk_locative(name), f"{name} бойынша"]
    if region.kind == "city" and name.endswith(" қаласы"):
        forms.append(kk_locative(name.removesuffix(" қаласы")))
    return forms


def en_forms(code: str, commission: bool, gazetteer: Gazetteer) -> list[str]:
    region = gazetteer.get(code)
    name = region.name if region.kind == "city" else region.name.replace(" Region", " region")
    return [name] if commission else [f"in {name}", name]


_KK_DIGIT_FRONT = {"1": True, "2": True, "3": True, "4": True, "5": True, "6": False, "7": True, "8": True,
                   "9": False}  # fmt: skip
_KK_TENS_FRONT = {"1": False, "2": False, "3": False, "4": False, "5": True, "6": False, "7": True, "8": True,
                  "9": False}  # fmt: skip


def kk_possessive(value: str) -> str:
    """The suffix the commission puts after "%": "68,48 %-і" (сегіз), "51,76 %-ы" (алты)."""
    digits = [ch for ch in value if ch.isdigit()]
    last = digits[-1] if digits else "0"
    if last != "0":
        return "і" if _KK_DIGIT_FRONT[last] else "ы"
    tens = digits[-2] if len(digits) > 1 else "1"
    return "і" if _KK_TENS_FRONT.get(tens, False) else "ы"


def _ru_time(at: time) -> str:
    return f"{at.hour} часов" if at.minute == 0 else f"{at.hour:02d}.{at.minute:02d} часов"


def _commission(
    figures: dict[str, float], codes: list[str], at: time, lang: Lang, style: Style, on: date | None,
    next_at: time | None, gazetteer: Gazetteer,
) -> list[str]:  # fmt: skip
    """The commission's release as its paragraphs: the national sentence, then one line per unit."""
    decimal = "." if lang == "en" else ","
    pct = Style(decimal=decimal, pct_sign="%")
    national = format_pct(figures[NATIONAL], pct) if NATIONAL in figures else None
    paragraphs = []
    if national is not None:
        if lang == "ru":
            when = f"{on.day} {RU_MONTHS[on.month - 1]} {on.year} года " if on else ""
            paragraphs.append(COMMISSION["ru"].format(t=_ru_time(at), d=when, n=national))
        elif lang == "kk":
            clock = f"Сағат {at.hour:02d}.{at.minute:02d}"
            paragraphs.append(
                COMMISSION["kk"].format(t=clock, n=national.replace("%", " %"), sfx=kk_possessive(national))
            )
        else:
            when = f" {EN_MONTHS[on.month - 1]} {on.day}, {on.year}" if on else ""
            clock = format_time(at, Style(time_format="ampm"), "en").removeprefix("as of ")
            paragraphs.append(COMMISSION["en"].format(n=national, t=clock, d=when))
        paragraphs.append(COMMISSION_BY_REGION[lang])
    else:
        paragraphs.append(TITLES[lang].format(a=format_time(at, style, lang)))
    forms = {"ru": ru_forms, "kk": kk_forms, "en": en_forms}[lang]
    dash = style.dash_spacing.format(d=style.dash) if style.dash_spacing.strip() else " – "
    units = [c for c in codes if c != NATIONAL]
    for i, code in enumerate(units, start=1):
        value = format_pct(figures[code], Style(decimal=decimal, pct_sign=" %" if lang != "en" else "%"))
        lead = f"{i}. " if lang == "kk" else "- "
        end = "." if i == len(units) and lang == "ru" else ""
        paragraphs.append(f"{lead}{forms(code, True, gazetteer)[0]}{dash}{value}{end}")
    if next_at is not None:
        paragraphs.append(COMMISSION_NEXT[lang].format(t=f"{next_at.hour:02d}.{next_at.minute:02d}"))
    return paragraphs


def _media(
    figures: dict[str, float], codes: list[str], at: time, lang: Lang, style: Style, gazetteer: Gazetteer
) -> list[str]:
    """A news site's re-typing: the as-of line, the national figure first or last, one unit a line
    in one of the name's other forms, the value with a sign or a word."""
    decimal = "." if lang == "en" else style.decimal
    words = MEDIA_VALUE_WORDS[lang]
    forms = {"ru": ru_forms, "kk": kk_forms, "en": en_forms}[lang]
    lines = []
    for index, code in enumerate(c for c in codes if c != NATIONAL):
        options = forms(code, False, gazetteer)
        name = options[(style.spelling + 3 * index) % len(options)]
        word = words[(style.template + index) % len(words)]
        value = format_pct(figures[code], Style(decimal=decimal, pct_sign=word))
        if lang == "en" and name.startswith("in ") and (style.template + index) % 2:
            lines.append(f"{value} {name};")  # "9.9% in Aktobe region"
        else:
            lines.append(f"{name[:1].upper()}{name[1:]}{style.dash_spacing.format(d=style.dash)}{value};")
    head = [INTRO[lang].format(a=format_time(at, style, lang))]
    if NATIONAL in figures:
        national = MEDIA_NATIONAL[lang].format(n=format_pct(figures[NATIONAL], Style(decimal=decimal, pct_sign="%")))
        return head + ([national, *lines] if style.national_first else [*lines, national])
    return head + lines


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
    next_at: time | None = None,
    gazetteer: Gazetteer | None = None,
) -> Rendered:
    """`figures` by region code (national under ``KZ``) -> a title and an HTML body in `lang`.
    `next_at`: when the commission says its next release comes (its own template says so)."""
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
    if style.layout in ("commission", "media"):
        if style.layout == "commission":
            paragraphs = _commission(figures, codes, as_of, lang, style, on, next_at, gazetteer)
        else:
            paragraphs = _media(figures, codes, as_of, lang, style, gazetteer)
        body = "".join(f"<p>{esc(p)}</p>\n" for p in paragraphs)
    elif style.layout == "table":
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
