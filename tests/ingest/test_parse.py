"""The parser reads back exactly what the simulator writes, and never puts a figure under a wrong region."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.clock import ManualClock
from ingest.pages import read_release_page
from ingest.parse import parse_release, parse_text
from ingest.sources import load_source
from tests.support.paths import DAY_2022, DAY_2023
from turnout_watch.core.dayfile import load_day
from turnout_watch.core.normalize import normalize_release
from turnout_watch.sim.cec_site import CecSimulator
from turnout_watch.sim.render import (
    AS_OF,
    DASH_SPACING,
    DASHES,
    LANGS,
    LAYOUTS,
    PCT_SIGNS,
    TIME_FORMATS,
    Style,
    render_release,
    spellings_for,
)

DAY = date(2022, 11, 20)
RELEASES = [
    (day.election.date, release.as_of, dict(normalize_release(release, day.election.date).release.turnout))  # type: ignore[union-attr]
    for day in (load_day(DAY_2022), load_day(DAY_2023))
    for release in day.releases()
]
styles = st.builds(
    Style,
    layout=st.sampled_from(LAYOUTS),
    decimal=st.sampled_from(",."),
    dash=st.sampled_from(DASHES),
    dash_spacing=st.sampled_from(DASH_SPACING),
    pct_sign=st.sampled_from(PCT_SIGNS),
    as_of_form=st.integers(0, len(AS_OF["ru"]) - 1),
    time_format=st.sampled_from(TIME_FORMATS),
    spelling=st.integers(0, 1 << 16),
    national_first=st.booleans(),
    template=st.integers(0, 7),
)


@settings(max_examples=400, deadline=None)
@given(release=st.sampled_from(RELEASES), lang=st.sampled_from(LANGS), style=styles)
def test_every_rendered_release_parses_back_exactly(release, lang, style) -> None:  # type: ignore[no-untyped-def]
    on, as_of, figures = release
    rendered = render_release(figures, as_of.timetz(), lang, style, on=on)
    page = f"<html><body><h1>{rendered.title}</h1><div class='article-body'>{rendered.body_html}</div></body></html>"
    parsed = parse_release(page, on=on, selector=".article-body")
    assert parsed.figures() == figures
    assert parsed.as_of == as_of
    assert parsed.unparsed == [] and parsed.unknown_regions == [] and parsed.missing == []


def test_every_spelling_of_every_region_parses_in_a_list() -> None:
    """Not left to chance: each usable spelling of each unit, once, in every language."""
    for lang in LANGS:
        for code in ("KZ", *sorted(c for c in RELEASES[0][2] if c != "KZ")):
            for name in spellings_for(code, lang):
                parsed = parse_text(f"{name} – 12,34%", on=DAY)
                assert parsed.figures() == {code: 12.34}, (lang, name, parsed)


def test_simulator_pages_parse_back_with_the_source_config() -> None:
    """The whole page the simulator serves, read with the shipped cec-kz selectors."""
    day = load_day(DAY_2023)
    sim = CecSimulator(day, ManualClock(datetime.fromisoformat("2023-03-19T23:00:00+06:00")), seed=3)
    source = load_source("cec-kz")
    assert [item.as_of is not None for item in sim.visible()] == [False] * 2 + [True] * 7  # notices, releases
    for item in sim.visible():
        for site in ("rus", "kaz", "eng"):
            page = read_release_page(sim.release_page(site, item, layout=False).encode(), source, day.election.date)
            if item.as_of is None:
                assert page.parsed.figures() == {}
                continue
            assert page.layout_ok and page.published_at == item.published_at
            assert page.parsed.figures() == item.figures and page.parsed.as_of == item.as_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in the Abay region –55,23%", {"KZ-10": 55.23}),
        ("15.13% cast their votes in Abai region", {"KZ-10": 15.13}),
        ("Акмолинская область – 15,61%", {"KZ-11": 15.61}),
        ("Ақмола облысы бойынша 15,61 %", {"KZ-11": 15.61}),
        ("Qarağandy oblysy—32.27%", {"KZ-35": 32.27}),
        ("Almaty Region 20.12%, Almaty 8.42%, Astana 13.73%", {"KZ-19": 20.12, "KZ-75": 8.42, "KZ-71": 13.73}),
        ("<table><tr><td>1</td><td>Шымкент</td><td>30,92</td></tr></table>", {"KZ-79": 30.92}),
        ("Turkistan Region ‒ 102,5%", {"KZ-61": 102.5}),  # out of range passes through to the detectors
        ("По республике − 23,37%", {"KZ": 23.37}),
    ],
)
def test_formats_from_the_issue(text: str, expected: dict[str, float]) -> None:
    assert parse_release(text, on=DAY).figures() == expected


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("Явка на 10.00", time(10, 0)),
        ("As of 10:10 a.m. turnout", time(10, 10)),
        ("by 4 p.m.", time(16, 0)),
        ("Сағат 12:00-дегі жағдай бойынша", time(12, 0)),
        ("20.11.2022 жылғы 14.00-ге", time(14, 0)),
        ("по состоянию на 18:00 (опубликовано 18:05)", time(18, 0)),
    ],
)
def test_time_formats(text: str, at: time) -> None:
    parsed = parse_text(text + "\nАбай – 1,00%", on=DAY)
    assert parsed.as_of is not None and parsed.as_of.timetz().replace(tzinfo=None) == at


def test_the_date_is_read_from_the_text_when_not_given() -> None:
    parsed = parse_text("20 ноября 2022 года, явка на 10:00\nАбай – 25,64%")
    assert parsed.as_of == datetime.fromisoformat("2022-11-20T10:00:00+06:00")


def test_a_typo_is_reported_with_suggestions_never_placed() -> None:
    parsed = parse_text("Pavodar region – 27,9%\nPavlodar region – 27,90%", on=DAY)
    assert parsed.turnout_pct == {"KZ-55": 27.9}
    assert parsed.unparsed == ["Pavodar region - 27,9%"]
    (unknown,) = parsed.unknown_regions
    assert unknown["name"] == "Pavodar region" and unknown["suggestions"][0] == "Pavlodar Region"


@pytest.mark.parametrize(
    "text",
    [
        "Astana and Almaty 5,5%",  # two regions, one number
        "Abai 25,64% 26,10%",  # one region, two numbers
        "South Kazakhstan Region – 30,00%",  # a real name, but the unit did not exist in 2022
        "Turnout rose to 40,00%",  # no region at all
    ],
)
def test_a_value_that_cannot_be_placed_goes_to_unparsed(text: str) -> None:
    parsed = parse_text(text, on=DAY)
    assert parsed.figures() == {} and parsed.unparsed


def test_conflicting_figures_for_one_region_place_neither() -> None:
    parsed = parse_text("Abai – 25,64%\nАбай облысы – 26,64%\nAstana – 13,73%", on=DAY)
    assert parsed.figures() == {"KZ-71": 13.73} and len(parsed.unparsed) == 1


@pytest.mark.parametrize("body", [b"", b"\x00\xff\xfe garbage", b"<html><body><p>" * 5000, "Явка".encode("cp1251")])
def test_garbage_never_raises(body: bytes) -> None:
    assert parse_release(body, on=DAY).figures() == {}


def test_parse_cli_prints_json_and_fails_without_regions(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.html", tmp_path / "bad.txt"
    good.write_text("<p>Явка на 10:00</p><ul><li>Абай облысы – 25,64%</li></ul>", encoding="utf-8")
    bad.write_text("no figures here", encoding="utf-8")
    cmd = [sys.executable, "-m", "turnout_watch.cli", "parse"]
    ok = subprocess.run([*cmd, str(good), "--date", "2022-11-20"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert '"KZ-10": 25.64' in ok.stdout and '"as_of": "2022-11-20T10:00:00+06:00"' in ok.stdout
    failed = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "no region" in failed.stderr


@pytest.mark.parametrize(
    ("text", "national"),
    [
        ("По состоянию на 12:00 явка составила 41,2%.\nАбай – 40,00%", 41.2),
        ("На 12:00 проголосовали 41,2% избирателей.\nАбай – 40,00%", 41.2),
        ("В голосовании к 12:00 приняли участие 41,2 процента граждан.\nАбай – 40,00%", 41.2),
        ("На 12:00 по стране - 41,2%.\nАбай – 40,00%", 41.2),
        ("В целом по Казахстану на 12:00 явка 41,2%.\nАбай – 40,00%", 41.2),
        ("Сағат 12:00-дегі жағдай бойынша сайлаушылардың 41,2 пайызы дауыс берді.\nАбай – 40,00%", 41.2),
        ("Сағат 12:00-де азаматтардың 41,2 %-ы бюллетень алды.\nАбай – 40,00%", 41.2),
        ("Республика бойынша сағат 12:00-де 41,2 %.\nАбай – 40,00%", 41.2),
        ("Saǵat 12:00-de barlyq adamnyń 41,2 paıyzy daýys berdi.\nAbaı – 40,00%", 41.2),
        ("Respýblıka boıynsha saǵat 12:00-de 41,2%.\nAbaı – 40,00%", 41.2),
        ("As of 12:00 turnout stood at 41.2%.\nAbai – 40.00%", 41.2),
        ("As of 12:00 nationwide, 41.2% had voted.\nAbai – 40.00%", 41.2),
        # A place before the figure but with its own figure: the country's comes after it.
        ("На 12:00 в Астане 30,5%, а по стране - 41,2%.", 41.2),
        ("ASTANA - Turnout stood at 41.2% as of 12:00.\nAbai – 40.00%", 41.2),  # a dateline is no place
        ("На 12:00 явка составила 41%. Подробнее: явка составила 41,2%.", 41.2),  # rounded, then exact
    ],
)
def test_the_national_figure_in_a_plain_sentence(text: str, national: float) -> None:
    assert parse_text(text, on=DAY).national == national


@pytest.mark.parametrize(
    "text",
    [
        "На 12:00 в столице явка составила 60,36%.",  # a city, named
        "На 12:00 в Павлодарской области проголосовали 49,18% избирателей.",  # a region
        "На 12:00 в городе явка составила 60,36%.",  # a place without a name
        "На 12:00 в регионе проголосовали 49,18% избирателей.",
        "Сағат 12:00-де Павлодар облысында азаматтардың 49,18% дауыс берді.",
        "As of 12:00 turnout in the city stood at 49.18%.",
        "As of 12:00 Almaty region turnout was 49.18%.",
        "На 12:00 общая явка в Алматы составила 30,5%.",  # "общая" but in a city
        "На 12:00 проголосовали 8 108 668 избирателей.",  # a count, not a share
        "На 12:00 явка составила более 50%.",  # a bound
        "Сағат 12:00-де сайлаушылардың 51% астамы дауыс берді.",
        "As of 12:00 turnout was over 50%.",
        "На 12:00 явка составила от 40% до 70%.",  # a range
        "На 12:00 явка выросла на 10%.",  # a change
        "В 2019 году явка составила 77,5%.",  # another election
        "На 12:00 явка составила 41,2% против 35,1% на прошлых выборах.",  # a comparison
        "На 12:00 за поправки проголосовали 77,18%.",  # a vote, not the turnout
        "На 12:00 явка составила 41,2%. На 12:00 по стране - 45,3%.",  # two that disagree: none
    ],
)
def test_no_national_figure_from_a_sentence_about_something_else(text: str) -> None:
    assert parse_text(text, on=DAY).national is None


def test_the_national_figure_is_the_one_of_the_release_own_hour() -> None:
    text = "По состоянию на 10 часов явка составила 20,5%, а к 12 часам - 35,1%.\nАбай – 19,00%"
    parsed = parse_text(text, on=DAY)
    assert parsed.as_of is not None and parsed.as_of.hour == 10 and parsed.national == 20.5
    later = "Сейчас 12:00. По состоянию на 12:00 явка 35,1%. Ранее, по состоянию на 10:00, явка 20,5%."
    assert parse_text(later, on=DAY).national == 35.1


@pytest.mark.parametrize(
    ("text", "national"),
    [
        ("На 10 часов 17,57% из всех избирателей Республики Казахстан получили бюллетени.", 17.57),
        # A rounded headline and the commission's exact figure are one figure.
        ("Final turnout in Kazakhstan – 77%\nAs of 08:00 PM, 77.1% of the total number of voters voted.", 77.1),
        # "Там" points back at Almaty: its 11 % is no one's national figure.
        (
            "По состоянию на 12.00 бюллетени получили 39,23 % от общего количества граждан.\n"
            "Самая низкая явка - в Алматы. Там на участки пришли только 11 % граждан.",
            39.23,
        ),
    ],
)
def test_the_national_figure_beside_other_sentences(text: str, national: float) -> None:
    assert parse_text(text, on=DAY).national == national


def test_a_demonym_is_not_the_voters_of_the_country() -> None:
    # "батысқазақстандықтардың" (of the West Kazakhstanis) holds "қазақстандық" but is one region.
    text = "Ал батысқазақстандықтардың 38,67 пайызы осы сағатқа дейін белсенділік танытқан."
    assert parse_text(text, on=DAY).national is None


def test_a_sentence_pointing_back_takes_the_place_of_the_one_before() -> None:
    text = (
        "Самая высокая явка зафиксирована в Шымкенте. Там на референдум пришли 57,03 % граждан. "
        "Қызылорда облысының тұрғындары белсенді. Өңір халқының 76,15 пайызы дауыс берген."
    )
    assert parse_text(text, on=DAY).turnout_pct == {"KZ-79": 57.03, "KZ-43": 76.15}
    # Not when the sentence before names two places, or the pointing one names its own.
    assert parse_text("В Астане и Алматы явка низкая. Там 30,15%.", on=DAY).turnout_pct == {}


@pytest.mark.parametrize(
    "text",
    [
        # Prose with two-decimal figures: the whole ones are the writer's rounding (77,39 and 73,81).
        "Týrkistan oblysy -80,66 % dauys berse, Qaraghandy oblysy -77%, Aqmola oblysy-73% dauys bergen.",
        # Prose that hedges a place's figure: "В Алматы 15%" was 15,7.
        "Шымкент - там проголосовало больше 34% избирателей. В Карагандинской области 33,5%. В Алматы 15%.",
    ],
)
def test_a_whole_number_in_prose_that_may_be_rounded_is_not_placed(text: str) -> None:
    parsed = parse_text(text, on=DAY)
    assert all(value != round(value) for value in parsed.turnout_pct.values()), parsed.turnout_pct
    assert parsed.turnout_pct


def test_whole_numbers_stay_in_lists_and_in_unhedged_prose() -> None:
    assert parse_text("- в Жамбылской области – 65%;\n- в Абайской области – 56,14%;", on=DAY).turnout_pct == {
        "KZ-31": 65.0,
        "KZ-10": 56.14,
    }
    prose = "В Алматинской - 25,2% и Восточно-Казахстанской областях - 27,2%, в Актюбинской - 16%."
    assert parse_text(prose, on=DAY).turnout_pct["KZ-15"] == 16.0


@pytest.mark.parametrize(
    ("text", "next_at"),
    [
        ("The next operational information will be presented at 12:10.", time(12, 10)),
        ("The voting turnout data will be given at 12:10 p.m., 02:10 p.m., and 04:10 p.m. Astana time.", time(12, 10)),
        ("Further information on voter turnout is to be available at 12:00 a.m., 02:00 p.m.", time(12, 0)),
        ("The next operational data will be announced at 04:10 pm.", time(16, 10)),
        ("Следующая информация будет представлена в 18:10.", time(18, 10)),
    ],
)
def test_the_announced_next_release_in_english_is_not_the_as_of_time(text: str, next_at: time) -> None:
    parsed = parse_text("As of 10:10 a.m. Akmola region - 10.2%. " + text, on=DAY)
    assert parsed.next_release is not None and parsed.next_release.timetz().replace(tzinfo=None) == next_at
    assert parsed.as_of is not None and parsed.as_of.hour == 10 and parsed.as_of.minute == 10
    assert parse_text("Akmola region - 10.2%. " + text, on=DAY).as_of is None


def test_a_time_something_will_be_published_at_is_the_next_release_not_the_as_of_time() -> None:
    text = (
        "Saǵat 16:05-tegi jaǵdaı boıynsha 62,34 paıyz.\n- Abaı oblysy boıynsha – 73,57%\n"
        "Saılaýshylardyń belsendiligi jónindegi sońǵy aqparat Astana ýaqyty boıynsha 20:05-te jarııalanady."
    )
    parsed = parse_text(text, on=date(2022, 11, 20))
    assert parsed.as_of is not None and parsed.as_of.strftime("%H:%M") == "16:05"
    assert parsed.next_release is not None and parsed.next_release.strftime("%H:%M") == "20:05"
    later = parse_text("В Алматы – 52,2%. Завершение голосования состоится в 21:00 по их времени.", on=date(2019, 6, 9))
    assert later.as_of is None


def test_a_list_after_a_sentence_about_an_earlier_vote_is_read_but_not_that_sentence() -> None:
    text = (
        "Бұл біздің елде бұрын болған сайлаулар үшін рекорд 60,2 %. Өңірлер бойынша: Алматы облысы бойынша – 92,67 % "
        "Ақмола облысы бойынша – 78,68 % Ақтөбе облысы бойынша – 78,28 % Атырау облысы бойынша – 82,91 % "
        "Жамбыл облысы бойынша – 79,97 %."
    )
    parsed = parse_text(text, on=date(2016, 3, 20))
    assert parsed.turnout_pct == {"KZ-19": 92.67, "KZ-11": 78.68, "KZ-15": 78.28, "KZ-23": 82.91, "KZ-31": 79.97}
    alone = parse_text("Два часа назад в Алматы было 10,5 %. В Астане 12,1 %.", on=date(2019, 6, 9))
    assert alone.turnout_pct == {}


def test_a_whole_number_in_a_run_of_bare_decimals_is_a_figure_but_not_in_two_decimal_prose() -> None:
    text = (
        "Ақмола облысы бойынша 81, Ақтөбе облысы бойынша 84,1, Алматы облысы бойынша 86,3, Атырау облысы бойынша 71,1, "
        "Жамбыл облысы бойынша 73,8, Павлодар облысы бойынша 73,1 пайыз."
    )
    assert parse_text(text, on=date(2019, 6, 9)).turnout_pct["KZ-11"] == 81.0
    rounded = "Túrkistan oblysy -80,66 %, Qaraghandy oblysy -77%, Pavlodar oblysy-75,53, Aqmola oblysy-73%."
    assert "KZ-35" not in parse_text(rounded, on=date(2022, 6, 5)).turnout_pct


def test_a_voters_figure_said_of_here_is_not_the_national_one() -> None:
    text = (
        "Азаматтардың 54,19 пайызы дауыс берді.\n"
        "Алматы қаласында белсенділік төмен. Дауыс беруге мұнда сайлаушылардың 25,82 пайызы ғана келген."
    )
    parsed = parse_text(text, on=date(2023, 3, 19))
    assert parsed.national == 54.19
    assert parsed.turnout_pct == {"KZ-75": 25.82}


def test_kazakh_demonyms_name_their_place_by_rule() -> None:
    from turnout_watch.core.gazetteer import default_gazetteer

    g = default_gazetteer()
    assert g.find_forms("қызылордалықтардың") == {"KZ-43"}
    assert g.find_forms("батысқазақстандықтардың") == {"KZ-27"}
    assert g.find_forms("павлодарлықтар") == {"KZ-55"}
    assert g.find_forms("шымкенттіктер") == {"KZ-79"}
    assert g.find_forms("алматылықтар") == {"KZ-75"}  # as bare "Алматы": the city


def test_party_share_beside_a_demonym_is_never_turnout() -> None:
    parsed = parse_text("Қызылордалықтардың 74,46%-ы «Nur Otan» партиясын таңдады", on=date(2021, 1, 10))
    assert parsed.turnout_pct == {}


def test_a_direction_qualifies_a_name_into_another_place() -> None:
    parsed = parse_text("Оңтүстік астанамыз Алматыда 15,45 пайыз. Ал бас қаламызда 32,33 пайыз.", on=date(2016, 3, 20))
    assert parsed.turnout_pct == {"KZ-75": 15.45, "KZ-71": 32.33}


def test_the_capital_among_the_reporting_territorial_commissions_owns_no_figure() -> None:
    text = (
        '"Облыстардың, республикалық маңызы бар қалалардың және елорданың аумақтық комиссиялары ұсынған '
        "деректерге сәйкес, сағат 14.00-дегі жағдай бойынша тізімдерге енгізілген азаматтардың жалпы санының "
        '46,84%-і бюллетень алды", - деді ОСК мүшесі.'
    )
    parsed = parse_text(text, on=date(2023, 3, 19))
    assert parsed.national == 46.84
    assert parsed.turnout_pct == {}


@pytest.mark.parametrize(
    ("text", "on"),
    [
        ("Сайлаушылардың 47 пайызға жуығы бюллетень алды", date(2023, 3, 19)),
        ("Voter turnout exceeds 43% at referendum in Kazakhstan", date(2022, 6, 5)),
        ("Turnout surpassed 43% by noon", date(2022, 6, 5)),
        ("Явка составила приблизительно 43%", date(2022, 6, 5)),
    ],
)
def test_a_hedged_figure_is_never_the_national_one(text: str, on: date) -> None:
    assert parse_text(text, on=on).national is None


def test_a_hedged_figure_is_never_a_regions() -> None:
    parsed = parse_text(
        "In Astana turnout exceeds 40%. Алматы облысында сайлаушылардың 50 пайызға жуығы", on=date(2022, 6, 5)
    )
    assert parsed.turnout_pct == {}


def test_the_as_of_is_not_another_zones_clock_nor_the_count_abroad() -> None:
    zoned = (
        "ЦИК: By 9:00 GMT turnout amounted to 35.1%\nЦИК Казахстана: К 9:00 мск явка составила 35,1%\n"
        "By 12:00 local time (09:00 MSK) amounted to 35.1%."
    )
    assert parse_text(zoned, on=date(2019, 6, 9)).as_of.strftime("%H:%M") == "12:00"  # type: ignore[union-attr]
    abroad = (
        "89.69% of all the voters had claimed their ballots by 6 p.m.\nAkmola Oblast - 94.81%\n"
        "Over 10 thousand Kazakhstanis voted abroad as of 5 p.m.\n"
        "65 polling stations abroad have 20,822 on their lists. As of 5 p.m. 10,861 Kazakhstanis - 52.16% - had voted."
    )
    parsed = parse_text(abroad, on=date(2015, 4, 26))
    assert parsed.as_of.strftime("%H:%M") == "18:00"  # type: ignore[union-attr]
    assert parsed.turnout_pct == {"KZ-11": 94.81}
    assert parsed.national == 89.69
    alone = parse_text(
        "As of 22:00 voting has ended in all regions and at 25 polling stations abroad.", on=date(2022, 6, 5)
    )
    assert alone.as_of.strftime("%H:%M") == "22:00"  # type: ignore[union-attr]


def test_the_kazakh_situation_phrase_outranks_another_dated_hour() -> None:
    text = (
        "ОСК сағат 18.00-дегі ақпаратты жариялады.\n"
        "2023 жылғы 19 наурызда сағат 18.10-дағы жағдай бойынша азаматтардың жалпы санының 53,11% бюллетеньдер алды."
    )
    parsed = parse_text(text, on=date(2023, 3, 19))
    assert parsed.as_of.strftime("%H:%M") == "18:10"  # type: ignore[union-attr]
    assert parsed.national == 53.11


def test_an_earlier_release_appended_to_the_article_is_its_hours_not_a_conflict() -> None:
    text = (
        "41.69 percent of all the voters have cast their ballots by 12:00.\n"
        "Akmola Oblast - 51.01%\nAktobe Oblast - 36.11%\n\n"
        "By 10 a.m. Astana time 19.17% of all the voters have cast their votes.\n"
        "She confirmed that 19.17% of the registered voters picked up their ballots.\n"
        "Akmola Oblast - 23.8%\nAktobe Oblast - 16.08%\nAtyrau Oblast - 11.13%\n"
    )
    parsed = parse_text(text, on=date(2015, 4, 26))
    assert parsed.turnout_pct == {"KZ-11": 51.01, "KZ-15": 36.11}
    assert parsed.national == 41.69
    assert any("Atyrau" in u and "stated for 10:00" in u for u in parsed.unparsed)
    # A line restating the release's own hour ends the earlier hour's part.
    again = parse_text(text + "As of 12:00 in Atyrau Oblast - 47.54%\n", on=date(2015, 4, 26))
    assert again.turnout_pct["KZ-23"] == 47.54


def test_area_is_a_region_word_and_kazakhstan_beside_one_is_not_the_country() -> None:
    parsed = parse_text("in Akmola area - 41.31%, in Almaty area - 43.05%, in West", on=date(2022, 6, 5))
    assert parsed.turnout_pct == {"KZ-11": 41.31, "KZ-19": 43.05}
    wrapped = parse_text(
        "in Atyrau area - 37.33%, in West\nKazakhstan area - 47.58%, in Zhambyl area - 55.15%", on=date(2022, 6, 5)
    )
    assert wrapped.national is None
    assert wrapped.turnout_pct == {"KZ-23": 37.33, "KZ-31": 55.15}


def test_one_whole_number_among_many_decimals_is_a_figure_and_a_refused_one_is_reported() -> None:
    text = (
        "As of 4:00 pm: Akmola region - 65.11%, Aktobe region 53.52%, Almaty region - 66.58%, Atyrau region - 56.19%, "
        "Zhambyl region - 67.36%, Karaganda region - 68.69%, Turkestan region - 72%, Pavlodar region - 64.58%."
    )
    assert parse_text(text, on=date(2022, 6, 5)).turnout_pct["KZ-61"] == 72.0
    rounded = parse_text("Túrkistan oblysy -80,66 %, Qaraghandy oblysy -77%, Aqmola oblysy-73%.", on=date(2022, 6, 5))
    assert "KZ-35" not in rounded.turnout_pct
    assert any("maybe rounded" in u for u in rounded.unparsed)


def test_two_regions_joined_by_and_after_a_figure() -> None:
    text = "в Павлодарской - 71,4, в Северо-Казахстанской - 80,2 и Южно-Казахстанской - 78,76 процентов."
    parsed = parse_text(text, on=date(2012, 1, 15))
    assert parsed.turnout_pct == {"KZ-55": 71.4, "KZ-59": 80.2, "KZ-YUZ": 78.76}


def test_a_figure_glued_to_the_next_sentence_and_a_space_inside_a_decimal() -> None:
    glued = parse_text("по Шымкенту - 59,56%.Всего проголосовали 8 108 668 человек.", on=date(2022, 11, 20))
    assert glued.turnout_pct == {"KZ-79": 59.56}
    spaced = parse_text("Atyrau Oblast - 47.54%\nZhambyl Oblast - 49. 91%\n", on=date(2015, 4, 26))
    assert spaced.turnout_pct == {"KZ-23": 47.54, "KZ-31": 49.91}


def test_a_name_in_apposition_and_a_superlative_are_one_place() -> None:
    capital = parse_text("In the capital city of Astana, 45.19% of eligible voters participated.", on=date(2024, 10, 6))
    assert capital.turnout_pct == {"KZ-71": 45.19}
    least = parse_text(
        "Больше всего в Шымкенте - 50,1%, меньше всего явка по-прежнему в Алматы - 16,91%.", on=date(2024, 10, 6)
    )
    assert least.turnout_pct == {"KZ-79": 50.1, "KZ-75": 16.91}


@pytest.mark.parametrize(
    ("text", "national"),
    [
        ("По информации ЦИК, проголосовали 8 845 280 человек из 12 461 796, что составляет 70,98%.", 70.98),
        ("На референдуме проголосовало свыше 7 млн казахстанцев, или 57,68%.", 57.68),
        ("8,030,739 citizens received a ballot. This amounts to 68.44% of the residents on the voting list.", 68.44),
        ("В Алматы проголосовали 200 тысяч человек, или 15,5%.", None),
    ],
)
def test_a_count_restated_as_a_share_is_the_national_figure(text: str, national: float | None) -> None:
    assert parse_text(text, on=date(2024, 10, 6)).national == national


def test_the_commission_s_russian_sentence_gives_the_as_of_over_a_lead_s_hour() -> None:
    text = (
        "О явке избирателей по состоянию на 18:00 рассказали на пресс-конференции в ЦИК.\n"
        "Согласно данным, представленным комиссиями, по состоянию на 18:05 часов 20 ноября 2022 года "
        "бюллетени получили 67,85% от общего количества граждан, включенных в списки.\n"
        "- по Акмолинской области – 72,8 %\n"
    )
    parsed = parse_text(text, on=date(2022, 11, 20))
    assert parsed.as_of is not None and parsed.as_of.strftime("%H:%M") == "18:05"
    assert parsed.turnout_pct == {"KZ-11": 72.8}


def test_noon_is_the_as_of_only_where_its_sentence_gives_a_figure() -> None:
    at_noon = parse_text(
        "К полудню проголосовали 25,1 % избирателей.\nпо Акмолинской области – 30,2 %", on=date(2021, 1, 10)
    )
    assert at_noon.as_of is not None and at_noon.as_of.strftime("%H:%M") == "12:00"
    later = parse_text(
        "Елдегі сайлаушылардың 43,9% өз таңдауын жасады. Қаладағы сайлаушылардың жартысына жуығы түске дейін "
        "дауыс беріп үлгерген.\nАқмола облысы бойынша – 41,3 %",
        on=date(2021, 1, 10),
    )
    assert later.as_of is None  # a 14:00 release telling what happened before noon


def test_a_page_s_publication_stamp_is_not_the_as_of() -> None:
    for stamp in ("05.12.2005 03:10", "26.07.2021ж. 20:00"):
        parsed = parse_text(f"{stamp}\nЯвка составила 45,5%.\nпо Акмолинской области – 50,1 %", on=date(2005, 12, 4))
        assert parsed.as_of is None, stamp
    asof = parse_text("По состоянию на 10.01.2021 14:00 явка составила 45,5%.", on=date(2021, 1, 10))
    assert asof.as_of is not None and asof.as_of.strftime("%H:%M") == "14:00"


def test_a_candidate_s_share_is_not_the_national_turnout() -> None:
    text = (
        "Председатель ЦИК огласил итоги выборов в республике. За действующего президента проголосовало "
        "6 100 694 человека, что составляет 91,01 процента всех избирателей."
    )
    assert parse_text(text, on=date(2005, 12, 4)).national is None
    assert parse_text("Назарбаева выбрали 91,01 процента избирателей", on=date(2005, 12, 4)).national is None


def test_the_capital_s_clock_names_no_place() -> None:
    text = "The Central Election Commission reported a 17.79% voter turnout as of 10 a.m. local Astana time."
    parsed = parse_text(text, on=date(2024, 10, 6))
    assert parsed.national == 17.79 and parsed.turnout_pct == {}


def test_names_then_figures_pair_in_order_only_where_the_text_says_respectively() -> None:
    said = "The East Kazakhstan and the Abai regions saw turnouts of 73.79% and 69.57%, respectively."
    assert parse_text(said, on=date(2024, 10, 6)).turnout_pct == {"KZ-63": 73.79, "KZ-10": 69.57}
    ru = "В Акмолинской и Костанайской областях явка составила 61,2% и 58,4% соответственно."
    assert parse_text(ru, on=date(2024, 10, 6)).turnout_pct == {"KZ-11": 61.2, "KZ-39": 58.4}
    unsaid = "The East Kazakhstan and the Abai regions saw turnouts of 73.79% and 69.57%."
    assert parse_text(unsaid, on=date(2024, 10, 6)).turnout_pct == {}


@pytest.mark.parametrize(
    ("text", "as_of", "national", "figures"),
    [
        (  # "This amounts to" reads with the sentence before it, which names a place
            "As of 2 p.m., 350,000 voters in Almaty region cast their ballots. "
            "This amounts to 55.3% of the voters on the lists.",
            "14:00",
            None,
            {},
        ),
        (  # a reminder of the 10:00 release does not outrank the 14:00 one
            "По состоянию на 14:00 проголосовали 45,2% избирателей.\n"
            "Напомним, по состоянию на 10:00 бюллетени получили 15,2% избирателей.",
            "14:00",
            45.2,
            {},
        ),
        ("As of 14:00 (UTC+5), turnout was 45.2%, the CEC said. At 10:00 it stood at 15.2%.", "14:00", 45.2, {}),
        ("As of 14:00 GMT+6, turnout reached 45.2%. At 10:00 turnout was 15.2%.", "14:00", 45.2, {}),
        (  # a date and time read as the as-of, not as a publication stamp
            "20.11.2022 ж. 14:00-дегі жағдай бойынша сайлаушылардың 45,2 пайызы дауыс берді.\n"
            "Ал сағат 10:00-дегі жағдай бойынша бұл көрсеткіш 15,2 пайыз болған.",
            "14:00",
            45.2,
            {},
        ),
        (  # a whole number among decimals that compares with another year is not placed
            "По состоянию на 14:00: Акмолинская область - 50,12%, Актюбинская - 48,21%, Алматинская - 55,31%, "
            "Атырауская - 41,52%, ЗКО - 40,11%, Жамбылская - 60,01%, "
            "в Карагандинской явка выше, чем в 2019 году - 61%.",
            "14:00",
            None,
            {"KZ-11": 50.12, "KZ-15": 48.21, "KZ-19": 55.31, "KZ-23": 41.52, "KZ-27": 40.11, "KZ-31": 60.01},
        ),
    ],
)
def test_the_review_s_wrong_readings_stay_fixed(
    text: str, as_of: str, national: float | None, figures: dict[str, float]
) -> None:
    parsed = parse_text(text, on=date(2022, 11, 20))
    assert (parsed.as_of.strftime("%H:%M") if parsed.as_of else None) == as_of
    assert parsed.national == national
    assert parsed.turnout_pct == figures
