"""aggregator/stories/comments.py: validation and rendering as pure functions; storage, moderation,
auto-approval and the forgetting of IPs on both real databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from sqlalchemy import select
from sqlalchemy.orm import Session

from aggregator.storage.models import Comment, Story
from aggregator.stories import comments
from aggregator.stories.comments import Draft, Status
from aggregator.types import CommentsConfig

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
GOOD = {"comment": "Well reported.", "name": "Ada", "email": "ada@example.org", "url": ""}


def draft(**changes: str) -> Draft:
    return Draft.from_form({**GOOD, **changes})


def test_a_complete_draft_has_no_problems() -> None:
    assert comments.validate(draft(url="https://ada.example/about")) == {}


@pytest.mark.parametrize("field", ["comment", "name", "email"])
def test_required_fields_are_reported_by_field(field: str) -> None:
    assert set(comments.validate(draft(**{field: "  \n "}))) == {field}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("comment", "x" * (comments.BODY_MAX + 1)),
        ("name", "n" * (comments.NAME_MAX + 1)),
        ("email", "a" * 250 + "@example.org"),
        ("url", "https://example.org/" + "p" * comments.WEBSITE_MAX),
    ],
)
def test_overlong_fields_are_refused(field: str, value: str) -> None:
    assert set(comments.validate(draft(**{field: value}))) == {field}


@pytest.mark.parametrize(
    "email", ["ada", "ada@", "@example.org", "ada@example", "a b@example.org", "a@b@example.org"]
)
def test_malformed_emails_are_refused(email: str) -> None:
    assert set(comments.validate(draft(email=email))) == {"email"}


@pytest.mark.parametrize(
    "website", ["javascript:alert(1)", "ftp://example.org", "example.org", "https://", "data:x"]
)
def test_a_website_must_be_http_or_https(website: str) -> None:
    assert set(comments.validate(draft(url=website))) == {"url"}


def test_drafts_lose_control_characters_and_carriage_returns() -> None:
    cleaned = draft(comment="one\r\ntwo\x00\x07", name="  Ada \t Lovelace ")
    assert cleaned.body == "one\ntwo"
    assert cleaned.name == "Ada Lovelace"


def test_rendering_escapes_markup_and_keeps_line_breaks() -> None:
    html = comments.render_body('<script>alert("x")</script>\nline two\n\nsecond & last')
    assert html == (
        "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;<br>\nline two</p>\n"
        "<p>second &amp; last</p>"
    )


def test_rendering_links_http_urls_only_with_nofollow_ugc() -> None:
    html = comments.render_body(
        "See https://example.org/a?b=1&c=2. Not javascript:alert(1) nor ftp://example.org"
    )
    assert html == (
        '<p>See <a href="https://example.org/a?b=1&amp;c=2" rel="nofollow ugc noopener">'
        "https://example.org/a?b=1&amp;c=2</a>. Not javascript:alert(1) nor ftp://example.org</p>"
    )


def test_a_url_cannot_break_out_of_its_attribute() -> None:
    html = comments.render_body('https://example.org/"onmouseover="alert(1)')
    assert '"onmouseover' not in html
    assert html.startswith('<p><a href="https://example.org/" rel="nofollow ugc noopener">')


def test_excerpt_is_one_line_cut_at_a_word() -> None:
    assert comments.excerpt("a\nb  c") == "a b c"
    long = comments.excerpt("word " * 100)
    assert len(long) <= comments.EXCERPT_LENGTH + 1 and long.endswith("word…")


# --- on the databases -----------------------------------------------------------------------


def add_story(engine: sqlalchemy.Engine, withdrawn: bool = False) -> int:
    with Session(engine) as session, session.begin():
        story = Story(
            slug="a-story",
            title="A story",
            lede="Lede.",
            body_html="<p>Body.</p>",
            section="world",
            terms=[],
            published=NOW,
            updated=NOW,
            created_at=NOW,
            withdrawn_at=NOW if withdrawn else None,
        )
        session.add(story)
        session.flush()
        return story.id


def post(
    engine: sqlalchemy.Engine,
    story_id: int,
    settings: CommentsConfig | None = None,
    when: datetime = NOW,
    **changes: str,
) -> tuple[int, Status]:
    return comments.add_comment(
        engine,
        story_id,
        draft(**changes),
        now=when,
        settings=settings or CommentsConfig(),
        ip="192.0.2.7",
        author_token="session-token",
    )


def test_a_new_comment_is_pending_and_shown_to_its_author_only(
    engine: sqlalchemy.Engine,
) -> None:
    story = add_story(engine)
    comment_id, status = post(engine, story)
    assert status is Status.PENDING
    assert comments.approved_comments(engine, story) == []
    assert [c.id for c in comments.own_pending(engine, story, "session-token")] == [comment_id]
    assert comments.own_pending(engine, story, "another-token") == []
    assert comments.own_pending(engine, story, None) == []
    with Session(engine) as session:
        stored = session.get(Comment, comment_id)
        assert stored is not None
        assert stored.author_token != "session-token"  # only its digest is kept


def test_approval_shows_the_comment_and_counts_it(engine: sqlalchemy.Engine) -> None:
    story, other = add_story(engine), add_story(engine)
    first, _ = post(engine, story)
    second, _ = post(engine, story, name="Bob", email="bob@example.org")
    assert comments.moderate(engine, [first], Status.APPROVED, NOW) == [first]
    shown = comments.approved_comments(engine, story)
    assert [c.id for c in shown] == [first] and shown[0].approved_at == NOW
    assert comments.comment_counts(engine, [story, other]) == {story: 1, other: 0}
    assert [p.id for p in comments.pending_comments(engine)] == [second]


def test_moderating_an_unknown_id_changes_nothing(engine: sqlalchemy.Engine) -> None:
    story = add_story(engine)
    known, _ = post(engine, story)
    with pytest.raises(comments.UnknownComments) as raised:
        comments.moderate(engine, [known, 9999], Status.APPROVED, NOW)
    assert raised.value.ids == [9999]
    assert [p.id for p in comments.pending_comments(engine)] == [known]


def test_an_approved_commenter_is_approved_at_once_next_time(engine: sqlalchemy.Engine) -> None:
    story = add_story(engine)
    first, _ = post(engine, story)
    comments.moderate(engine, [first], Status.APPROVED, NOW)
    _, again = post(engine, story, email="ADA@example.org", comment="Me again.")
    assert again is Status.APPROVED
    _, renamed = post(engine, story, name="A. Lovelace", comment="Same email, other name.")
    assert renamed is Status.APPROVED  # trust is the email's, whatever name it signs with
    _, stranger = post(engine, story, email="eve@example.com", comment="Other email, Ada's name.")
    assert stranger is Status.PENDING
    _, off = post(engine, story, settings=CommentsConfig(auto_approve=False))
    assert off is Status.PENDING


def test_a_commenter_once_marked_spam_is_never_auto_approved(engine: sqlalchemy.Engine) -> None:
    story = add_story(engine)
    good, _ = post(engine, story)
    bad, _ = post(engine, story, comment="Buy now")
    comments.moderate(engine, [good], Status.APPROVED, NOW)
    comments.moderate(engine, [bad], Status.SPAM, NOW)
    assert post(engine, story, comment="Hello again")[1] is Status.PENDING
    assert post(engine, story, name="Someone new", comment="Hi")[1] is Status.PENDING


def test_a_withdrawn_story_takes_no_comments(engine: sqlalchemy.Engine) -> None:
    story = add_story(engine, withdrawn=True)
    with pytest.raises(comments.StoryClosed):
        post(engine, story)
    with pytest.raises(comments.StoryClosed):
        post(engine, story + 1000)


def test_ips_are_forgotten_after_the_configured_days(engine: sqlalchemy.Engine) -> None:
    story = add_story(engine)
    settings = CommentsConfig(keep_ip_days=7)
    old, _ = post(engine, story, settings, when=NOW - timedelta(days=8))
    recent, _ = post(engine, story, settings, when=NOW - timedelta(days=6))
    assert comments.forget_ips(engine, NOW, settings) == 1
    with Session(engine) as session:
        ips = {row.id: row.ip for row in session.execute(select(Comment.id, Comment.ip))}
    assert ips == {old: None, recent: "192.0.2.7"}


def test_no_ip_is_kept_when_keep_ip_days_is_zero(engine: sqlalchemy.Engine) -> None:
    story = add_story(engine)
    comment_id, _ = post(engine, story, CommentsConfig(keep_ip_days=0))
    with Session(engine) as session:
        assert session.scalar(select(Comment.ip).where(Comment.id == comment_id)) is None


def test_feeds_yaml_comments_section_is_read_and_checked() -> None:
    from aggregator.config.load import ConfigError, parse_config

    base = "sources:\n  - {id: a, url: 'https://example.org/feed'}\n"
    assert parse_config(base).comments == CommentsConfig(keep_ip_days=30, auto_approve=True)
    chosen = parse_config(base + "comments:\n  keep_ip_days: 0\n  auto_approve: false\n")
    assert chosen.comments == CommentsConfig(keep_ip_days=0, auto_approve=False)
    with pytest.raises(ConfigError) as raised:
        parse_config(base + "comments:\n  keep_ip_days: -1\n  auto_approve: maybe\n")
    assert [str(p) for p in raised.value.problems] == [
        "feeds.yaml:4: comments.keep_ip_days: must be 0 or more, not -1",
        "feeds.yaml:5: comments.auto_approve: must be true or false, not 'maybe'",
    ]
