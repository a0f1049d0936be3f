"""A reply in a real browser (Debian's Chromium, Playwright) on the real app served by waitress:
a reader posts through the story page's form and sees "awaiting moderation", another reader does
not; an editor approves it at /admin/comments; then every reader sees it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_site import Reader, browser, site_url
from tests.newsroom import SHARED_TITLE

__all__ = ["browser", "site_url"]  # the fixtures, shared with the site's own browser tests

AWAITING = "Your comment is awaiting moderation."
EMAIL = "reader.private@example.org"


def test_a_reply_posted_in_the_browser_awaits_moderation_then_shows(
    browser: Any, site_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    author = Reader(browser, site_url)
    author.open("/")
    author.follow(f"main a:text-is('{SHARED_TITLE}')")
    story = author.page.url
    page = author.page
    page.fill("#reply-comment", "Thank you for this.\nThe <b>glaciers</b> need us.")
    page.fill("#reply-name", "Ada <i>L.</i>")
    page.fill("#reply-email", EMAIL)
    page.fill("#reply-url", "https://ada.example/")
    with page.expect_navigation():
        page.click("form.comment-form button[type=submit]")
    assert page.url == story + "#comments"
    assert author.text("#comments .awaiting") == AWAITING
    assert author.text("#comments .pending .comment-author") == "Ada <i>L.</i>"
    assert "The <b>glaciers</b> need us." in author.text("#comments .pending .comment-body")
    assert EMAIL not in page.content()

    stranger = Reader(browser, site_url)
    stranger.open(story.removeprefix(site_url))
    assert stranger.page.locator("#comments .awaiting").count() == 0
    assert "Thank you for this." not in stranger.text("#comments")

    monkeypatch.setenv("CAULBART_ADMIN_TOKEN", "browser-admin-token")
    editor = Reader(browser, site_url)
    editor.open("/admin/comments?token=browser-admin-token")
    assert editor.page.url == site_url + "/admin/comments"
    assert "Thank you for this." in editor.text("ol.admin-queue")
    with editor.page.expect_navigation():
        editor.page.click("ol.admin-queue li:first-child button[value=approved]")
    assert "Nothing is waiting." in editor.text("main")

    stranger.open(story.removeprefix(site_url))
    shown = stranger.page.locator("#comments li.comment").first
    assert " ".join((shown.text_content() or "").split()).startswith("Ada <i>L.</i>")
    link = shown.locator(".comment-author a")
    assert link.get_attribute("href") == "https://ada.example/"
    assert link.get_attribute("rel") == "nofollow ugc"
    assert shown.locator(".comment-body br").count() == 1
    assert shown.locator(".comment-body b").count() == 0  # the reader's markup stayed text
    assert EMAIL not in stranger.page.content()
    for reader in (author, stranger, editor):
        assert reader.errors == []
        reader.close()
