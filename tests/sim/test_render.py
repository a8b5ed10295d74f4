"""The simulator speaks like the commission: its own templates and the media's forms, read back exactly."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time

import pytest

from ingest.archive import release_event
from ingest.clock import ManualClock
from ingest.pages import read_release_page
from ingest.parse import parse_release
from ingest.sources import load_source
from tests.support.paths import DAY_2022, DAY_2023
from turnout_watch.core.dayfile import CecRelease, load_day, parse_event
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.normalize import normalize_release
from turnout_watch.sim.cec_site import SITE_LANG, CecSimulator
from turnout_watch.sim.render import (
    DASH_SPACING,
    DASHES,
    LANGS,
    PCT_SIGNS,
    Lang,
    Layout,
    Style,
    kk_forms,
    kk_locative,
    kk_possessive,
    render_release,
    ru_forms,
    ru_inflect,
)

RELEASES = [
    (day.election.date, release.as_of, dict(normalize_release(release, day.election.date).release.turnout))  # type: ignore[union-attr]
    for day in (load_day(DAY_2022), load_day(DAY_2023))
    for release in day.releases()
]


def _text(figures: dict[str, float], as_of: time, lang: Lang, style: Style, **kw: object) -> str:
    return render_release(figures, as_of, lang, style, **kw).body_html  # type: ignore[arg-type]


@pytest.mark.parametrize(("lang", "layout"), list(itertools.product(LANGS, ("commission", "media"))))
def test_commission_and_media_releases_parse_back_exactly(lang: Lang, layout: Layout) -> None:
    """Every recorded release, in many styles of each layout, with and without the announced next release."""
    for n, ((on, as_of, figures), dash, spacing, sign) in enumerate(
        itertools.product(RELEASES, DASHES[:3], DASH_SPACING[:2], PCT_SIGNS[:2])
    ):
        style = Style(
            layout=layout, dash=dash, dash_spacing=spacing, pct_sign=sign, spelling=n, template=n,
            national_first=n % 2 == 0, decimal=",."[n % 2], time_format=("colon", "dot", "ampm")[n % 3],
        )  # fmt: skip
        next_at = time(min(as_of.hour + 2, 22), 0) if n % 2 else None
        rendered = render_release(figures, as_of.timetz(), lang, style, on=on, next_at=next_at)
        page = f"<html><body><div class='article-body'>{rendered.body_html}</div></body></html>"
        parsed = parse_release(page, on=on, selector=".article-body")
        assert parsed.figures() == figures, rendered.body_html
        assert parsed.as_of == as_of
        assert parsed.unparsed == [] and parsed.unknown_regions == [] and parsed.missing == []
        # The raw event keys figures by spellings the pipeline resolves back to the same codes.
        event = release_event("kz-test", parsed, as_of, url="http://sim/", sha256="0" * 64)
        raw = parse_event(event)
        assert isinstance(raw, CecRelease)
        normalized = normalize_release(raw, on)
        assert normalized.release is not None and dict(normalized.release.turnout) == figures, event
        if layout == "commission" and next_at is not None:
            assert parsed.next_release == datetime.combine(on, next_at, tzinfo=as_of.tzinfo)


def test_the_commission_writes_its_own_sentences() -> None:
    on, as_of, figures = RELEASES[3]  # 2022-11-20 16:00
    ru = _text(figures, as_of.timetz(), "ru", Style(layout="commission"), on=on, next_at=time(18, 0))
    assert "ЦИК сообщает, что" in ru and "по состоянию на 16 часов времени столицы 20 ноября 2022 года" in ru
    assert f"избирательные бюллетени получили {str(figures['KZ']).replace('.', ',')}% от общего количества" in ru
    assert "В том числе в разрезе регионов:" in ru
    assert "- по Акмолинской области – 71,38 %" in ru and "- по области Абай – " in ru
    assert "- по Туркестанский области – " in ru  # the template's own slip
    assert "- по г. Астана – " in ru and "- по г. Алматы – " in ru
    assert "будет представлена в 18.00 ч" in ru
    kk = _text(figures, as_of.timetz(), "kk", Style(layout="commission"), on=on)
    assert "Сағат 16.00-дегі жағдай бойынша тізімге енгізілген азаматтардың 62,34 %-і бюллетень алды." in kk
    assert "Оның ішінде:" in kk and "1. Абай облысы бойынша – 73,57 %" in kk
    en = _text(figures, as_of.timetz(), "en", Style(layout="commission"), on=on)
    assert "62.34% of all voters included into the lists received ballot papers as of 4:00 p.m." in en


def test_the_media_forms_of_every_unit() -> None:
    """Russian forms by pymorphy3 from the nominatives, Kazakh by harmony; as the real texts print them."""
    gazetteer = default_gazetteer()
    assert ru_inflect("Акмолинская область", "datv") == "Акмолинской области"
    assert ru_inflect("Западно-Казахстанская область", "loct") == "Западно-Казахстанской области"
    assert ru_inflect("область Абай", "loct") == "области Абай"
    assert ru_inflect("Атырауская", "loct", "masc") == "Атырауском"
    assert ru_inflect("Астана", "loct") == "Астане" and ru_inflect("Алматы", "loct") == "Алматы"
    assert {"в Абайской области", "по области Абай", "Абайской"} <= set(ru_forms("KZ-10", False, gazetteer))
    assert "в Атырауском регионе" in ru_forms("KZ-23", False, gazetteer)
    assert "ЗКО" in ru_forms("KZ-27", False, gazetteer) and "в Шымкенте" in ru_forms("KZ-79", False, gazetteer)
    assert "Алматы облысында" in kk_forms("KZ-19", False, gazetteer)
    assert "Алматыда" in kk_forms("KZ-75", False, gazetteer)
    assert [kk_locative(n) for n in ("Шымкент", "Ақтөбе", "Астана")] == ["Шымкентте", "Ақтөбеде", "Астанада"]
    assert (kk_possessive("68,48%"), kk_possessive("51,76%"), kk_possessive("40,10%")) == ("і", "ы", "ы")


def test_every_media_form_of_every_unit_parses_alone() -> None:
    """Not left to the draw: each form of each unit in force, once, as a line of its own."""
    gazetteer = default_gazetteer()
    on = date(2022, 11, 20)
    for unit in gazetteer.regions_on(on):
        for name in {*ru_forms(unit.code, False, gazetteer), *ru_forms(unit.code, True, gazetteer),
                     *kk_forms(unit.code, False, gazetteer), *kk_forms(unit.code, True, gazetteer)}:  # fmt: skip
            parsed = parse_release(f"{name} – 12,34 %", on=on)
            assert parsed.figures() == {unit.code: 12.34}, (name, parsed)


def test_the_site_announces_its_next_release_in_the_commission_template() -> None:
    day = load_day(DAY_2023)
    sim = CecSimulator(day, ManualClock(datetime.fromisoformat("2023-03-19T23:00:00+06:00")), seed=0)
    source = load_source("cec-kz")
    releases = [item for item in sim.visible() if item.as_of is not None]
    seen = 0
    for item, following in itertools.pairwise(releases):
        for site, lang in SITE_LANG.items():
            page = read_release_page(sim.release_page(site, item, layout=False).encode(), source, day.election.date)
            assert page.parsed.figures() == item.figures and page.parsed.as_of == item.as_of
            if sim.style(item, lang).layout == "commission":
                assert page.parsed.next_release == following.as_of
                seen += 1
    assert seen > 0
