"""Read a source's pages with its configured selectors: release links on a list page, a release page.

Both fall back when the configured selector finds nothing (the site changed its layout): links are
then any anchor whose title matches the release pattern, and the release text is the whole page.
The caller counts the fallback, so a layout change is visible on the dashboard before it bites.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from ingest.parse import ParsedRelease, css, decode, document_text, html_to_text, parse_text
from ingest.sources import ListPage, Source


@dataclass(frozen=True)
class Links:
    urls: list[str]  # absolute, oldest first
    layout_ok: bool


@dataclass(frozen=True)
class ReleasePage:
    parsed: ParsedRelease
    published_at: datetime | None
    layout_ok: bool


def _document(text: str) -> lxml.html.HtmlElement | None:
    try:
        return lxml.html.document_fromstring(text) if text.strip() else None
    except (etree.ParserError, ValueError):
        return None


def discover_links(body: bytes, page: ListPage, page_url: str, charset: str | None = None) -> Links:
    """Release links on a list page: anchors under `link_selector` whose text matches `title_pattern`."""
    doc = _document(decode(body, charset))
    if doc is None:
        return Links([], False)
    anchors = css(doc, page.link_selector)
    layout_ok = bool(anchors)
    if not anchors:
        anchors = doc.xpath("//a[@href]")
    urls = []
    for anchor in anchors:
        href = anchor.get("href")
        if href and page.title_pattern.search(anchor.text_content()):
            urls.append(urljoin(page_url, href))
    return Links(list(dict.fromkeys(reversed(urls))), layout_ok)


def read_release_page(body: bytes, source: Source, on: date, charset: str | None = None) -> ReleasePage:
    """Parse a release page; `published_at` from the configured element's `datetime` attribute."""
    text = decode(body, charset)
    published_at = None
    doc = _document(text)
    if doc is not None:
        for element in css(doc, source.published_selector):
            try:
                published_at = datetime.fromisoformat(element.get("datetime", ""))
            except ValueError:
                continue
            if published_at.tzinfo is not None:
                break
            published_at = None
    # One parse of the page: the text is read last, as reading it rewrites the tree.
    if doc is None:
        content, layout_ok = html_to_text(text, source.body_selector)
    else:
        content, layout_ok = document_text(doc, source.body_selector)
    parsed = parse_text(content, on=on, tz=source.timezone)
    return ReleasePage(parsed, published_at, layout_ok)
