"""The web front against an outside attacker: idle connections, huge numbers in addresses, a
spammer under a new name, the editors' cookie, and invisible characters that spoof text.

Through the user's paths: a real `caulbart serve` on 127.0.0.1, the web app over stories that
`caulbart fetch` ingested from a loopback feed, the `caulbart comments` commands; both databases.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aggregator.models import Comment
from tests.e2e.test_comments_web import (
    Site,
    pending_lines,
    reply,
    site,
    token_of,
)
from tests.e2e.test_worker import processes, unused_port

__all__ = ["processes", "site", "unused_port"]  # the fixtures

HUGE = "99999999999999999999999"
BEYOND = str(2**31)  # one more than the largest id PostgreSQL's INTEGER id columns hold

# --- huge numbers and odd methods -----------------------------------------------------------


def test_out_of_range_story_ids_are_404_not_500(site: Site) -> None:
    client = site.client()
    day = site.path.rsplit("/", 1)[0]
    for number in (HUGE, BEYOND):
        for path in (f"{day}/x-{number}", f"{day}/x-{number}/comments.atom"):
            assert client.get(path).status_code == 404, path
        assert client.get(f"/sitemap-stories-{number}.xml").status_code == 404
    # In range, unknown:
    assert client.get(f"{day}/x-{2**31 - 1}").status_code == 404
    assert client.get(f"/sitemap-stories-{2**31 - 1}.xml").status_code == 404
    assert client.get(site.path).status_code == 200


def test_a_reply_to_an_out_of_range_story_id_is_404(site: Site) -> None:
    client = site.client()
    form = {"csrf_token": token_of(client, site.path), "comment": "Hi", "name": "Ada"}
    form |= {"email": "ada@example.org", "url": "", "homepage": ""}
    day = site.path.rsplit("/", 1)[0]
    assert client.post(f"{day}/x-{HUGE}", data=form).status_code == 404
    assert site.stored() == 0


def test_out_of_range_ids_in_the_admin_forms_are_400(site: Site) -> None:
    site.app.config["CAULBART_ADMIN_TOKEN"] = "an-editors-token-long-enough"
    editor = site.client()
    editor.get("/admin/comments?token=an-editors-token-long-enough")
    csrf = token_of(editor, site.path)  # one token per session, whichever page shows it
    for path, action in (("/admin/comments", "spam"), ("/admin/review", "approved")):
        assert editor.get(path).status_code == 200
        for number in (HUGE, BEYOND, "-" + HUGE, "١٢"):
            sent = {"id": number, "action": action, "csrf_token": csrf}
            assert editor.post(path, data=sent).status_code == 400, (path, number)


def test_methods_other_than_get_head_options_post_are_405(site: Site) -> None:
    client = site.client()
    for method in ("PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"):
        for path in ("/", site.path, "/feed.atom", "/admin/comments"):
            answer = client.open(path, method=method)
            assert answer.status_code == 405, (method, path)
            assert "GET" in answer.headers["Allow"]
    assert client.open("/", method="OPTIONS").status_code == 200
    assert client.post("/").status_code == 405  # the home page takes no form
    assert client.post("/no/such/page").status_code == 404


# --- a spammer under another name -----------------------------------------------------------

EVE = "eve@example.com"


def test_a_spam_mark_withdraws_trust_from_every_name_of_that_email(site: Site) -> None:
    client = site.client()
    reply(client, site.path, comment="A fair point about the ferry.", name="Eve", email=EVE)
    [approved] = pending_lines(site.caulbart)
    assert site.caulbart("comments", "approve", str(approved["id"])).returncode == 0
    reply(client, site.path, comment="Cheap pills here.", name="Pill Shop", email=EVE)
    assert pending_lines(site.caulbart) == []  # trusted by email: published under a new name
    with Session(site.engine) as session:
        spam = session.scalar(select(func.max(Comment.id)))
    assert site.caulbart("comments", "spam", str(spam)).returncode == 0

    reply(client, site.path, comment="Back again, as Eve.", name="Eve", email=EVE.upper())
    assert [line["name"] for line in pending_lines(site.caulbart)] == ["Eve"]
    page = site.client().get(site.path).get_data(as_text=True)
    assert "Back again" not in page


def test_an_approved_email_is_trusted_under_a_new_name(site: Site) -> None:
    client = site.client()
    reply(client, site.path, comment="First, as Ada.", name="Ada")
    [line] = pending_lines(site.caulbart)
    site.caulbart("comments", "approve", str(line["id"]))
    reply(client, site.path, comment="Now signing as A. Lovelace.", name="A. Lovelace")
    assert pending_lines(site.caulbart) == []
