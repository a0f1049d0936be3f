"""A reply in a real browser (Debian's Chromium, Playwright) on the real app served by waitress:
a reader posts through the story page's form and sees "awaiting moderation", another reader does
not; an editor approves it at /admin/comments; then every reader sees it. The form itself: labels
above full-width fields, a visible focus, errors under their fields, the page's order, and the
"Save my name..." box remembering the reader (or forgetting them) across page loads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_site import Reader, browser, site_url
from tests.newsroom import SHARED_TITLE

__all__ = ["browser", "site_url"]  # the fixtures, shared with the site's own browser tests

AWAITING = "Your comment is awaiting moderation."
EMAIL = "reader.private@example.org"
REMEMBERED_EMAIL = "grace.remembered@example.org"
REMEMBER = "Save my name, email, and website in this browser for the next time I comment."
COOKIE = "caulbart_commenter"


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


def _story(reader: Reader) -> str:
    reader.open("/")
    reader.follow(f"main a:text-is('{SHARED_TITLE}')")
    return str(reader.page.url).removeprefix(reader.base)


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return dict(box)


def test_the_form_has_labels_above_full_width_fields_and_a_visible_focus(
    browser: Any, site_url: str
) -> None:
    reader = Reader(browser, site_url, viewport={"width": 390, "height": 844})
    page = reader.page
    _story(reader)
    form = _box(page, "form.comment-form")
    for field in ("comment", "name", "email", "url"):
        label, control = _box(page, f"label[for=reply-{field}]"), _box(page, f"#reply-{field}")
        assert label["y"] + label["height"] <= control["y"] + 1, field  # the label is above
        assert abs(label["x"] - control["x"]) <= 1, field  # and starts where its field does
    textarea = _box(page, "#reply-comment")
    assert textarea["width"] >= form["width"] - 2  # the textarea spans the form
    assert textarea["height"] >= 150
    page.focus("#reply-name")  # by keyboard: :focus-visible applies to a text field always
    outline = page.eval_on_selector(
        "#reply-name", "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]"
    )
    assert outline[0] != "none" and float(outline[1].removesuffix("px")) >= 2
    remember = page.locator("#reply-remember")
    assert remember.get_attribute("type") == "checkbox" and not remember.is_checked()
    assert reader.text("label[for=reply-remember]") == REMEMBER
    assert reader.errors == []
    reader.close()


def test_the_story_page_keeps_the_seeds_order(browser: Any, site_url: str) -> None:
    """The story and its image credit, Leave a Reply, Previous/Next, then Related Posts."""
    reader = Reader(browser, site_url)
    _story(reader)
    order = reader.page.eval_on_selector_all(
        "main article.story figcaption, main #reply-heading, main nav.post-nav, "
        "main #related-heading",
        "found => found.map(e => e.id || e.className || e.tagName)",
    )
    assert order == ["FIGCAPTION", "reply-heading", "post-nav", "related-heading"]
    reader.close()


def test_errors_are_shown_next_to_their_fields_with_aria_attributes(
    browser: Any, site_url: str
) -> None:
    """Values the browser lets through (blank text, an address without a domain, an ftp link)
    and the server refuses: each message sits under its field, named by aria-describedby."""
    reader = Reader(browser, site_url)
    page = reader.page
    _story(reader)
    page.fill("#reply-comment", "   ")
    page.fill("#reply-name", "Ada")
    page.fill("#reply-email", "ada@localhost")
    page.fill("#reply-url", "ftp://ada.example/")
    with page.expect_navigation():
        page.click("form.comment-form button[type=submit]")
    assert "Your comment was not sent" in reader.text("form.comment-form [role=alert]")
    for field, message in [
        ("comment", "Please write a comment."),
        ("email", "Please give a valid email address"),
        ("url", "http:// or https://"),
    ]:
        control = page.locator(f"#reply-{field}")
        assert control.get_attribute("aria-invalid") == "true", field
        described = control.get_attribute("aria-describedby")
        assert described == f"reply-{field}-error", field
        assert message in reader.text(f"#{described}"), field
        error, box = _box(page, f"#{described}"), _box(page, f"#reply-{field}")
        assert 0 <= error["y"] - (box["y"] + box["height"]) <= 12, field  # right under it
    name = page.locator("#reply-name")
    assert name.get_attribute("aria-invalid") is None
    assert name.get_attribute("aria-describedby") is None
    assert name.input_value() == "Ada" and page.locator("#reply-url").input_value() == (
        "ftp://ada.example/"
    )
    reader.errors = [e for e in reader.errors if "422" not in e]  # the refusal we asked for
    assert reader.errors == []
    reader.close()


def _post(reader: Reader, story: str, *, remember: bool) -> None:
    page = reader.page
    reader.open(story)
    page.fill("#reply-comment", "Remember me, or not.")
    page.fill("#reply-name", "Grace H.")
    page.fill("#reply-email", REMEMBERED_EMAIL)
    page.fill("#reply-url", "https://grace.example/")
    page.set_checked("#reply-remember", remember)
    with page.expect_navigation():
        page.click("form.comment-form button[type=submit]")
    assert reader.text("#comments .awaiting") == AWAITING


def test_a_ticked_box_remembers_the_name_and_an_unticked_one_forgets_it(
    browser: Any, site_url: str
) -> None:
    reader = Reader(browser, site_url)
    page = reader.page
    story = _story(reader)
    _post(reader, story, remember=True)
    remembered = [c for c in reader.context.cookies() if c["name"] == COOKIE]
    assert len(remembered) == 1
    assert remembered[0]["httpOnly"] and remembered[0]["sameSite"] == "Lax"
    assert REMEMBERED_EMAIL not in remembered[0]["value"]  # signed and encoded, not plain

    reader.open("/")  # a new page load, another story: the form is filled in
    reader.follow("section.group .card-title a >> nth=1")
    assert page.locator("#reply-name").input_value() == "Grace H."
    assert page.locator("#reply-email").input_value() == REMEMBERED_EMAIL
    assert page.locator("#reply-url").input_value() == "https://grace.example/"
    assert page.locator("#reply-comment").input_value() == ""
    assert page.locator("#reply-remember").is_checked()

    _post(reader, story, remember=False)
    assert [c for c in reader.context.cookies() if c["name"] == COOKIE] == []
    reader.open(story)
    assert page.locator("#reply-name").input_value() == ""
    assert page.locator("#reply-email").input_value() == ""
    assert not page.locator("#reply-remember").is_checked()
    assert reader.errors == []
    reader.close()
