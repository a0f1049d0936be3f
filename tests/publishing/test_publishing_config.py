"""feeds.yaml's publishing keys: websub_hubs, feed_length, rights, excerpt_only, images."""

from __future__ import annotations

import pytest

from aggregator.config.load import ConfigError, parse_config

YAML = """\
site:
  base_url: https://news.example
  websub_hubs:
    - https://hub.example/
  feed_length: 30
sources:
  - id: wire
    url: https://wire.example/rss
    rights: "© Wire Service"
    excerpt_only: true
    images: false
"""


def test_config_reads_the_publishing_keys() -> None:
    config = parse_config(YAML)
    assert config.site.websub_hubs == ("https://hub.example/",)
    assert config.site.feed_length == 30
    (source,) = config.sources
    assert (source.rights, source.excerpt_only, source.images) == ("© Wire Service", True, False)
    plain = parse_config("sources:\n  - id: a\n    url: https://a.example/\n")
    assert plain.site.websub_hubs == () and plain.site.feed_length == 50
    assert (plain.sources[0].excerpt_only, plain.sources[0].images) == (False, True)


def test_config_reports_bad_publishing_values_with_their_lines() -> None:
    bad = (
        YAML.replace("https://hub.example/", "ftp://hub.example/")
        .replace("feed_length: 30", "feed_length: 0")
        .replace("excerpt_only: true", "excerpt_only: sometimes")
        .replace("images: false", "imagery: false")
    )
    with pytest.raises(ConfigError) as error:
        parse_config(bad)
    lines = [str(problem) for problem in error.value.problems]
    assert lines[0].startswith("feeds.yaml:4: site.websub_hubs[0]: bad URL")
    assert lines[1].startswith("feeds.yaml:5: site.feed_length: must be above zero")
    assert lines[2].startswith("feeds.yaml:10: sources[0].excerpt_only: must be true or false")
    assert lines[3].startswith("feeds.yaml:11: sources[0]: unknown key 'imagery'")
