"""The gazetteer must map every spelling our sources use to one code, and never guess."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from pathlib import Path

import pycountry
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.paths import shared_data
from turnout_watch.core.errors import ConfigError, RegionNotInForceError, UnknownRegionError
from turnout_watch.core.gazetteer import NATIONAL, Gazetteer, Region, default_gazetteer, normalise

GAZ = default_gazetteer()

# The CSVs in shared/data: every spelling they use, and the unit it means there.
SHARED_CSVS = (
    "kz-2016-03-20-majilis-final-turnout.csv",
    "kz-2022-11-20-presidential-turnout.csv",
    "kz-2023-03-19-majilis-registered.csv",
    "kz-2023-03-19-majilis-turnout.csv",
)
CSV_SPELLINGS = {
    "Kazakhstan": "KZ",
    "Abai Region": "KZ-10",
    "Akmola Oblast": "KZ-11",
    "Akmola Region": "KZ-11",
    "Aqmola Region": "KZ-11",
    "Aktyubinsk Oblast": "KZ-15",
    "Aktobe Region": "KZ-15",
    "Aqtöbe Region": "KZ-15",
    "Almaty Oblast": "KZ-19",
    "Almaty Region": "KZ-19",
    "Atyrau Oblast": "KZ-23",
    "Atyrau Region": "KZ-23",
    "West-Kazakhstan Oblast": "KZ-27",
    "West Kazakhstan Region": "KZ-27",
    "Zhambyl Oblast": "KZ-31",
    "Jambyl Region": "KZ-31",
    "Jetisu Region": "KZ-33",
    "Karaganda Oblast": "KZ-35",
    "Karaganda Region": "KZ-35",
    "Qarağandy Region": "KZ-35",
    "Kostanai Oblast": "KZ-39",
    "Kostanay Region": "KZ-39",
    "Qostanai Region": "KZ-39",
    "Kyzylorda Oblast": "KZ-43",
    "Kyzylorda Region": "KZ-43",
    "Qyzylorda Region": "KZ-43",
    "Mangistau Oblast": "KZ-47",
    "Mangystau Region": "KZ-47",
    "Pavlodar Oblast": "KZ-55",
    "Pavlodar Region": "KZ-55",
    "North Kazakhstan Oblast": "KZ-59",
    "North Kazakhstan Region": "KZ-59",
    "Turkistan Region": "KZ-61",
    "Türkistan Region": "KZ-61",
    "Ulytau Region": "KZ-62",
    "East Kazakhstan Oblast": "KZ-63",
    "East Kazakhstan Region": "KZ-63",
    "Astana City": "KZ-71",
    "Astana": "KZ-71",
    "Almaty City": "KZ-75",
    "Almaty": "KZ-75",
    "Shymkent": "KZ-79",
    "South Kazakhstan Oblast": "KZ-YUZ",
}


def election_date(csv_name: str) -> date:
    match = re.match(r"kz-(\d{4}-\d{2}-\d{2})-", csv_name)
    assert match, f"no election date in file name {csv_name}"
    return date.fromisoformat(match.group(1))


def csv_regions(csv_name: str) -> set[str]:
    with (shared_data() / csv_name).open(encoding="utf-8", newline="") as f:
        return {row["region"] for row in csv.DictReader(f)}


def test_shared_data_has_exactly_the_known_csvs() -> None:
    assert sorted(p.name for p in shared_data().glob("*.csv")) == sorted(SHARED_CSVS)


@pytest.mark.parametrize("csv_name", SHARED_CSVS)
def test_every_csv_region_resolves_on_its_election_date(csv_name: str) -> None:
    on = election_date(csv_name)
    names = csv_regions(csv_name)
    assert names <= CSV_SPELLINGS.keys(), f"new spellings to classify: {names - CSV_SPELLINGS.keys()}"
    for name in names:
        assert GAZ.resolve(name, on=on).code == CSV_SPELLINGS[name], name
    codes = {GAZ.resolve(name, on=on).code for name in names}
    assert len(codes) == len(names), "two rows of one file name the same unit"
    assert codes == {r.code for r in GAZ.regions_on(on)} | {NATIONAL}


# fmt: off
SPELLINGS = {
    "KZ": ["Kazakhstan", "Казахстан", "Қазақстан", "Qazaqstan", "Republic of Kazakhstan",
           "Республика Казахстан", "Қазақстан Республикасы", "total", "Итого", "всего", "Барлығы"],
    "KZ-10": ["Abai Region", "Abay oblysy", "Abai Province", "область Абай", "Абай облысы", "Абайская обл."],
    "KZ-11": ["Akmola Oblast", "Aqmola oblysy", "Акмолинская область", "Ақмола облысы", "Akmola Province",
              "KZ-AKM", "kz-11"],
    "KZ-15": ["Aktobe", "Aqtöbe oblysy", "Aktyubinsk Oblast", "Актюбинская область", "Ақтөбе облысы",
              "Актобе облысы", "Aktobe oblast'", "KZ-AKT"],
    "KZ-19": ["Almaty Region", "Almaty oblysy", "Алматинская область", "Алматы облысы", "KZ-ALM"],
    "KZ-23": ["Atyrau Region", "Atyraū oblysy", "Атырауская область", "Атырау облысы", "KZ-ATY"],
    "KZ-27": ["West Kazakhstan Region", "West-Kazakhstan Oblast", "Западно-Казахстанская область",
              "Батыс Қазақстан облысы", "Batys Qazaqstan oblysy", "KZ-ZAP"],
    "KZ-31": ["Jambyl Region", "Zhambyl oblysy", "Жамбылская область", "Жамбыл облысы", "KZ-ZHA"],
    "KZ-33": ["Jetisu Region", "Zhetisū oblysy", "Zhetysu", "Jetısu oblysy", "область Жетісу",
              "область Жетысу", "Жетісу облысы"],
    "KZ-35": ["Karaganda Region", "Qaraghandy oblysy", "Qarağandy Region", "Karagandy",
              "Карагандинская область", "Қарағанды облысы", "KZ-KAR"],
    "KZ-39": ["Kostanay Region", "Qostanay oblysy", "Qostanai", "Kostanai Oblast", "Костанайская область",
              "Қостанай облысы", "KZ-KUS"],
    "KZ-43": ["Kyzylorda Region", "Qyzylorda oblysy", "Kzyl-Orda", "Кызылординская область",
              "Қызылорда облысы", "KZ-KZY"],
    "KZ-47": ["Mangystau Region", "Mangghystaū oblysy", "Mangistau Oblast", "Mangyshlak", "Mañğystau oblysy",
              "Мангистауская область", "Маңғыстау облысы", "KZ-MAN"],
    "KZ-55": ["Pavlodar Region", "Pavlodar oblysy", "Павлодарская область", "Павлодар облысы", "KZ-PAV"],
    "KZ-59": ["North Kazakhstan Region", "Soltüstik Qazaqstan oblysy", "Северо-Казахстанская область",
              "Солтүстік Қазақстан облысы", "KZ-SEV"],
    "KZ-61": ["Turkistan Region", "Türkistan oblysy", "Turkestan", "Turkistan", "Туркестан",
              "Туркестанская область", "Түркістан облысы"],
    "KZ-62": ["Ulytau Region", "Ulytaū oblysy", "область Улытау", "область Ұлытау", "Ұлытау облысы"],
    "KZ-63": ["East Kazakhstan Region", "Shyghys Qazaqstan oblysy", "Восточно-Казахстанская область",
              "Шығыс Қазақстан облысы", "KZ-VOS"],
    "KZ-71": ["Astana", "Astana City", "г. Астана", "город Астана", "Астана қаласы", "Nur-Sultan",
              "Нур-Султан", "Nur Sultan city", "Akmola City", "Tselinograd", "KZ-AST"],
    "KZ-75": ["Almaty", "Almaty City", "Almaty qalasy", "г. Алматы", "город Алматы", "Алматы",
              "Алматы қаласы", "Alma-Ata", "KZ-ALA"],
    "KZ-79": ["Shymkent", "Shymkent City", "г. Шымкент", "Шымкент қаласы", "KZ-SHY"],
    "KZ-YUZ": ["South Kazakhstan Oblast", "South-Kazakhstan", "Южно-Казахстанская область",
               "Оңтүстік Қазақстан облысы", "Ongtüstik Qazaqstan", "Chimkent Region",
               "Shymkent oblast", "KZ-YUZ"],
}
# fmt: on
SPELLING_CASES = [(name, code) for code, names in SPELLINGS.items() for name in names]


@pytest.mark.parametrize(("name", "code"), SPELLING_CASES)
def test_spelling_resolves(name: str, code: str) -> None:
    assert GAZ.resolve(name).code == code


@pytest.mark.parametrize(
    "variant",
    ["WEST KAZAKHSTAN REGION", "west—kazakhstan   region", "  West – Kazakhstan oblast.  ",
     "Западно–Казахстанская обл.", "ЗАПАДНО-КАЗАХСТАНСКАЯ ОБЛАСТЬ", "oblast West Kazakhstan"],
)  # fmt: skip
def test_case_dash_and_whitespace_variants(variant: str) -> None:
    assert GAZ.resolve(variant).code == "KZ-27"


@pytest.mark.parametrize(
    ("name", "code"),
    [("Almaty", "KZ-75"), ("Almaty Region", "KZ-19"), ("Алматинская область", "KZ-19"),
     ("Алматы облысы", "KZ-19"), ("Алматы", "KZ-75"), ("Akmola", "KZ-11"), ("Aqmola", "KZ-11"),
     ("Nur-Sultan", "KZ-71"), ("Akmola City", "KZ-71"), ("Shymkent", "KZ-79"), ("Shymkent Region", "KZ-YUZ")],
)  # fmt: skip
def test_a_unit_type_word_is_never_dropped(name: str, code: str) -> None:
    assert GAZ.resolve(name).code == code


def test_word_order_and_mixed_script_typing() -> None:
    assert normalise("область Абай") == normalise("Абай облысы") == "абай region"
    assert GAZ.resolve("Жетiсу облысы").code == "KZ-33"  # Latin "i" typed for Kazakh "і"
    assert GAZ.resolve("Ақтөбе облысы").code == GAZ.resolve("Актобе облысы").code == "KZ-15"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Pavodar region", "Pavlodar Region"), ("Karagandy Oblastt", "Karagandy"), ("Almat", "Almaty"),
     ("Turkestn", "Turkestan"), ("Almaty Regoin", "Almaty Region")],
)  # fmt: skip
def test_unknown_name_raises_with_closest_spelling(name: str, expected: str) -> None:
    with pytest.raises(UnknownRegionError) as info:
        GAZ.resolve(name)
    assert info.value.suggestions[0] == expected
    assert len(info.value.suggestions) <= 3
    assert repr(expected) in str(info.value)
    assert GAZ.try_resolve(name) is None


@pytest.mark.parametrize("name", ["Almat", "", "   ", "Kazakh", "Semipalatinsk", "Taldykorgan", "Region", "г."])
def test_never_resolves_by_guess(name: str) -> None:
    with pytest.raises(UnknownRegionError):
        GAZ.resolve(name)


def test_unknown_error_carries_date() -> None:
    with pytest.raises(UnknownRegionError) as info:
        GAZ.resolve("Xq 0000", on=date(2022, 11, 20))
    assert info.value.on == date(2022, 11, 20)
    assert info.value.suggestions == []


def test_history() -> None:
    with pytest.raises(RegionNotInForceError, match="KZ-YUZ"):
        GAZ.resolve("Turkistan Region", on=date(2016, 3, 20))
    assert GAZ.resolve("South Kazakhstan Oblast", on=date(2016, 3, 20)).code == "KZ-YUZ"
    with pytest.raises(RegionNotInForceError, match=r"ceased on 2018-06-18; its territory is now KZ-61, KZ-79"):
        GAZ.resolve("South Kazakhstan Oblast", on=date(2022, 11, 20))
    with pytest.raises(RegionNotInForceError, match="KZ-35"):
        GAZ.resolve("Ulytau Region", on=date(2022, 6, 7))
    assert GAZ.resolve("Ulytau Region", on=date(2022, 6, 8)).code == "KZ-62"
    assert GAZ.resolve("Nur-Sultan", on=date(2016, 3, 20)).code == "KZ-71"  # one city under every name
    assert GAZ.try_resolve("Shymkent", on=date(2018, 6, 18)) is None
    assert GAZ.try_resolve("Shymkent", on=date(2018, 6, 19)) is not None


@pytest.mark.parametrize(
    ("on", "count"),
    [(date(2016, 3, 20), 16), (date(2018, 6, 18), 16), (date(2018, 6, 19), 17), (date(2019, 1, 1), 17),
     (date(2022, 6, 7), 17), (date(2022, 6, 8), 20), (date(2022, 11, 20), 20), (date(2023, 3, 19), 20)],
)  # fmt: skip
def test_regions_on_counts(on: date, count: int) -> None:
    regions = GAZ.regions_on(on)
    assert len(regions) == count
    assert [r.code for r in regions] == sorted(r.code for r in regions)
    assert all(not r.is_national and r.in_force(on) for r in regions)


def test_splits_link_both_ways() -> None:
    for region in GAZ:
        for code in region.successors:
            assert region.code in GAZ.get(code).predecessors, (region.code, code)
        for code in region.predecessors:
            assert region.code in GAZ.get(code).successors, (region.code, code)
    assert GAZ.get("KZ-YUZ").valid_until == date(2018, 6, 18)
    assert [c.date for c in GAZ.get("KZ-71").changes] == [date(2019, 3, 23), date(2022, 9, 17)]


def test_current_units_match_pycountry() -> None:
    subdivisions = list(pycountry.subdivisions.get(country_code="KZ"))
    assert len(subdivisions) == 20
    for on in (date(2023, 3, 19), date.today()):
        assert {r.code for r in GAZ.regions_on(on)} == {s.code for s in subdivisions}
    for sub in subdivisions:
        assert GAZ.resolve(sub.name).code == sub.code
        assert GAZ.get(sub.code).kind == ("city" if sub.type == "City" else "region")


def test_shipped_data_has_no_key_shared_by_two_units() -> None:
    owners: dict[str, set[str]] = {}
    for region in Gazetteer.load():
        for spelling in (*GAZ.spellings(region.code), region.code, *region.old_codes):
            owners.setdefault(normalise(spelling), set()).add(region.code)
    assert {key: codes for key, codes in owners.items() if len(codes) > 1} == {}


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "regions.toml"
    path.write_text(body, encoding="utf-8")
    return path


UNIT = """
[[unit]]
code = "{code}"
name = "{name}"
kind = "region"
name_ru = "{code} ru"
name_kk = "{code} kk"
{extra}
"""


@pytest.mark.parametrize(
    "extra_b",
    ['spellings = ["Almaty Province"]', 'spellings = ["ALMATY—OBLAST"]', 'old_codes = ["KZ-A"]'],
)
def test_load_rejects_a_key_shared_by_two_units(tmp_path: Path, extra_b: str) -> None:
    body = UNIT.format(code="KZ-A", name="Almaty Region", extra='old_codes = ["KZ-OLD"]')
    body += UNIT.format(code="KZ-B", name="Other", extra=extra_b)
    with pytest.raises(ConfigError):
        Gazetteer.load(_write(tmp_path, body))


def test_load_rejects_unknown_successor_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KZ-NOPE"):
        Gazetteer.load(_write(tmp_path, UNIT.format(code="KZ-A", name="A", extra='successors = ["KZ-NOPE"]')))
    with pytest.raises(ConfigError):
        Gazetteer.load(_write(tmp_path, "[[unit]\n"))
    assert len(Gazetteer.load(_write(tmp_path, UNIT.format(code="KZ-A", name="A", extra="")))) == 1


def test_load_rejects_a_date_that_is_not_a_toml_date(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid_from must be a date"):
        Gazetteer.load(_write(tmp_path, UNIT.format(code="KZ-A", name="A", extra='valid_from = "2018-06-19"')))


@pytest.mark.parametrize(
    "extra", ["valid_untill = 2018-06-18", 'spellings = "Alpha"', "changes = [{ date = 2020-01-01 }]"]
)
def test_load_rejects_malformed_units(tmp_path: Path, extra: str) -> None:
    with pytest.raises(ConfigError, match="KZ-A"):
        Gazetteer.load(_write(tmp_path, UNIT.format(code="KZ-A", name="A", extra=extra)))


def test_built_from_regions_without_toml() -> None:
    gaz = Gazetteer([Region("KZ-A", "Alpha Region", "region", name_ru="Альфа", spellings=("Alpha",))])
    assert gaz.resolve("alpha oblast").code == gaz.resolve("Альфа").code == gaz.resolve("Alpha").code == "KZ-A"
    assert gaz.spellings("KZ-A") == ["Alpha Region", "Альфа", "Alpha"]
    with pytest.raises(ConfigError, match="kind"):
        Gazetteer([Region("KZ-A", "A", "town")])  # type: ignore[arg-type]


def test_region_api() -> None:
    national = GAZ.get("kz")
    assert national.is_national and national.kind == "country" and national.name == "Kazakhstan"
    assert GAZ.get("KZ-AKM") is GAZ.get("KZ-11") is GAZ.resolve("Akmola")
    assert GAZ.get("KZ-11").name_ru == "Акмолинская область" and GAZ.get("KZ-11").name_kk == "Ақмола облысы"
    turkistan = GAZ.get("KZ-61")
    assert turkistan.name == "Turkistan Region" and turkistan.predecessors == ("KZ-YUZ",)
    start = turkistan.valid_from
    assert start is not None
    assert turkistan.in_force(start) and not turkistan.in_force(start - timedelta(days=1))
    assert GAZ.spellings("KZ-75")[:3] == ["Almaty", "город Алматы", "Алматы қаласы"]
    with pytest.raises(UnknownRegionError):
        GAZ.get("KZ-99")
    assert len(GAZ) == len(list(GAZ)) == 22
    assert default_gazetteer() is GAZ
    assert isinstance(next(iter(GAZ)), Region)


KNOWN = [(spelling, region.code) for region in GAZ for spelling in GAZ.spellings(region.code)]
DASHES = ["-", "‐", "‑", "‒", "–", "—", "―", "−", " ", "  ", " - ", "\t"]


@given(
    case=st.sampled_from(KNOWN),
    flips=st.lists(st.booleans(), min_size=1, max_size=40),
    pad=st.tuples(st.text(" \t\n\u00a0", max_size=3), st.text(" \t\n\u00a0", max_size=3)),
    dashes=st.lists(st.sampled_from(DASHES), min_size=8, max_size=8),
)
def test_resolve_invariant_under_case_whitespace_and_dashes(
    case: tuple[str, str], flips: list[bool], pad: tuple[str, str], dashes: list[str]
) -> None:
    spelling, code = case
    cased = "".join(c.upper() if flips[i % len(flips)] else c.lower() for i, c in enumerate(spelling))
    parts = re.split(r"[ \-]", cased)
    joined = parts[0] + "".join(dash + part for dash, part in zip(dashes * 4, parts[1:], strict=False))
    assert GAZ.resolve(pad[0] + joined + pad[1]).code == code
