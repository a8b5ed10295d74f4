"""Word forms of region names: Russian by its dictionary, Kazakh by its grammar, in any script.

The gazetteer lists each name once per spelling; releases decline them. This module turns a phrase
into *form keys* that are equal for the forms of one name, and the gazetteer indexes its own
spellings by the same keys, so it stays the one place that knows names:

- Russian: every word is lemmatised with pymorphy3 (OpenCorpora dictionaries, and its suffix
  predictor for names the dictionary lacks): ``Акмолинской области`` and ``Акмолинская область``
  both give ``акмолинский +region``; ``Астане`` gives ``астана``. Unit-type words are recognised by
  lemma (``области``, ``регионе``, ``городе``).
- Kazakh: a *skeleton* folds the Cyrillic, the three Latin alphabets (2017 apostrophes, 2018 acute
  accents, 2021) and the Arabic script (töte jazu) onto one ASCII spelling (``Шығыс``, ``Shyǵys``,
  ``Şyǧys``, ``شىعىس`` are all ``shigis``); case, possessive and plural suffixes of Kazakh grammar
  are then stripped when the bare form is a known name (``облысында`` -> ``облысы``,
  ``Алматыда`` -> ``Алматы``).

Nothing here knows a region: the keys mean something only through the gazetteer's index.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable

__all__ = [
    "arabic_to_cyrillic", "is_unit_word", "kk_keys", "kk_word_options", "ru_keys", "ru_word_options", "skeleton",
    "strip_kazakh_suffixes",
]  # fmt: skip

REGION, CITY = "+region", "+city"

# Unit-type words by lemma (Russian) or skeleton (Kazakh in any script, English, transliterations).
_RU_TYPES = {"область": REGION, "регион": REGION, "обл": REGION, "город": CITY, "г": CITY, "гор": CITY}
_SKELETON_TYPES = dict.fromkeys(
    ("region", "oblast", "oblasti", "obl", "province", "area", "oblis", "oblisi", "aimaq", "aimagi"), REGION
) | dict.fromkeys(("city", "g", "gorod", "qala", "qalasi", "kala", "kalasi", "q"), CITY)
_FILLER = frozenset({"of", "the"})

# Kazakh Cyrillic and the Latin alphabets onto one ASCII skeleton. Vowel harmony, ы/і and q/k
# within Kazakh are kept apart where the alphabets agree, folded where they do not (y is ы in
# 2018, й in 2021; ý/ú/ü/ū/у/ұ/ү are all u).
_CYR = {
    "а": "a", "ә": "a", "б": "b", "в": "v", "г": "g", "ғ": "g", "д": "d", "е": "e", "ё": "e", "ж": "j",
    "з": "z", "и": "i", "й": "i", "і": "i", "к": "k", "қ": "q", "л": "l", "м": "m", "н": "n", "ң": "n",
    "о": "o", "ө": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ұ": "u", "ү": "u", "ф": "f",
    "х": "h", "һ": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sh", "ъ": "", "ы": "i", "ь": "", "э": "e",
    "ю": "iu", "я": "ia",
}  # fmt: skip
_LAT = {
    "á": "a", "ä": "a", "ǵ": "g", "ğ": "g", "ǧ": "g", "ń": "n", "ñ": "n", "ŋ": "n", "ó": "o", "ö": "o",
    "ú": "u", "ü": "u", "ū": "u", "ý": "u", "ı": "i", "ş": "sh", "ç": "ch", "y": "i", "w": "u", "é": "e",
    "í": "i", "ì": "i", "î": "i",
}  # fmt: skip
_DIGRAPHS = (("zh", "j"), ("gh", "g"))
# Töte jazu (Arabic-script Kazakh) to Cyrillic; the hamza (ٴ) marks a front-vowel word.
_ARABIC = {
    "ا": "а", "ٵ": "ә", "ب": "б", "ۆ": "в", "گ": "г", "ع": "ғ", "د": "д", "ە": "е", "ج": "ж", "ز": "з",
    "ي": "й", "ك": "к", "ق": "қ", "ل": "л", "م": "м", "ن": "н", "ڭ": "ң", "و": "о", "ٶ": "ө", "پ": "п",
    "ر": "р", "س": "с", "ت": "т", "ۋ": "у", "ۇ": "ұ", "ٷ": "ү", "ف": "ф", "ح": "х", "ھ": "һ", "چ": "ч",
    "ش": "ш", "ى": "ы", "ٸ": "і", "ە‍": "е", "ء": "", "ٴ": "", "،": ",", "؛": ";", "٪": "%", "؟": "?",
    "ك‍": "к", "ة": "е", "ه": "һ", "ئ": "", "أ": "а", "إ": "и", "آ": "а", "ﺎ": "а",
}  # fmt: skip
_ARABIC_DIGITS = {ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")} | {
    ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")
}
_FRONT = str.maketrans("аоұы", "әөүі")
_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")

# Kazakh suffixes (in skeleton), from the grammar: case endings in all their harmony and
# assimilation variants, the 3rd-person possessive before a case (the n of облысында), plural,
# and the -лық/-дағы derivations that still name the place ("алматылықтар", "облыстағы").
_CASES = (
    *("da", "de", "ta", "te", "nda", "nde"),  # locative
    *("nin", "din", "tin"),  # genitive (ның/нің, дың/дің, тың/тің)
    *("ga", "ge", "qa", "ke", "na", "ne"),  # dative
    *("dan", "den", "tan", "ten", "nan", "nen"),  # ablative
    *("ni", "di", "ti", "n"),  # accusative
    *("men", "ben", "pen"),  # instrumental
    *("dagi", "degi", "tagi", "tegi", "ndagi", "ndegi"),  # locative adjective
    *("lar", "ler", "dar", "der", "tar", "ter"),  # plural
    *("imiz", "miz"),  # 1st person plural possessive (қаламызда, елордамызда: our city, our capital)
    *("liq", "lik", "diq", "dik", "tiq", "tik"),  # -lıq: belonging to
    "boiinsha",  # бойынша written as one word with the name
)
_SUFFIXES = tuple(sorted(set(_CASES), key=len, reverse=True))
# Demonyms: a place's inhabitants are its name + -лық/-лік/-дық/-дік/-тық/-тік or -лы/-лі, which
# then takes plural, possessive and case endings like any noun (қызылорда-лық-тар-дың,
# батысқазақстан-дық-тар-дың, алматы-лық-тар). The derivation is the innermost suffix, so it is
# stripped last, once, from what the inflections leave.
_DEMONYM = ("liq", "lik", "diq", "dik", "tiq", "tik", "li")


def arabic_to_cyrillic(text: str) -> str:
    """Töte jazu to Kazakh Cyrillic, word by word; text without Arabic letters is returned as is."""
    if not _ARABIC_LETTER.search(text):
        return text
    text = text.translate(_ARABIC_DIGITS)
    out = []
    for word in re.split(r"(\s+)", text):
        front = "ٴ" in word or "ە" in word or "ك" in word or "گ" in word
        cyr = "".join(_ARABIC.get(ch, ch) for ch in word if not unicodedata.category(ch).startswith("M"))
        out.append(cyr.translate(_FRONT) if front else cyr)
    return "".join(out)


@functools.lru_cache(maxsize=1 << 15)
def _skeleton_token(token: str) -> str:
    text = token.casefold()
    for a, b in _DIGRAPHS:
        text = text.replace(a, b)
    out = []
    for ch in text:
        if ch in _CYR:
            out.append(_CYR[ch])
        elif ch in _LAT:
            out.append(_LAT[ch])
        else:
            base = unicodedata.normalize("NFD", ch)[0]
            out.append(_LAT.get(base, base) if base.isascii() else ch)
    return "".join(out)


_APOSTROPHES = re.compile("['’‘ʼʹ`´]")  # deleted (a regex: str.translate looks up every character)
_NOT_ALNUM = re.compile(r"[\W_]")  # what parts words: not str.isalnum ("\w" is that and "_")


def _tokens(text: str) -> list[str]:
    text = _APOSTROPHES.sub("", arabic_to_cyrillic(unicodedata.normalize("NFKC", text)))
    return _NOT_ALNUM.sub(" ", text).split()


def skeleton(text: str) -> list[str]:
    """The phrase's words folded to one ASCII spelling shared by every Kazakh script."""
    return [_skeleton_token(t) for t in _tokens(text)]


def strip_kazakh_suffixes(token: str, depth: int = 2) -> list[str]:
    """Shorter forms of a skeleton token with up to `depth` Kazakh suffixes removed (longest first),
    and the place a demonym derives from once its inflections are off (``qizilordaliqtardin`` ->
    ``qizilorda``)."""
    return list(_stripped_all(token, depth))


@functools.lru_cache(maxsize=1 << 15)
def _stripped_all(token: str, depth: int) -> tuple[str, ...]:
    stems = _stripped(token, depth)
    demonyms = [
        form[: -len(suffix)]
        for form in (token, *stems)
        for suffix in _DEMONYM
        if form.endswith(suffix) and len(form) - len(suffix) >= 3
    ]
    return tuple(dict.fromkeys((*stems, *demonyms)))


@functools.lru_cache(maxsize=1 << 15)
def _stripped(token: str, depth: int) -> tuple[str, ...]:
    out: list[str] = []
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            stem = token[: -len(suffix)]
            out.append(stem)
            if depth > 1:
                out.extend(_stripped(stem, depth - 1))
    return tuple(dict.fromkeys(out))


def _key(words: Iterable[str], kinds: Iterable[str]) -> str:
    return " ".join([*words, *sorted(set(kinds))])


def _split_kinds(tokens: list[str]) -> tuple[list[str], set[str]]:
    words, kinds = [], set()
    for token in tokens:
        if token in _SKELETON_TYPES:
            kinds.add(_SKELETON_TYPES[token])
        elif token not in _FILLER:
            words.append(token)
    return words, kinds


def kk_keys(text: str, *, inflected: bool = False) -> set[str]:
    """Skeleton keys of a phrase. With `inflected`, also every key with Kazakh suffixes stripped from
    one word (a release's text); without, only the phrase as written (the gazetteer's own spellings)."""
    tokens = skeleton(text)
    if not tokens:
        return set()
    words, kinds = _split_kinds(tokens)
    keys = {_key(words, kinds)} if words else set()
    if inflected:
        for i, token in enumerate(tokens):
            for stem in strip_kazakh_suffixes(token):
                words, kinds = _split_kinds([*tokens[:i], stem, *tokens[i + 1 :]])
                if words:
                    keys.add(_key(words, kinds))
    return keys


@functools.cache
def _analyzer() -> object:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


_CYRILLIC_ONLY = re.compile(r"^[а-яё]+$")
_KAZAKH_LETTERS = frozenset("әғқңөұүһі")


@functools.lru_cache(maxsize=1 << 15)
def lemmas(token: str) -> tuple[tuple[str, bool], ...]:
    """(lemma, is-adjective) for every dictionary or predicted analysis of a Russian word; the word
    itself for anything else (Latin, Kazakh letters, numbers)."""
    token = token.casefold().replace("ё", "е")
    if not _CYRILLIC_ONLY.match(token) or _KAZAKH_LETTERS & set(token) or len(token) < 3:
        return ((token, False),)
    parses = _analyzer().parse(token)  # type: ignore[attr-defined]
    out: dict[str, bool] = {}
    for parse in parses:
        lemma = str(parse.normal_form).replace("ё", "е")
        out[lemma] = out.get(lemma, False) or parse.tag.POS in ("ADJF", "ADJS")
    return tuple(out.items()) or ((token, False),)


def ru_keys(text: str, *, bare_adjective: bool = False) -> set[str]:
    """Lemma keys of a phrase: one per combination of its words' possible lemmas.

    With `bare_adjective` (the gazetteer's own spellings), a region spelled adjective + unit word
    also yields the adjective alone: "Алматинская область" answers "Алматинской" with no noun.
    """
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", text).casefold())
    tokens = _NOT_ALNUM.sub(" ", text).split()
    if not tokens or len(tokens) > 6:
        return set()
    options: list[list[tuple[str, bool]]] = []
    kinds: set[str] = set()
    for token in tokens:
        if token in _FILLER:
            continue
        if token in _RU_TYPES or token in ("region", "city"):
            kinds.add(_RU_TYPES.get(token, "+" + token))
            continue
        found = lemmas(token)
        kind = {_RU_TYPES[lemma] for lemma, _adj in found if lemma in _RU_TYPES}
        if kind and len(found) == sum(lemma in _RU_TYPES for lemma, _ in found):
            kinds |= kind
            continue
        options.append([f for f in found if f[0] not in _RU_TYPES] or list(found))
    if not options or len(options) > 4:
        return set()
    keys = set()
    for combo in itertools.product(*options):
        words = [lemma for lemma, _adj in combo]
        keys.add(_key(words, kinds))
        if bare_adjective and kinds == {REGION} and combo[-1][1]:
            keys.add(_key(words, ()))
    return keys


@functools.lru_cache(maxsize=1 << 14)
def is_unit_word(word: str) -> bool:
    """Whether one word is a unit-type word in any form: области, городе, облысында, qalasy, region."""
    tokens = skeleton(word)
    if len(tokens) != 1:
        return False
    token = tokens[0]
    if token in _SKELETON_TYPES or any(stem in _SKELETON_TYPES for stem in strip_kazakh_suffixes(token)):
        return True
    return any(lemma in _RU_TYPES for lemma, _adj in lemmas(word))


def ru_word_options(word: str) -> list[frozenset[str]]:
    """For each token of `word` that :func:`ru_keys` takes as a name word (not a unit-type or filler
    word), the lemmas it may put into a key. A key of a phrase holding `word` holds one of each."""
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", word).casefold())
    out = []
    for token in _NOT_ALNUM.sub(" ", text).split():
        if token in _FILLER or token in _RU_TYPES or token in ("region", "city"):
            continue
        found = lemmas(token)
        if all(lemma in _RU_TYPES for lemma, _adj in found):
            continue
        out.append(frozenset(lemma for lemma, _adj in found if lemma not in _RU_TYPES))
    return out


def kk_word_options(word: str) -> list[frozenset[str]]:
    """For each skeleton token of `word` that :func:`kk_keys` may take as a name word, every word it
    may put into a key (as written or with suffixes stripped); a token that is, or strips to, a
    unit-type or filler word is left out (it may put no word in a key)."""
    out = []
    for token in skeleton(word):
        forms = (token, *strip_kazakh_suffixes(token))
        if any(form in _SKELETON_TYPES or form in _FILLER for form in forms):
            continue
        out.append(frozenset(forms))
    return out
