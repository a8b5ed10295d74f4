"""Sources as configuration: the shipped cec-kz, a TOML file by path, and a clear ConfigError for each
mistake in one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from pathlib import Path

import pytest

from ingest.sources import Polling, load_source
from turnout_watch.core.errors import ConfigError

MINIMAL = """
name = "other"
base_url = "https://cec.example.org/"
user_agent = "turnout-watch tests"

[release]
body_selector = "main"

[[list]]
lang = "en"
url = "/news"
link_selector = "a.news"
title_pattern = "(?i)turnout"
"""


def test_the_shipped_source() -> None:
    source = load_source("cec-kz")
    assert source.name == "cec-kz" and source.timezone == "Asia/Almaty"
    assert [page.lang for page in source.lists] == ["ru", "kk", "en"]
    assert source.lists[0].title_pattern.search("ЯВКА на 10:00")
    assert source.polling.schedule[0] == time(10, 0) and source.polling.max_bytes == 2_000_000
    assert source.url("/rus/news/") == "https://www.election.gov.kz/rus/news/"


def test_a_file_by_path_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    source = load_source(path)
    assert (source.name, source.published_selector, source.incomplete_grace_seconds) == ("other", "time[datetime]", 300)
    assert source.polling == Polling() and source.timezone == "Asia/Almaty"
    assert source.url("news/1") == "https://cec.example.org/news/1"
    moved = source.with_overrides("http://127.0.0.1:8000", read_timeout=0.5)
    assert moved.url("/news") == "http://127.0.0.1:8000/news" and moved.polling.read_timeout == 0.5
    assert moved.polling.fast_interval == Polling.fast_interval and source.polling.read_timeout == 10.0
    assert source.to_dict()["lists"] == [{"lang": "en", "url": "/news"}]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('lang = "en"', 'lang = "de"'), "list lang must be one of"),
        (lambda t: t.replace('"(?i)turnout"', '"(unclosed"'), "bad title_pattern"),
        (lambda t: t.replace('user_agent = "turnout-watch tests"\n', ""), "missing required key 'user_agent'"),
        (lambda t: t.replace('body_selector = "main"', 'selector = "main"'), "missing required key 'body_selector'"),
        (lambda t: t + "\n[polling]\nfast_interval = -1\n", "polling.fast_interval must be a non-negative number"),
        (lambda t: t + "\n[polling]\nfast_interval = true\n", "polling.fast_interval must be a non-negative number"),
        (lambda t: t + "\n[polling]\nfast = 1\n", "unknown \\[polling\\] keys \\['fast'\\]"),
        (lambda t: t + "\n[polling]\nschedule = ['ten']\n", "polling.schedule must be a list of HH:MM times"),
        (lambda t: t + "\nthis is not toml\n", "not valid TOML"),
    ],
)
def test_each_mistake_is_a_config_error(tmp_path: Path, edit: Callable[[str], str], message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(edit(MINIMAL), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_source(path)


def test_an_unknown_name_lists_the_shipped_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown source 'cec-xx'; shipped: cec-kz"):
        load_source("cec-xx")
    with pytest.raises(ConfigError, match="cannot read source config"):
        load_source(tmp_path / "absent.toml")
