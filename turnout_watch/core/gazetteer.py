"""The region gazetteer: every spelling of a Kazakhstan region -> one ISO 3166-2:KZ code, per date.

CEC releases, observer reports and reference tables spell regions in English, Russian, Kazakh
Cyrillic and several Kazakh romanisations, and the map changed in 2018 and 2022. Every stage of
turnout-watch keys its data by the code this module returns, so a figure is never attached to the
wrong region. Resolution is an exact lookup of a normalised key, never a guess: an unknown name
raises with the closest known spellings so a person can add it to ``regions.toml``.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from turnout_watch.core import morph
from turnout_watch.core.errors import ConfigError, RegionNotInForceError, UnknownRegionError

__all__ = ["NATIONAL", "Change", "Gazetteer", "Kind", "Region", "default_gazetteer", "normalise"]

NATIONAL = "KZ"
Kind = Literal["region", "city", "country"]
_T = TypeVar("_T")

# Unit-type words collapse to one token each, so "Oblast"/"область"/"облысы" match "Region" and
# "г."/"город"/"қаласы" match "City", in any position. They are never dropped: "Almaty Region"
# (KZ-19) and "Almaty" (KZ-75) must stay different keys.
_REGION_WORDS = ("region", "oblast", "oblasti", "oblys", "oblysy", "province", "area", "obl",
                 "область", "обл", "облысы", "облыс")  # fmt: skip
_CITY_WORDS = ("city", "g", "gorod", "qala", "qalasy", "kala", "kalasy",
               "город", "гор", "г", "қала", "қаласы", "каласы", "қ")  # fmt: skip
_TYPE_WORDS = dict.fromkeys(_REGION_WORDS, "region") | dict.fromkeys(_CITY_WORDS, "city")
_FILLER = frozenset({"of", "the"})
# Apostrophes are deleted, not spaced: "oblast'" is "oblast", 2017-alphabet "Aqto'be" is "Aqtobe".
# (Regexes, not str.translate tables: translate looks up every character of the text.)
_APOSTROPHES = re.compile("['’‘ʼʹ`´]")
_LATIN_EXTRA = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ё": "е"})
_ANY_LATIN_EXTRA = re.compile("[ıłøđё]")
# Whatever is not a letter or digit (str.isalnum; "\w" is that and "_") parts words.
_NOT_ALNUM = re.compile(r"[\W_]")
# Latin letters typed inside a Cyrillic word (old keyboards had no "і"): "Жетiсу" is "Жетісу".
_HOMOGLYPHS = str.maketrans("aceiopxykbmth", "асеіорхуквмтн")


@functools.lru_cache(maxsize=4096)
def _is_latin(ch: str) -> bool:
    return "LATIN" in unicodedata.name(ch, "")


@functools.lru_cache(maxsize=4096)
def _is_cyrillic(ch: str) -> bool:
    return "CYRILLIC" in unicodedata.name(ch, "")


def _fold_latin_marks(text: str) -> str:
    """Drop diacritics on Latin letters only: ü/ğ/ū fold, but Cyrillic й and ё keep theirs.

    Word by word (a space neither takes a mark nor composes with one, so nothing reaches across
    it), each word's folding cached: a release repeats its words in many phrases."""
    if text.isascii():
        return text
    return " ".join(map(_fold_word_marks, text.split(" ")))


@functools.lru_cache(maxsize=1 << 14)
def _fold_word_marks(text: str) -> str:
    if text.isascii():
        return text
    out: list[str] = []
    base_is_latin = False
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch):
            if base_is_latin:
                continue
        else:
            base_is_latin = _is_latin(ch)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _unmix(token: str) -> str:
    if not token.isascii() and any(map(_is_cyrillic, token)) and any(map(_is_latin, token)):
        return token.translate(_HOMOGLYPHS)
    return token


@functools.lru_cache(maxsize=1 << 14)
def normalise(name: str) -> str:
    """The lookup key: equal for spellings that differ only in case, dashes, punctuation,
    Latin diacritics, ё/е, or which unit-type word is used and where it stands.

    Cached: a release parser asks for the same names again (every form of a name it reads, then
    the spelling it keeps), and so does everything keying data by region."""
    words, kinds = [], set()
    for token in _normal_tokens(name):
        if token in _TYPE_WORDS:
            kinds.add(_TYPE_WORDS[token])
        elif token not in _FILLER:
            words.append(token)
    return " ".join(words + sorted(kinds))


def _normal_tokens(name: str) -> list[str]:
    text = _fold_latin_marks(_APOSTROPHES.sub("", unicodedata.normalize("NFKC", name).casefold()))
    if _ANY_LATIN_EXTRA.search(text):
        text = text.translate(_LATIN_EXTRA)
    return list(map(_unmix, _NOT_ALNUM.sub(" ", text).split()))


class Change(NamedTuple):
    """A dated change that kept the code: a rename, or territory split off to a new unit."""

    date: date
    note: str


@dataclass(frozen=True)
class Region:
    """One unit a CEC release can report: a region (oblys), a city of republican significance, or
    the whole country. Units that ceased keep their last code so old elections still resolve."""

    code: str
    name: str
    kind: Kind
    valid_from: date | None = None
    valid_until: date | None = None  # last day in force, inclusive
    predecessors: tuple[str, ...] = ()  # units it took territory from
    successors: tuple[str, ...] = ()  # units that took all or part of its territory
    name_ru: str = ""
    name_kk: str = ""
    old_codes: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    spellings: tuple[str, ...] = field(default=(), repr=False, compare=False)  # besides the 3 names
    timezone: str = "Asia/Almaty"  # IANA zone; tzdata holds its history, so polls open and close on its clock

    @property
    def zone(self) -> ZoneInfo:
        """The unit's own clock, with its history: a UTC offset is only ever read from it on a date."""
        return ZoneInfo(self.timezone)

    def in_force(self, on: date) -> bool:
        """Whether the unit existed on ``on``, so a figure for it that day can be real."""
        return (self.valid_from is None or self.valid_from <= on) and (
            self.valid_until is None or on <= self.valid_until
        )

    @property
    def is_national(self) -> bool:
        return self.code == NATIONAL


def _typed(value: object, cls: type[_T], what: str) -> _T:
    if isinstance(value, cls) and not isinstance(value, datetime):  # a TOML date-time is no day
        return value
    raise TypeError(f"{what} must be a {cls.__name__}, got {value!r}")


def _strings(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{key} must be a list of strings, got {value!r}")
    return tuple(value)


def _region_from_toml(raw: dict[str, Any]) -> Region:
    """One ``[[unit]]`` table; unknown keys are errors, so a typo cannot silently drop history."""
    try:
        if unknown := raw.keys() - {f.name for f in fields(Region)}:
            raise KeyError(f"unknown keys {sorted(unknown)}")
        text = {k: _typed(raw[k], str, k) for k in ("code", "name", "kind", "name_ru", "name_kk")}
        zone = _typed(raw.get("timezone", Region.timezone), str, "timezone")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise TypeError(f"timezone {zone!r} is not an IANA zone tzdata knows") from exc
        since, until = (None if raw.get(k) is None else _typed(raw[k], date, k) for k in ("valid_from", "valid_until"))
        return Region(
            code=text["code"], name=text["name"], kind=cast(Kind, text["kind"]), name_ru=text["name_ru"],
            name_kk=text["name_kk"], valid_from=since, valid_until=until,
            predecessors=_strings(raw, "predecessors"), successors=_strings(raw, "successors"),
            old_codes=_strings(raw, "old_codes"), spellings=_strings(raw, "spellings"), timezone=zone,
            changes=tuple(Change(_typed(c["date"], date, "date"), _typed(c["note"], str, "note"))
                          for c in raw.get("changes", ())),
        )  # fmt: skip
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"gazetteer: bad unit {raw.get('code', raw)!r}: {exc}") from exc


def _names(region: Region) -> list[str]:
    names = (region.name, region.name_ru, region.name_kk, *region.spellings)
    return list(dict.fromkeys(name for name in names if name))


class Gazetteer:
    """All units and spellings, indexed by normalised key; immutable once built."""

    def __init__(self, regions: Iterable[Region]) -> None:
        self._units: dict[str, Region] = {}  # by code, in code order
        self._codes: dict[str, str] = {}  # upper-case code or old code -> code
        self._keys: dict[str, str] = {}  # normalised spelling -> code
        self._display: dict[str, str] = {}  # normalised spelling -> first spelling that produced it
        self._could: dict[str, bool] = {}  # word -> whether a known form may hold it (could_name)
        for region in sorted(regions, key=lambda r: r.code):
            if region.code in self._units:
                raise ConfigError(f"gazetteer: duplicate code {region.code}")
            self._units[region.code] = region
        for region in self._units.values():
            if region.kind not in ("region", "city", "country"):
                raise ConfigError(f"gazetteer: {region.code} has unknown kind {region.kind!r}")
            unknown = set(region.predecessors + region.successors) - self._units.keys()
            if unknown:
                raise ConfigError(f"gazetteer: {region.code} refers to unknown codes {sorted(unknown)}")
            for code in (region.code, *region.old_codes):
                self._add_code(code, region.code)
            for spelling in _names(region):
                self._add_key(spelling, region.code)

    def _add_code(self, code: str, target: str) -> None:
        if self._codes.setdefault(code.upper(), target) != target:
            raise ConfigError(f"gazetteer: code {code} names both {self._codes[code.upper()]} and {target}")
        self._add_key(code, target)

    def _add_key(self, spelling: str, code: str) -> None:
        key = normalise(spelling)
        if not key:
            raise ConfigError(f"gazetteer: spelling {spelling!r} of {code} is empty once normalised")
        owner = self._keys.setdefault(key, code)
        if owner != code:
            raise ConfigError(
                f"gazetteer: {spelling!r} ({code}) and {self._display[key]!r} ({owner}) "
                f"share the key {key!r}; a name must identify one unit"
            )
        self._display.setdefault(key, spelling)

    @classmethod
    def load(cls, path: Path | None = None) -> Gazetteer:
        """Build from a regions TOML file; by default the one shipped inside the package."""
        if path is None:
            text = resources.files("turnout_watch.core").joinpath("regions.toml").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"gazetteer: {path or 'regions.toml'} is not valid TOML: {exc}") from exc
        return cls(_region_from_toml(raw) for raw in data.get("unit", ()))

    def resolve(self, name: str, on: date | None = None) -> Region:
        """The unit ``name`` spells, by exact normalised key. With ``on``, also require that the
        unit existed that day, so a 2016 table cannot silently feed a post-2018 region."""
        region = self.find(name)
        if region is None:
            raise UnknownRegionError(name, self.suggest(name), on)
        if on is not None and not region.in_force(on):
            raise RegionNotInForceError(self._not_in_force(name, region, on))
        return region

    def find(self, name: str) -> Region | None:
        """The unit ``name`` spells, or None; no suggestions are computed (callers that probe many
        word windows, like the release parser, would spend most of their time on them)."""
        code = self._keys.get(normalise(name))
        return None if code is None else self._units[code]

    def find_forms(self, name: str) -> frozenset[str]:
        """Every unit an inflected or re-scripted form of ``name`` may spell, by code; empty if none.

        For text as the commission and the media write it: an exact spelling answers alone; else
        the Russian lemmas (``Акмолинской области``, ``Астане``, ``Алматинской`` alone) and the Kazakh
        skeleton with case and possessive suffixes stripped (``Алматы облысында``, ``Abaı oblysy``,
        ``اقمولا وبلىسى``) are looked up among the forms of every spelling. More than one code means
        the form is ambiguous, and a caller must not place a figure on it.
        """
        code = self._keys.get(normalise(name))
        if code is not None:
            return frozenset((code,))
        ru, kk = self._form_index()
        codes: set[str] = set()
        for key in morph.ru_keys(name):
            codes |= ru.get(key, set())
        exact = {key for key in morph.kk_keys(name)}
        for key in exact:
            codes |= kk.get(key, set())
        if not codes:
            for key in morph.kk_keys(name, inflected=True) - exact:
                codes |= kk.get(key, set())
        return frozenset(codes)

    @functools.cached_property
    def _forms(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        ru: dict[str, set[str]] = {}
        kk: dict[str, set[str]] = {}
        for region in self._units.values():
            for spelling in _names(region):
                for key in morph.ru_keys(spelling, bare_adjective=region.kind == "region"):
                    ru.setdefault(key, set()).add(region.code)
                for key in morph.kk_keys(spelling):
                    kk.setdefault(key, set()).add(region.code)
                    if " " in key and "+" not in key:
                        # A bare name of two words is one word in its demonym: "Батыс Қазақстан" ->
                        # "батысқазақстандықтар"; the joined form answers only that way.
                        kk.setdefault(key.replace(" ", ""), set()).add(region.code)
        return ru, kk

    def _form_index(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        return self._forms

    @functools.cached_property
    def _vocabulary(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """Every word of an exact key, a Russian lemma key and a Kazakh skeleton key."""
        ru, kk = self._forms

        def words(index: Iterable[str]) -> frozenset[str]:
            return frozenset(word for key in index for word in key.split())

        return words(self._keys), words(ru), words(kk)

    def warm(self) -> Gazetteer:
        """Build the form index now (it needs the Russian dictionaries) rather than on the first
        inflected name a release holds; returns self."""
        _ = self._vocabulary
        return self

    def could_name(self, word: str) -> bool:
        """False only when no phrase holding ``word`` as a whole word (set off by spaces, hyphens or
        dots) can be a known form in :meth:`find_forms`: every way of reading it (exact key, Russian
        lemmas, Kazakh skeleton with or without suffixes) gives a word no spelling has. A release
        parser skips the word windows holding such a word without looking them up; True is no
        promise of a match."""
        known = self._could.get(word)
        if known is None:
            known = self._could[word] = self._could_name(word)
        return known

    def _could_name(self, word: str) -> bool:
        exact, ru, kk = self._vocabulary
        if all(t in _TYPE_WORDS or t in _FILLER or t in exact for t in _normal_tokens(word)):
            return True
        if all(options & ru for options in morph.ru_word_options(word)):
            return True
        return all(options & kk for options in morph.kk_word_options(word))

    def try_resolve(self, name: str, on: date | None = None) -> Region | None:
        """Like :meth:`resolve`, but None wherever resolve would raise."""
        region = self.find(name)
        return region if region is not None and (on is None or region.in_force(on)) else None

    def _not_in_force(self, name: str, region: Region, on: date) -> str:
        label, asked = f"{region.name} ({region.code})", f"(asked for {name!r} on {on})"
        if region.valid_until is not None and on > region.valid_until:
            now = ", ".join(region.successors) or "no unit"
            return f"{label} ceased on {region.valid_until}; its territory is now {now} {asked}"
        before = ", ".join(region.predecessors) or "no unit"
        return f"{label} was formed on {region.valid_from}; before that its territory was in {before} {asked}"

    def get(self, code: str) -> Region:
        """The unit with this ISO code, current ("KZ-11") or old letter code ("KZ-AKM")."""
        target = self._codes.get(code.strip().upper())
        if target is None:
            raise UnknownRegionError(code, self.suggest(code))
        return self._units[target]

    def regions_on(self, on: date) -> list[Region]:
        """The sub-national units in force on ``on``, sorted by code: what a complete CEC
        release for that day covers (besides the national figure)."""
        return [r for r in self._units.values() if not r.is_national and r.in_force(on)]

    def spellings(self, code: str) -> list[str]:
        """Every spelling registered for the unit: its English, Russian and Kazakh names first."""
        return _names(self.get(code))

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """Up to ``n`` close known spellings, at most one per unit, for error messages only."""
        matches = difflib.get_close_matches(normalise(name), self._keys, n=len(self._keys), cutoff=0.5)
        best: dict[str, str] = {}
        for key in matches:
            best.setdefault(self._keys[key], self._display[key])
        return list(best.values())[:n]

    def __iter__(self) -> Iterator[Region]:
        return iter(self._units.values())

    def __len__(self) -> int:
        return len(self._units)


@functools.cache
def default_gazetteer() -> Gazetteer:
    """The packaged gazetteer, parsed once per process, its form index built."""
    return Gazetteer.load().warm()
