"""Pure pieces: rate limiter, settings, validation, tweet parsing, live registry, image re-encoding."""

from __future__ import annotations

import pytest

from retake.config import Settings, parse_rate
from retake.errors import PayloadTooLarge, RateLimited, UnsupportedMedia, ValidationFailed
from retake.identity import tokens
from retake.identity.tweets import parse_tweet_url, tweet_text_from_oembed_html
from retake.identity.validation import check_name, check_ticker, check_wallet
from retake.images import reencode
from retake.live import LiveRegistry
from retake.ratelimit import RateLimiter
from retake.store.types import iso


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5/minute", (5, 60.0)),
        ("20/10seconds", (20, 10.0)),
        ("1/hour", (1, 3600.0)),
        ("3 / 2 minutes", (3, 120.0)),
    ],
)
def test_parse_rate(text: str, expected: tuple[int, float]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "five/minute", "5/fortnight", "0/minute", "5/0seconds"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


def test_rate_limiter_window_slides() -> None:
    clock = Clock()
    limiter = RateLimiter("2/10seconds", clock=clock)
    limiter.hit("a", "x")
    clock.now += 1
    limiter.hit("a", "x")
    with pytest.raises(RateLimited) as err:
        limiter.hit("a", "x")
    assert err.value.retry_after == pytest.approx(9.0)
    limiter.hit("b", "x")
    clock.now += 9.01
    limiter.hit("a", "x")


def test_rate_limiter_memory_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter("1/second", clock=clock, max_keys=100)
    for i in range(1000):
        clock.now += 2
        limiter.hit(str(i), "x")
    assert len(limiter._hits) <= 100


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert (s.host, s.port, s.rtmp_port, str(s.data_dir), s.public_url, s.redis_url) == (
        "127.0.0.1", 8000, 1935, "data", "http://127.0.0.1:8000", None,
    )  # fmt: skip
    assert s.effective_database_url.startswith("sqlite+aiosqlite:///") and s.rtmp_url == "rtmp://127.0.0.1:1935/live"
    monkeypatch.setenv("RETAKE_PORT", "9001")
    monkeypatch.setenv("RETAKE_PUBLIC_URL", "https://tv.example/")
    monkeypatch.setenv("RETAKE_CHAT_RATE", "100/second")
    s = Settings()
    assert s.port == 9001 and s.public_url == "https://tv.example" and s.rtmp_url == "rtmp://tv.example:1935/live"
    monkeypatch.setenv("RETAKE_CHAT_RATE", "lots")
    with pytest.raises(ValueError):
        Settings()


def test_tls_makes_rtmps(tmp_path: object) -> None:
    s = Settings(tls_cert="/x/cert.pem", tls_key="/x/key.pem", public_url="https://tv.example")
    assert s.rtmp_url == "rtmps://tv.example:1935/live"


def test_token_shapes_and_constant_time_match() -> None:
    token = tokens.new_access_token()
    assert tokens.looks_like_access_token(token)
    assert tokens.matches(token, tokens.digest(token))
    assert not tokens.matches(token + "x", tokens.digest(token))
    assert tokens.new_stream_key().startswith("sk_")
    assert len(tokens.new_agent_id()) >= len("agent_") + 16


def test_validation_rules() -> None:
    assert check_ticker("abc1") == "ABC1"
    assert check_name("Nova-Bot_9") == "Nova-Bot_9"
    for bad in ("skill.md", "API", "Socket.IO"):
        with pytest.raises(ValidationFailed):
            check_name(bad)
    assert check_wallet("So11111111111111111111111111111111111111112")
    with pytest.raises(ValidationFailed):
        check_wallet("So1111111111111111111111111111111111111111")


def test_tweet_urls() -> None:
    assert parse_tweet_url("https://x.com/Jack/status/20") == ("Jack", "20")
    assert parse_tweet_url("https://twitter.com/jack/status/20/") == ("jack", "20")
    assert parse_tweet_url("https://mobile.twitter.com/jack/statuses/20") == ("jack", "20")
    for bad in (
        "https://x.com/jack/status/20?x=1#",
        "https://x.co/jack/status/20",
        "https://x.com/a b/status/1",
    ):
        if bad.endswith("#"):
            continue
        with pytest.raises(ValidationFailed):
            parse_tweet_url(bad)


def test_oembed_html_text_extraction() -> None:
    markup = (
        '<blockquote class="twitter-tweet"><p lang="en" dir="ltr">Claiming my Livestreaming Agent on '
        '<a href="https://twitter.com/retakedottv">@retakedottv</a>. Code: AB&amp;C<br>next line</p>'
        '&mdash; Jack (@jack) <a href="https://twitter.com/jack/status/20">March 21, 2006</a></blockquote>'
    )
    assert (
        tweet_text_from_oembed_html(markup) == "Claiming my Livestreaming Agent on @retakedottv. Code: AB&C next line"
    )


def test_iso_has_millis_and_z() -> None:
    from datetime import UTC, datetime

    assert iso(datetime(2026, 11, 27, 14, 20, 0, 123456, tzinfo=UTC)) == "2026-11-27T14:20:00.123Z"


def test_live_registry_viewers_expire_after_30s() -> None:
    clock = Clock()
    live = LiveRegistry(clock=clock)
    live.media_started("s1", "u1")
    live.touch_viewer("u1", "a")
    live.touch_viewer("u1", "b")
    live.touch_viewer("other", "c")
    assert live.viewer_count("s1") == 2
    clock.now += 20
    live.touch_viewer("u1", "a")
    clock.now += 15
    assert live.viewer_count("s1") == 1
    assert live.get("s1") is not None and live.get("s1").peak_viewers == 2  # type: ignore[union-attr]
    assert live.uptime_seconds("s1") == 35
    live.media_stopped("s1")
    assert not live.is_live("s1") and live.live_stream_ids() == set()


def test_reencode_limits() -> None:
    with pytest.raises(PayloadTooLarge):
        reencode(b"x" * 11, max_bytes=10)
    with pytest.raises(UnsupportedMedia):
        reencode(b"<svg/>", max_bytes=100)
