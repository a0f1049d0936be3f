"""The editors' pages in a real browser (Debian's Chromium, Playwright) on the real app served
by waitress, at a phone's width: an editor signs in once with the token in the address, goes
from /admin to the sources and filters them by state; nothing scrolls sideways, and axe-core
finds no serious or critical violation, light or dark."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_site import (
    ARTIFACTS,
    AXE,
    SERIOUS,
    Reader,
    _missing,
    browser,
    site_url,
)

__all__ = ["browser", "site_url"]  # the fixtures, shared with the site's own browser tests

TOKEN = "browser-editors-token-long-enough"
PHONE = {"width": 375, "height": 812}


def _fits(reader: Reader) -> None:
    """No sideways scrolling: the page is no wider than the phone's screen."""
    wide, screen = reader.page.evaluate(
        "[document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    assert wide <= screen, (reader.page.url, wide, screen)


def _serious_violations(reader: Reader) -> list[dict[str, Any]]:
    reader.page.add_script_tag(path=str(AXE))
    result = reader.page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "example": v["nodes"][0]["html"][:200]}
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_an_editor_goes_from_admin_to_the_sources_on_a_phone(
    browser: Any, site_url: str, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    if not AXE.exists():
        _missing(f"{AXE} not found (npm ci --prefix tests/browser, run by make test)")
    monkeypatch.setenv("CAULBART_ADMIN_TOKEN", TOKEN)
    # The CSP rightly forbids inline script; only this test context may inject axe.
    editor = Reader(browser, site_url, viewport=PHONE, color_scheme=scheme, bypass_csp=True)
    page = editor.page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    assert editor.open(f"/admin?token={TOKEN}").status == 200
    assert page.url == site_url + "/admin"  # the token is not left in the address
    assert editor.text("main h1") == "Editors"
    assert page.locator(".desk h2 a").all_text_contents() == ["Comments", "Review", "Sources"]
    _fits(editor)
    page.screenshot(path=str(ARTIFACTS / f"admin-phone-375px-{scheme}.png"), full_page=True)
    assert _serious_violations(editor) == []

    editor.follow(".desk h2 a[href='/admin/sources']")
    assert page.url == site_url + "/admin/sources"
    rows = page.locator("table.source-health tbody tr")
    assert rows.count() >= 2
    _fits(editor)
    # Each source is a card: its cells stack one under another, each saying what it is.
    first = rows.first
    tops = first.locator("th, td:not(:empty)").evaluate_all(
        "cells => cells.map(c => c.getBoundingClientRect().top)"
    )
    assert tops == sorted(tops) and len(set(tops)) == len(tops)
    label = first.locator("td.errors").evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Consecutive errors: "'
    page.screenshot(path=str(ARTIFACTS / f"admin-sources-phone-375px-{scheme}.png"), full_page=True)
    assert _serious_violations(editor) == []

    editor.follow(".admin-filter a[href='/admin/sources?state=ok']")
    assert editor.text(".admin-filter a[aria-current=page]").startswith("OK: ")
    states = page.locator("table.source-health tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.state)"
    )
    assert states and set(states) == {"ok"}
    _fits(editor)
    assert editor.errors == []
    editor.close()


def test_on_a_desktop_the_sources_are_one_table_row_each(
    browser: Any, site_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAULBART_ADMIN_TOKEN", TOKEN)
    editor = Reader(browser, site_url, viewport={"width": 1280, "height": 900})
    assert editor.open(f"/admin/sources?token={TOKEN}").status == 200
    first = editor.page.locator("table.source-health tbody tr").first
    tops = first.locator("th, td").evaluate_all(
        "cells => cells.map(c => Math.round(c.getBoundingClientRect().top))"
    )
    assert len(set(tops)) == 1  # every cell of a source on one line
    assert editor.page.locator("table.source-health thead").is_visible()
    _fits(editor)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    editor.page.screenshot(path=str(ARTIFACTS / "admin-sources-desktop-1280px.png"), full_page=True)
    assert editor.errors == []
    editor.close()
