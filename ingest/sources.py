"""Sources as configuration: where a commission lists its releases and how to read them (TOML).

The shipped `cec-kz` is `ingest/sources/cec-kz.toml`; `--source` also takes a path, so pointing the
scraper at another commission, or at a changed site layout, is an edit of a file, not of code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from turnout_watch.core.errors import ConfigError

LANGS = ("ru", "kk", "en")
SHIPPED = Path(__file__).resolve().parent / "sources"  # package data (pyproject: ingest = ["sources/*.toml"])


@dataclass(frozen=True)
class ListPage:
    lang: str
    url: str
    link_selector: str
    title_pattern: re.Pattern[str]


@dataclass(frozen=True)
class Polling:
    schedule: tuple[time, ...] = ()
    fast_before: float = 60.0
    fast_for: float = 3600.0
    due_after: float = 900.0
    fast_interval: float = 3.0
    slow_interval: float = 60.0
    backoff_base: float = 2.0
    backoff_max: float = 120.0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_bytes: int = 2_000_000


@dataclass(frozen=True)
class Source:
    name: str
    base_url: str
    timezone: str
    user_agent: str
    lists: tuple[ListPage, ...]
    body_selector: str
    published_selector: str
    incomplete_grace_seconds: float = 300.0
    polling: Polling = field(default_factory=Polling)
    description: str = ""

    def url(self, path: str) -> str:
        return urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/"))

    def with_overrides(self, base_url: str | None = None, **polling: Any) -> Source:
        """The same source at another address (the simulator) or with other polling numbers (tests)."""
        return replace(self, base_url=base_url or self.base_url, polling=replace(self.polling, **polling))

    def to_dict(self) -> dict[str, Any]:
        """What an archive records about how its pages were read."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "timezone": self.timezone,
            "body_selector": self.body_selector,
            "published_selector": self.published_selector,
            "lists": [{"lang": p.lang, "url": p.url} for p in self.lists],
        }


def _number(section: dict[str, Any], name: str, default: float) -> float:
    value = section.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"polling.{name} must be a non-negative number, got {value!r}")
    return float(value)


def _polling(raw: dict[str, Any]) -> Polling:
    known = {f.name for f in fields(Polling)}
    if unknown := raw.keys() - known:
        raise ConfigError(f"unknown [polling] keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        schedule = tuple(time.fromisoformat(t) for t in raw.get("schedule", ()))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"polling.schedule must be a list of HH:MM times: {exc}") from exc
    values = {k: _number(raw, k, getattr(Polling, k)) for k in known - {"schedule", "max_bytes"}}
    return Polling(schedule=schedule, max_bytes=int(_number(raw, "max_bytes", Polling.max_bytes)), **values)


def parse_source(data: dict[str, Any], where: str) -> Source:
    try:
        lists = []
        for item in data["list"]:
            if item["lang"] not in LANGS:
                raise ConfigError(f"{where}: list lang must be one of {LANGS}, got {item['lang']!r}")
            try:
                pattern = re.compile(item["title_pattern"])
            except re.error as exc:
                raise ConfigError(f"{where}: bad title_pattern {item['title_pattern']!r}: {exc}") from exc
            lists.append(ListPage(item["lang"], item["url"], item["link_selector"], pattern))
        release = data["release"]
        return Source(
            name=data["name"],
            base_url=data["base_url"],
            timezone=data.get("timezone", "Asia/Almaty"),
            user_agent=data["user_agent"],
            lists=tuple(lists),
            body_selector=release["body_selector"],
            published_selector=release.get("published_selector", "time[datetime]"),
            incomplete_grace_seconds=float(release.get("incomplete_grace_seconds", 300)),
            polling=_polling(data.get("polling", {})),
            description=data.get("description", ""),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing required key {exc}") from exc
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_source(name_or_path: str | Path) -> Source:
    """A shipped source by name (`cec-kz`) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read source config {path}: {exc}") from exc
    else:
        shipped = SHIPPED / f"{name_or_path}.toml"
        if not shipped.is_file():
            names = sorted(p.stem for p in SHIPPED.glob("*.toml"))
            raise ConfigError(f"unknown source {name_or_path!r}; shipped: {', '.join(names)} (or give a .toml path)")
        text = shipped.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"source config {name_or_path} is not valid TOML: {exc}") from exc
    return parse_source(data, str(name_or_path))
