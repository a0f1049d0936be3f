"""feeds.yaml -> `Config`: typed values, and every problem reported as `PATH:LINE: message`."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aggregator.config.load import (
    ConfigError,
    ConfigProblem,
    load_config,
    parse_config,
)
from aggregator.types import FullTextConfig, HostPort
from tests.conftest import ROOT, Caulbart

VALID = """\
site:
  title: Caulbart Test
  tagline: Tested news.
  base_url: https://news.example.org/
  language: en
defaults:
  interval: 10m
  min_interval: 90s
  max_interval: 1d
  timeout: 1h30m
  max_bytes: 10MB
  max_entries: 200
  per_host: 3
sources:
  - id: bbc-world
    name: BBC World
    url: https://feeds.bbci.co.uk/news/world/rss.xml
    agency: BBC News
    section: world
    interval: 1h
    priority: 2
    tags: [Europe, Politics]
  - id: plain
    url: http://example.org/feed.xml
    enabled: false
  - id: auto
    url: http://example.org/auto.xml
    interval: auto
"""

# Every line marked `# E: text` must be reported, on that line, with a message containing `text`.
BROKEN = """\
site:
  title: Caulbart
  colour: blue                     # E: unknown key 'colour'
defaults:
  interval: 10 minutes             # E: bad duration '10 minutes'
  timeout: 30s
  timeout: 40s                     # E: key 'timeout' is repeated
  max_bytes: lots                  # E: bad size 'lots'
  per_host: two                    # E: must be a whole number
sources:
  - id: bbc
    url: https://feeds.bbci.co.uk/news/rss.xml
  - id: bbc                        # E: 'bbc' already used on line 11
    url: https://example.org/other.xml
  - id: bbc-again
    url: HTTPS://FEEDS.bbci.co.uk/news/rss.xml/   # E: already used on line 12
  - id: ftp-feed
    url: ftp://example.org/feed.xml               # E: bad URL 'ftp://example.org/feed.xml'
  - id: nohost
    url: http:///feed.xml                         # E: bad URL 'http:///feed.xml'
  - id: no-url                     # E: missing required key 'url'
    name: Missing URL
  - url: https://example.org/no-id.xml            # E: missing required key 'id'
  - id: typed
    url: https://example.org/typed.xml
    enabled: "yes"                 # E: enabled: must be true or false
    priority: high                 # E: priority: must be a whole number
    interval: 1 fortnight          # E: bad duration '1 fortnight'
    tags: news                     # E: tags: must be a list
    colour: red                    # E: unknown key 'colour'
  - id: Upper Case                 # E: must be lower-case letters
    url: https://example.org/upper.xml
  - id: case-of-path
    url: https://example.org/News.xml
  - id: filtered
    url: https://example.org/filtered.xml
    include: "/(unclosed/"         # E: include[0]: bad regular expression '/(unclosed/'
    exclude: [sport, ""]           # E: exclude[1]: must be a non-empty text
    max_age: a while               # E: max_age: bad duration 'a while'
    languages: [en, English]       # E: languages[1]: 'English' is not a language code
    section_map: [Sport]           # E: section_map: must map a feed category to a section
    title_strip: ["/x?/"]          # E: title_strip[0]: '/x?/' matches an empty text
filters:
  max_age: 0s                      # E: filters.max_age: must be above zero
  languages: {en: yes}             # E: filters.languages: must be a list of language codes
  section_map:
    Sport: sport
    SPORT: games                   # E: category 'SPORT' is repeated
  colour: red                      # E: filters: unknown key 'colour'
"""


def _expected(text: str) -> list[tuple[int, str]]:
    return [
        (number, match.group(1).strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if (match := re.search(r"# E: (.*)$", line))
    ]


def test_valid_config_parses_into_typed_values() -> None:
    config = parse_config(VALID, "feeds.yaml")

    assert config.site.title == "Caulbart Test"
    assert config.site.base_url == "https://news.example.org"  # trailing slash dropped
    assert config.defaults.interval == 600
    assert config.defaults.min_interval == 90
    assert config.defaults.max_interval == 86400
    assert config.defaults.timeout == 5400
    assert config.defaults.max_bytes == 10_000_000
    assert config.defaults.max_entries == 200
    assert config.defaults.per_host == 3

    bbc, plain, auto = config.sources
    assert (bbc.id, bbc.name, bbc.agency, bbc.section) == (
        "bbc-world",
        "BBC World",
        "BBC News",
        "world",
    )
    assert bbc.url == "https://feeds.bbci.co.uk/news/world/rss.xml"
    assert (bbc.interval, bbc.priority, bbc.enabled) == (3600, 2, True)
    assert bbc.tags == ("Europe", "Politics")
    assert bbc.line == VALID.splitlines().index("  - id: bbc-world") + 1
    # Name and agency fall back to the id; interval to the defaults.
    assert (plain.name, plain.agency, plain.enabled, plain.interval) == (
        "plain",
        "plain",
        False,
        None,
    )
    assert config.interval_for(plain) == 600
    assert config.interval_for(bbc) == 3600
    assert auto.interval is None and config.is_adaptive(auto)
    assert not config.is_adaptive(bbc)


def test_broken_feeds_yaml_reports_every_problem_on_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BROKEN, "conf/feeds.yaml")

    problems = caught.value.problems
    assert all(p.path == "conf/feeds.yaml" for p in problems)
    expected = _expected(BROKEN)
    assert len(problems) == len(expected), "\n".join(map(str, problems))
    for problem, (line, text) in zip(problems, expected, strict=True):
        assert problem.line == line, f"{problem} should be on line {line}"
        assert text in problem.message, f"{problem} should say {text!r}"
    first = str(problems[0])
    assert first.startswith("conf/feeds.yaml:3: site: unknown key 'colour' (known: base_url, ")
    assert "tagline, title" in first  # the editor is told which keys exist


FILTERS = """\
filters:
  exclude: [horoscope, "/^Live:/"]
  max_age: 2d
  languages: en
  section_map: {Sport: sport, Politics: home}
  title_strip: " - Reuters"
sources:
  - id: wire
    url: https://example.org/wire.xml
    include: ["/clim(ate)? change/i", climate change]
    exclude: football
    languages: [en_GB, FR]
    section_map: {Politics: politics}
    title_strip: ['/^UPDATE \\d+-/']
  - id: plain
    url: https://example.org/plain.xml
"""


def test_filters_parse_site_wide_and_a_source_adds_its_own() -> None:
    config = parse_config(FILTERS, "feeds.yaml")
    wire, plain = config.sources

    assert config.rules_for(plain) == config.filters
    rules = config.rules_for(wire)
    assert [p.text for p in rules.include] == ["/clim(ate)? change/i", "climate change"]
    assert [p.where for p in rules.exclude] == [
        "filters.exclude[0]",
        "filters.exclude[1]",
        "sources[0].exclude[0]",
    ]
    assert [p.line for p in rules.exclude] == [2, 2, 11]
    assert rules.max_age == 172800  # the site-wide one: the source sets none
    assert rules.languages == ("en-gb", "fr")  # the source's replace the site-wide ones
    assert dict(rules.section_map) == {"sport": "sport", "politics": "politics"}
    assert [p.text for p in rules.title_strip] == ["- Reuters", "/^UPDATE \\d+-/"]
    # Keywords are whole words in any case; a /regex/ is as written, /regex/i ignores case.
    keyword, regex = config.filters.exclude
    assert keyword.search("HOROSCOPE today") and not keyword.search("Horoscopes")
    assert regex.search("Live: x") and not regex.search("live: x")
    assert rules.include[0].search("CLIMATE CHANGE") and rules.include[1].search("climate  change")


def test_urls_differing_only_in_path_case_are_distinct_sources() -> None:
    text = BROKEN.split("sources:")[0].split("site:")[0] + (
        "sources:\n"
        "  - id: a\n    url: https://example.org/News.xml\n"
        "  - id: b\n    url: https://example.org/news.xml\n"
    )
    assert [s.id for s in parse_config(text).sources] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("sources:\n  - id: a\n\turl: http://x.example/\n", 3),
        ("sources:\n  - id: a\n     url: http://x.example/\n", 3),
        ("site:\n  title: x\n  - y\nsources: []\n", 3),
    ],
)
def test_yaml_syntax_error_names_its_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "feeds.yaml")
    [problem] = caught.value.problems
    assert problem.line == line
    assert problem.message.startswith("YAML syntax:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("site:\n  title: x\n", "sources: missing"),
        ("sources:\n  id: a\n", "sources: must be a list"),
        ("site: [a, b]\nsources: []\n", "site: must be a mapping"),
        ("sources:\n  - id: a\n    url: [http://x.example/]\n", "url: must be a single value"),
        ("sources:\n  - id: a\n    url:\n", "url: must be an http(s) URL"),
        ("defaults:\n  timeout: 0s\nsources: []\n", "timeout: must be above zero"),
        ("sources:\n  - id: a\n    url: http://x.example:99999/\n", "port must be 1-65535"),
    ],
)
def test_wrong_types_are_reported(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "feeds.yaml")
    assert any(message in p.message for p in caught.value.problems), caught.value.problems


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nowhere.yaml")
    assert caught.value.problems == [
        ConfigProblem(str(tmp_path / "nowhere.yaml"), 0, "file not found")
    ]


# --- through the real command line ----------------------------------------------------------


def _cli(tmp_path: Path, config: Path) -> Caulbart:
    # `check` never opens the database; a SQLite path keeps it from touching any shared one.
    return Caulbart(
        config=config, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", cwd=tmp_path
    )


def test_check_command_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(BROKEN, encoding="utf-8")

    result = _cli(tmp_path, config)("check")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    expected = _expected(BROKEN)
    assert len(lines) == len(expected), result.stdout
    for printed, (line, text) in zip(lines, expected, strict=True):
        assert printed.startswith(f"{config}:{line}: "), printed
        assert text in printed


def test_check_command_names_the_yaml_syntax_error_line(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("sources:\n  - id: a\n\turl: http://x.example/\n", encoding="utf-8")
    result = _cli(tmp_path, config)("--config", str(config), "check")
    assert result.returncode == 1
    assert result.stdout.startswith(f"{config}:3: YAML syntax:")


def test_repository_feeds_yaml_is_valid_with_15_to_30_real_sources(tmp_path: Path) -> None:
    path = ROOT / "feeds.yaml"
    result = _cli(tmp_path, path)("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{path}: OK" in result.stdout

    config = load_config(path)
    assert 15 <= len(config.sources) <= 30
    for source in config.sources:
        parts = urlsplit(source.url)
        assert parts.scheme == "https" or parts.scheme == "http"
        assert parts.hostname and "example" not in parts.hostname and parts.hostname != "127.0.0.1"
        assert source.section


def test_full_text_is_off_by_default_and_allow_private_implies_it() -> None:
    text = (
        "sources:\n"
        "  - id: plain\n    url: http://a.example/f\n"
        "  - id: wanted\n    url: http://b.example/f\n    full_text: true\n"
        "  - id: unwanted\n    url: http://c.example/f\n    full_text: false\n"
        "  - id: intranet\n    url: http://d.example/f\n    full_text: {allow_private: true}\n"
        "  - id: public\n    url: http://e.example/f\n    full_text: {}\n"
    )
    sources = {s.id: s.full_text for s in parse_config(text).sources}
    assert sources == {
        "plain": None,
        "wanted": FullTextConfig(),
        "unwanted": None,
        "intranet": FullTextConfig(allow_private=(HostPort("d.example", 80),)),
        "public": FullTextConfig(),
    }


def test_allow_private_names_hosts_and_ports_and_true_is_the_feeds_own() -> None:
    """An old `allow_private: true` still means the feed's own place, now with its port."""
    text = (
        "sources:\n"
        "  - id: own\n    url: https://Intranet.Local/rss\n    full_text: {allow_private: true}\n"
        "  - id: listed\n    url: http://10.0.0.5:8080/rss\n    full_text:\n"
        "      allow_private: [pages.intranet.local:8081, '[fd00::5]:443', 10.0.0.5:8080]\n"
        "  - id: closed\n    url: http://10.0.0.5/rss\n    full_text: {allow_private: false}\n"
    )
    sources = {s.id: s.full_text for s in parse_config(text).sources}
    assert sources == {
        "own": FullTextConfig(allow_private=(HostPort("intranet.local", 443),)),
        "listed": FullTextConfig(
            allow_private=(
                HostPort("10.0.0.5", 8080),
                HostPort("fd00::5", 443),
                HostPort("pages.intranet.local", 8081),
            )
        ),
        "closed": FullTextConfig(),
    }
    assert [str(p) for p in sources["listed"].allow_private] == [  # type: ignore[union-attr]
        "10.0.0.5:8080",
        "[fd00::5]:443",
        "pages.intranet.local:8081",
    ]


@pytest.mark.parametrize(
    ("value", "line", "message"),
    [
        (
            "full_text: yes please",
            4,
            "full_text: must be true or false, not 'yes please'",
        ),
        (
            "full_text: [on]",
            4,
            "full_text: must be true, false or {allow_private: true}",
        ),
        (
            "full_text:\n      allow_private: maybe",
            5,
            "full_text.allow_private: must be true, false or a list of host:port, not 'maybe'",
        ),
        (
            "full_text:\n      private: true",
            5,
            "full_text: unknown key 'private' (known: allow_private)",
        ),
        (
            "full_text:\n      allow_private:\n        - intranet.local:8080\n"
            "        - intranet.local",
            7,
            "full_text.allow_private[1]: 'intranet.local' must be host:port"
            " (such as intranet.local:8080)",
        ),
        (
            "full_text: {allow_private: ['10.0.0.5:99999']}",
            4,
            "full_text.allow_private[0]: '10.0.0.5:99999' must be host:port"
            " (such as intranet.local:8080)",
        ),
        (
            "full_text: {allow_private: ['http://10.0.0.5:80/']}",
            4,
            "full_text.allow_private[0]: 'http://10.0.0.5:80/' must be host:port"
            " (such as intranet.local:8080)",
        ),
        (
            "full_text: {allow_private: [{host: x}]}",
            4,
            "full_text.allow_private[0]: a nested value must be host:port"
            " (such as intranet.local:8080)",
        ),
        (
            "full_text: {allow_private: {host: x}}",
            4,
            "full_text.allow_private: must be true, false or a list of host:port",
        ),
    ],
)
def test_bad_full_text_names_the_field_on_its_line(value: str, line: int, message: str) -> None:
    text = f"sources:\n  - id: a\n    url: http://a.example/f\n    {value}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "feeds.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert problems == [f"feeds.yaml:{line}: sources[0].{message}"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "sources:\n  - id: a\n    url: http://x.example/\n    publish: maybe\n",
            4,
            "sources[0].publish: must be auto or review, not 'maybe'",
        ),
        (
            "sources:\n  - id: a\n    url: http://x.example/\n    publish: [review]\n",
            4,
            "sources[0].publish: must be a single value",
        ),
        ("defaults:\n  keep: forever\nsources: []\n", 2, "defaults.keep: bad duration 'forever'"),
        ("defaults:\n  keep: 0d\nsources: []\n", 2, "defaults.keep: must be above zero"),
    ],
)
def test_bad_publish_and_keep_name_their_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "feeds.yaml")
    [problem] = caught.value.problems
    assert str(problem).startswith(f"feeds.yaml:{line}: {message}"), problem


def test_publish_and_keep_are_read() -> None:
    config = parse_config(
        "defaults:\n  keep: 365d\nsources:\n"
        "  - id: a\n    url: http://a.example/\n    publish: review\n"
        "  - id: b\n    url: http://b.example/\n",
        "feeds.yaml",
    )
    assert config.defaults.keep == 365 * 86400
    assert [s.publish for s in config.sources] == ["review", "auto"]
    assert parse_config("sources: []\n").defaults.keep is None
