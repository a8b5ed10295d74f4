"""Reading a source's pages with its configured selectors, and the fallbacks that make a changed site
layout visible (`layout_ok` False) instead of silent."""

from __future__ import annotations

from datetime import date, datetime

from ingest.pages import discover_links, read_release_page
from ingest.sources import load_source

SOURCE = load_source("cec-kz")
RU = SOURCE.lists[0]
LIST_URL = "https://www.election.gov.kz/rus/news/"
DAY = date(2022, 11, 20)


def list_page(anchors: str, wrapper: str = "ul class='news-list'") -> bytes:
    tag = wrapper.split()[0]
    return f"<html><body><{wrapper}>{anchors}</{tag}></body></html>".encode()


def test_release_links_newest_last_absolute_and_once() -> None:
    body = list_page(
        "<li><a href='/rus/news/3'>Явка на 14:00</a></li>"
        "<li><a href='2'>Явка избирателей на 12:00</a></li>"
        "<li><a href='/rus/news/ballots'>Бюллетени напечатаны</a></li>"  # not a turnout release
        "<li><a href='https://www.election.gov.kz/rus/news/1'>Явка на 10:00</a></li>"
        "<li><a href='/rus/news/1'>Явка на 10:00 (исправлено)</a></li>"
    )  # newest first, as the site lists them
    links = discover_links(body, RU, LIST_URL)
    assert links.layout_ok
    assert links.urls == [
        "https://www.election.gov.kz/rus/news/1",
        "https://www.election.gov.kz/rus/news/2",
        "https://www.election.gov.kz/rus/news/3",
    ]


def test_a_changed_layout_falls_back_to_any_matching_anchor() -> None:
    body = list_page("<a href='/rus/news/9'>Явка на 10:00</a><a href='/about'>О комиссии</a>", "div class='feed'")
    links = discover_links(body, RU, LIST_URL)
    assert not links.layout_ok and links.urls == ["https://www.election.gov.kz/rus/news/9"]


def test_an_empty_or_unreadable_list_page_has_no_links() -> None:
    assert discover_links(b"", RU, LIST_URL) == discover_links(b"   ", RU, LIST_URL)
    assert discover_links(b"", RU, LIST_URL).urls == [] and not discover_links(b"", RU, LIST_URL).layout_ok


def test_a_list_page_in_windows_1251() -> None:
    body = list_page("<li><a href='/rus/news/5'>Явка на 16:00</a></li>").decode().encode("cp1251")
    assert discover_links(body, RU, LIST_URL, charset="windows-1251").urls == ["https://www.election.gov.kz/rus/news/5"]


RELEASE = """<html><body>
<header>Явка на 99:99 в меню, которое нельзя читать</header>
<time datetime="2022-11-20">20 ноября</time>
<time datetime="2022-11-20T12:07:00+06:00">12:07</time>
<div class="article-body"><p>Явка избирателей на 12:00 20 ноября 2022 года:</p>
<p>г. Астана – 40,13%</p><p>г. Алматы – 25,83%</p></div>
</body></html>"""


def test_a_release_page_read_with_its_selectors() -> None:
    page = read_release_page(RELEASE.encode(), SOURCE, DAY)
    assert page.layout_ok
    assert page.published_at == datetime.fromisoformat("2022-11-20T12:07:00+06:00")  # the first with a zone
    assert page.parsed.as_of == datetime.fromisoformat("2022-11-20T12:00:00+06:00")
    assert page.parsed.turnout_pct == {"KZ-71": 40.13, "KZ-75": 25.83}


def test_a_release_page_without_its_body_element_is_read_whole_and_says_so() -> None:
    body = RELEASE.replace('class="article-body"', 'class="post"').replace('datetime="2022-11-20T12:07:00+06:00"', "")
    page = read_release_page(body.encode(), SOURCE, DAY)
    assert not page.layout_ok and page.published_at is None  # a date without a zone is no publication time
    assert page.parsed.turnout_pct == {"KZ-71": 40.13, "KZ-75": 25.83}
