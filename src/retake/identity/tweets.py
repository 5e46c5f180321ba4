"""Tweet verification behind a small interface.

The default verifier asks an oEmbed endpoint (``RETAKE_OEMBED_URL``, by default X's public one) for the
tweet and looks for the exact verification message in the tweet text that oEmbed returns inside ``html``.
"""

from __future__ import annotations

import html
import re
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from retake.errors import UpstreamFailed, ValidationFailed

_STATUS_PATH = re.compile(r"^/([A-Za-z0-9_]{1,15})/status(?:es)?/(\d{1,25})/?$")
_TWEET_HOSTS = {"x.com", "www.x.com", "twitter.com", "www.twitter.com", "mobile.twitter.com", "mobile.x.com"}


def parse_tweet_url(url: str) -> tuple[str, str]:
    """Return (handle, status id) of a real X/Twitter status URL, or raise ``invalid_tweet_url``."""
    parts = urlsplit(url.strip())
    match = _STATUS_PATH.match(parts.path)
    if parts.scheme != "https" or (parts.hostname or "") not in _TWEET_HOSTS or not match:
        raise ValidationFailed(
            "tweet_url must be a real https://x.com/<user>/status/<digits> or twitter.com status URL",
            code="invalid_tweet_url",
        )
    return match.group(1), match.group(2)


def tweet_text_from_oembed_html(markup: str) -> str:
    """oEmbed's ``html`` is a blockquote whose first <p> holds the tweet; tags are stripped, entities decoded."""
    paragraph = re.search(r"<p[^>]*>(.*?)</p>", markup, re.S)
    inner = paragraph.group(1) if paragraph else markup
    inner = re.sub(r"<br\s*/?>", "\n", inner)
    inner = re.sub(r"<[^>]+>", "", inner)
    return " ".join(html.unescape(inner).split())


class TweetVerifier(Protocol):
    async def tweet_contains(self, tweet_url: str, message: str) -> bool: ...


class OEmbedTweetVerifier:
    def __init__(self, base_url: str, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None):
        self._base_url = base_url
        self._timeout = timeout
        self._transport = transport

    async def tweet_contains(self, tweet_url: str, message: str) -> bool:
        params = {"url": tweet_url, "omit_script": "1", "dnt": "true"}
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
                response = await client.get(self._base_url, params=params)
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"could not reach the tweet service: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return False  # deleted, private or never existed: the code is certainly not there
        if response.status_code != 200:
            raise UpstreamFailed(f"the tweet service answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise UpstreamFailed("the tweet service answered with something that is not JSON") from exc
        markup = body.get("html") if isinstance(body, dict) else None
        if not isinstance(markup, str):
            raise UpstreamFailed("the tweet service's answer has no html field")
        return " ".join(message.split()) in tweet_text_from_oembed_html(markup)


def build_verifier(kind: str, oembed_url: str, timeout: float) -> TweetVerifier:
    if kind == "oembed":
        return OEmbedTweetVerifier(oembed_url, timeout)
    raise ValueError(f"unknown tweet verifier {kind!r} (known: oembed)")
