"""Polling hours are local: every region opens and closes on its own clock (IANA zone, tzdata)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.support.days import header
from turnout_watch.core.dayfile import parse_election
from turnout_watch.core.errors import DayFileError
from turnout_watch.core.normalize import election_context
from turnout_watch.core.records import Release

UTC5, UTC6 = timezone(timedelta(hours=5)), timezone(timedelta(hours=6))


def test_the_west_closed_an_hour_after_the_capital_until_march_2024() -> None:
    polls = parse_election(header("2023-03-19")).polls()
    for west in ("KZ-15", "KZ-23", "KZ-27", "KZ-43", "KZ-47"):  # Aktobe, Atyrau, West Kazakhstan, Kyzylorda, Mangystau
        assert polls[west][1] == datetime(2023, 3, 19, 21, tzinfo=UTC6), west
        assert polls[west][1].utcoffset() == timedelta(hours=5)
    assert polls["KZ-75"] == (datetime(2023, 3, 19, 7, tzinfo=UTC6), datetime(2023, 3, 19, 20, tzinfo=UTC6))
    assert polls["KZ"][1] == datetime(2023, 3, 19, 20, tzinfo=UTC6)  # the national unit: the releases' clock
    # one zone since 1 March 2024: everyone closes at 20:00 UTC+5
    later = parse_election(header("2024-03-17")).polls()
    assert {closes for _, closes in later.values()} == {datetime(2024, 3, 17, 20, tzinfo=UTC5)}


def test_kyzylorda_joined_the_west_in_december_2018() -> None:
    assert parse_election(header("2018-06-24")).polls()["KZ-43"][1].utcoffset() == timedelta(hours=6)
    assert parse_election(header("2019-06-09")).polls()["KZ-43"][1].utcoffset() == timedelta(hours=5)


def test_a_region_may_keep_its_own_hours_or_day() -> None:
    election = parse_election(
        header(
            "2023-03-19",
            regions=[{"region": "Aktobe", "polls_close": "22:00"}, {"region": "Almaty", "date": "2023-03-18"}],
        )
    )
    polls = election.polls()
    assert polls["KZ-15"][1] == datetime(2023, 3, 19, 22, tzinfo=UTC5)  # extended hours, still local
    assert polls["KZ-75"][0] == datetime(2023, 3, 18, 7, tzinfo=UTC6)
    with pytest.raises(DayFileError, match="bad polling hours or date for region 'Aktobe'"):
        parse_election(header("2023-03-19", regions=[{"region": "Aktobe", "polls_close": "late"}]))


def test_releases_carry_every_region_s_instants_through_the_codec() -> None:
    election = parse_election(header("2023-03-19"))
    context = election_context(election)
    release = Release("e", election.closes, election.closes, {"KZ-15": 50.0}, **context)
    assert release.closes_of("KZ-15") == datetime(2023, 3, 19, 21, tzinfo=UTC6)
    assert release.closes_of("KZ-99") == release.polls_close  # a code without its own: the day's
    back = Release.from_dict(release.to_dict())
    assert back == release
    assert back.polls_close_by_region["KZ-15"].utcoffset() == timedelta(hours=5)  # its local hours survive
