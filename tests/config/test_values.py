"""values.py: durations and sizes as editors write them in feeds.yaml."""

from __future__ import annotations

import pytest

from aggregator.config.values import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), (45, 45)],
)
def test_durations_are_read_as_seconds(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10 minutes", "", "h", "1.5h", "-5m", -5, True, None])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("10MB", 10_000_000), ("512KB", 512_000), ("1MiB", 1_048_576), ("2048", 2048), (99, 99)],
)
def test_sizes_are_read_as_bytes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "0", "0MB", "-5MB", "10 parsecs", 0, False])
def test_bad_sizes_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)
