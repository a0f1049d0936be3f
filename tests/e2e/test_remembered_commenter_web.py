"""The "Save my name, email, and website in this browser for the next time I comment." box,
through the Flask test client on SQLite and PostgreSQL: the cookie it sets (and only when
ticked), its attributes, the form it fills in, and the caching of the page that shows it."""

from __future__ import annotations

import re

from werkzeug.http import parse_cookie

from tests.e2e.test_comments_web import (
    EMAIL,
    Site,
    make_app,
    reply,
    site,
    token_of,
)
from web.comments import REMEMBER_COOKIE, REMEMBER_MAX_AGE

__all__ = ["site"]  # the fixture, shared with the comments' own tests

WEBSITE = "https://ada.example/"


def remembered_cookie(answer: object) -> str | None:
    """The Set-Cookie line naming the remembered author's cookie, if the answer sent one."""
    lines = answer.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    found = [line for line in lines if line.startswith(f"{REMEMBER_COOKIE}=")]
    assert len(found) <= 1
    return found[0] if found else None


def attributes(line: str) -> dict[str, str]:
    parts = [part.strip() for part in line.split(";")]
    return {k.lower(): v for k, _, v in (part.partition("=") for part in parts[1:])}


def form_values(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input id="reply-(name|email|url)"[^>]* value="([^"]*)"', page))


def is_ticked(page: str) -> bool:
    box = re.search(r'<input id="reply-remember"[^>]*>', page)
    assert box, "the form has no Save my name box"
    return " checked" in box.group(0)


def test_a_ticked_box_sets_a_signed_http_only_lax_cookie_for_half_a_year(site: Site) -> None:
    client = site.client()
    answer = reply(client, site.path, name="Ada", url=WEBSITE, remember="yes")
    assert answer.status_code == 303
    line = remembered_cookie(answer)
    assert line is not None
    flags = attributes(line)
    assert flags["max-age"] == str(REMEMBER_MAX_AGE) == "15552000"
    assert flags["path"] == "/"
    assert flags["samesite"] == "Lax"
    assert "httponly" in flags
    assert "secure" not in flags  # the request came over http
    value = parse_cookie(line.split(";")[0])[REMEMBER_COOKIE]
    assert EMAIL not in value and "ada.private" not in value


def test_over_https_the_cookie_is_secure(site: Site) -> None:
    client = site.client()
    form = {"csrf_token": token_of(client, site.path), "comment": "Over TLS.", "name": "Ada"}
    form.update(email=EMAIL, url="", homepage="", remember="yes")
    answer = client.post(site.path, data=form, base_url="https://localhost")
    assert answer.status_code == 303
    line = remembered_cookie(answer)
    assert line is not None and "secure" in attributes(line)


def test_the_next_page_is_filled_in_and_kept_by_no_cache(site: Site) -> None:
    client, stranger = site.client(), site.client()
    reply(client, site.path, name="Ada", url=WEBSITE, remember="yes")
    page = client.get(site.other_path)  # any story's form, on a new page load
    text = page.get_data(as_text=True)
    assert form_values(text) == {"name": "Ada", "email": EMAIL, "url": WEBSITE}
    assert re.search(r'<textarea id="reply-comment"[^>]*></textarea>', text)  # no text kept
    assert is_ticked(text)
    assert page.headers["Cache-Control"] == "private, no-store"
    assert "Cookie" in page.headers["Vary"]
    # Another browser sees an empty form, a page its own browser may keep (but no shared cache).
    other = stranger.get(site.other_path)
    assert EMAIL not in other.get_data(as_text=True)
    assert form_values(other.get_data(as_text=True)) == {"name": "", "email": "", "url": ""}
    assert not is_ticked(other.get_data(as_text=True))
    assert other.headers["Cache-Control"] == "private, no-cache"


def test_an_unticked_box_clears_the_cookie_and_empties_the_form(site: Site) -> None:
    client = site.client()
    reply(client, site.path, name="Ada", remember="yes")
    answer = reply(client, site.path, name="Ada")  # the box left unticked this time
    line = remembered_cookie(answer)
    assert line is not None
    flags = attributes(line)
    assert flags["max-age"] == "0" and "1970" in flags["expires"]
    assert client.get_cookie(REMEMBER_COOKIE) is None
    page = client.get(site.path).get_data(as_text=True)
    assert EMAIL not in page and not is_ticked(page)
    assert form_values(page) == {"name": "", "email": "", "url": ""}


def test_no_cookie_is_set_unticked_nor_for_a_refused_reply(site: Site) -> None:
    client = site.client()
    assert remembered_cookie(reply(client, site.path)) is None
    refused = reply(client, site.path, email="not-an-email", remember="yes")
    assert refused.status_code == 422
    assert remembered_cookie(refused) is None
    assert is_ticked(refused.get_data(as_text=True))  # the box stays as the reader left it
    honeypot = reply(client, site.path, homepage="http://spam.example", remember="yes")
    assert honeypot.status_code == 303 and remembered_cookie(honeypot) is None


def test_a_forged_or_foreign_cookie_fills_nothing_in(site: Site) -> None:
    client = site.client()
    client.set_cookie(REMEMBER_COOKIE, '{"name":"Mallory","email":"m@evil.example"}')
    page = client.get(site.path).get_data(as_text=True)
    assert "Mallory" not in page and "m@evil.example" not in page
    # Signed under another secret key: not this site's cookie.
    reply(client, site.path, name="Ada", remember="yes")
    cookie = client.get_cookie(REMEMBER_COOKIE)
    assert cookie is not None
    other_app = make_app(site.caulbart, site.engine, SECRET_KEY="another-secret-key")
    other_site = other_app.test_client()
    other_site.set_cookie(REMEMBER_COOKIE, cookie.value)
    assert EMAIL not in other_site.get(site.path).get_data(as_text=True)
    other_app.extensions["caulbart.feeds"].close()
