"""The phone form at GET / in real headless Chromium (Debian's package), against the real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.support.intake import make_settings, read_topic, running_intake
from turnout_watch.services.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


async def test_form_submits_confirms_and_explains_errors(broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with running_intake(make_settings(broker.bootstrap, tmp_path)) as env, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 360, "height": 740}, locale="ru-RU")  # a small phone
            await page.goto(env.url + "/")
            assert await page.text_content("label[for=station]") == "Номер участка"
            assert await page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"
            )  # no sideways scroll

            await page.fill("#token", env.tokens["obs1"])
            await page.fill("#station", "75-0001")
            await page.fill("#time", "12:00")
            await page.fill("#voted", "812")
            await page.click("#send")
            await page.wait_for_selector("#result.ok")
            assert "Принято: участок 75-0001, 12:00, проголосовало 812" in (await page.text_content("#result") or "")

            await page.click("button[data-lang=en]")  # English labels, plain-word errors
            assert await page.text_content("label[for=voted]") == "How many have voted"
            await page.fill("#time", "14:00")
            await page.fill("#voted", "3000")
            await page.click("#send")
            await page.wait_for_selector("#result.bad")
            text = await page.text_content("#result") or ""
            assert "More voted (3000) than there are voters on the list (2374)" in text

            await page.click("button[data-lang=kk]")
            await page.fill("#time", "21:30")
            await page.fill("#voted", "900")
            await page.click("#send")
            await page.wait_for_selector("#result.bad >> text=дауыс беру сағаттарынан тыс (07:00–20:00)")

            await page.fill("#station", "71-0001")  # not this observer's station
            await page.fill("#time", "13:00")
            await page.click("#send")
            await page.wait_for_selector("#result.bad >> text=71-0001 учаскесі бойынша")
        finally:
            await browser.close()
    records = await read_topic(broker.bootstrap, env.topic, 1)
    assert [(r["station"], r["voted"], r["observed_at"]) for r in records] == [
        ("75-0001", 812, "2022-11-20T12:00:00+06:00")
    ]
