"""The edge: a CEC release as the source spelled it becomes a release keyed by region codes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from tests.support.days import election_on
from turnout_watch.core.dayfile import CecRelease
from turnout_watch.core.normalize import election_context, normalize_release, region_names

UTC5, UTC6 = timezone(timedelta(hours=5)), timezone(timedelta(hours=6))
NOON = datetime(2023, 3, 19, 12, tzinfo=UTC6)
DAY = date(2023, 3, 19)
WHERE = "release as of 2023-03-19T12:00:00+06:00"


def cec(turnout: dict[str, float], **raw: Any) -> CecRelease:
    return CecRelease("e", NOON, NOON + timedelta(minutes=10), turnout, raw)


def test_every_spelling_becomes_its_code() -> None:
    result = normalize_release(cec({"Akmola": 30.0, "Туркестан": 40.5, "Итого": 35.0}), DAY)
    assert result.problems == []
    assert result.release is not None
    assert dict(result.release.turnout) == {"KZ-11": 30.0, "KZ-61": 40.5, "KZ": 35.0}
    assert (result.release.election, result.release.as_of, result.release.published_at) == (
        "e",
        NOON,
        NOON + timedelta(minutes=10),
    )
    # without the day's header no context is attached
    assert result.release.timezone is None and result.release.registered == {} and result.release.revision == 0


def test_an_unknown_name_is_reported_with_its_figure_unused_and_the_rest_kept() -> None:
    result = normalize_release(cec({"Akmola": 30.0, "Atlantis": 50.0, "Turkistan": 40.0}), DAY)
    assert result.release is not None
    assert dict(result.release.turnout) == {"KZ-11": 30.0, "KZ-61": 40.0}
    [problem] = result.problems
    assert problem.startswith(f"{WHERE}: unknown region 'Atlantis' (on 2023-03-19); closest known spellings: ")
    assert problem.endswith("; its figure 50.0 was not used")


def test_a_name_not_in_force_on_the_election_date_is_not_placed() -> None:
    """Abai Region was formed in June 2022: a 2019 release naming it is wrong, not Abai's figure."""
    on = date(2019, 6, 9)
    event = CecRelease(
        "e",
        datetime(2019, 6, 9, 12, tzinfo=UTC6),
        datetime(2019, 6, 9, 12, tzinfo=UTC6),
        {"Abai": 60.0, "Akmola": 30.0},
        {},
    )
    result = normalize_release(event, on)
    assert result.release is not None and dict(result.release.turnout) == {"KZ-11": 30.0}
    [problem] = result.problems
    assert "Abai Region (KZ-10) was formed on 2022-06-08" in problem and "its figure 60.0 was not used" in problem


def test_two_spellings_of_one_code_that_disagree_are_both_left_out() -> None:
    result = normalize_release(cec({"Akmola": 30.0, "Акмола": 31.0, "Almaty": 40.0}), DAY)
    assert result.release is not None
    assert dict(result.release.turnout) == {"KZ-75": 40.0}
    assert result.problems == [
        f"{WHERE}: 'Акмола' and 'Akmola' are both KZ-11 but differ (31.0 vs 30.0); neither was used"
    ]


def test_two_spellings_that_agree_are_one_figure() -> None:
    result = normalize_release(cec({"Akmola": 30.0, "Акмола": 30.0}), DAY)
    assert result.problems == []
    assert result.release is not None and dict(result.release.turnout) == {"KZ-11": 30.0}


def test_a_third_spelling_agreeing_with_the_first_does_not_bring_the_figure_back() -> None:
    result = normalize_release(cec({"Akmola": 30.0, "Акмола": 31.0, "Aqmola": 30.0, "Almaty": 40.0}), DAY)
    assert result.release is not None and dict(result.release.turnout) == {"KZ-75": 40.0}
    assert len(result.problems) == 1


def test_nothing_placed_is_no_release() -> None:
    unknown = normalize_release(cec({"Atlantis": 50.0}), DAY)
    assert unknown.release is None and len(unknown.problems) == 1 and "'Atlantis'" in unknown.problems[0]
    conflicted = normalize_release(cec({"Akmola": 30.0, "Акмола": 31.0}), DAY)
    assert conflicted.release is None and len(conflicted.problems) == 1
    assert normalize_release(cec({}), DAY).problems == [f"{WHERE}: no region could be placed"]


def test_the_revision_comes_from_the_event_unless_given() -> None:
    revised = normalize_release(cec({"Akmola": 30.0}, revision=2), DAY).release
    assert revised is not None and revised.revision == 2
    given = normalize_release(cec({"Akmola": 30.0}, revision=2), DAY, revision=3).release
    assert given is not None and given.revision == 3


def day_2023() -> Any:
    return election_on(
        "2023-03-19",
        regions=[{"region": "Aktobe", "registered": 500_000}, {"region": "Алматы", "registered": 1_200_000}],
        registered_total=12_000_000,
    )


def test_election_context_gives_the_clock_polls_and_registered_by_code() -> None:
    context = election_context(day_2023())
    assert context["timezone"] == "Asia/Almaty"
    assert (context["polls_open"], context["polls_close"]) == (
        datetime(2023, 3, 19, 7, tzinfo=UTC6),
        datetime(2023, 3, 19, 20, tzinfo=UTC6),
    )
    assert context["registered"] == {"KZ-15": 500_000, "KZ-75": 1_200_000, "KZ": 12_000_000}
    closes, opens = context["polls_close_by_region"], context["polls_open_by_region"]
    assert len(closes) == len(opens) == 21  # the nation and the 20 units in force in March 2023
    # Aktobe votes 07:00-20:00 on its own UTC+5 clock: 08:00-21:00 on the capital's
    assert (opens["KZ-15"], closes["KZ-15"]) == (
        datetime(2023, 3, 19, 8, tzinfo=UTC6),
        datetime(2023, 3, 19, 21, tzinfo=UTC6),
    )
    assert closes["KZ-15"].utcoffset() == timedelta(hours=5)
    assert closes["KZ-75"] == closes["KZ"] == datetime(2023, 3, 19, 20, tzinfo=UTC6)
    assert "KZ-YUZ" not in closes  # South Kazakhstan Region was gone by then


def test_a_registered_total_that_is_not_a_positive_count_is_left_out() -> None:
    for total in (0, -5, "12000000", None):
        context = election_context(
            election_on("2023-03-19", regions=[{"region": "Aktobe", "registered": 5}], registered_total=total)
        )
        assert context["registered"] == {"KZ-15": 5}


def test_a_release_normalised_with_its_day_carries_the_context() -> None:
    election = day_2023()
    release = normalize_release(cec({"Aktobe": 45.0}), DAY, election=election).release
    assert release is not None
    context = election_context(election)
    assert release.timezone == "Asia/Almaty" and release.registered == context["registered"]
    assert release.polls_close == datetime(2023, 3, 19, 20, tzinfo=UTC6)
    assert release.closes_of("KZ-15") == datetime(2023, 3, 19, 21, tzinfo=UTC6)


def test_region_names_are_display_names_by_code() -> None:
    names = region_names()
    assert names["KZ-61"] == "Turkistan Region" and names["KZ"] == "Kazakhstan" and names["KZ-71"] == "Astana"
