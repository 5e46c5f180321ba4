"""Share cards: the 1200×630 image a link to a watch page unfurls with (OpenGraph ``og:image``, Twitter
``summary_large_image``), drawn by the server from what is on stream now.

The card is the stream's latest preview (streams/previews.py) or uploaded thumbnail, cropped to fill, with the
agent's name, a LIVE badge and the viewer count over a dark band. Drawing takes ~20 ms of CPU, so it runs in the
bounded image pool (server/workers.py), and each card is cached for ``CARD_TTL_SECONDS``: a link pasted in
many places at once (every unfurler fetches it) costs one drawing, and is at most that old.
"""

from __future__ import annotations

import io
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

CARD_SIZE = (1200, 630)
CARD_TTL_SECONDS = 15.0
CARD_CACHE_ENTRIES = 256
BAND_HEIGHT = 150  # the dark band at the bottom that carries the text
BACKGROUND = (11, 11, 16)  # the site's --bg (#0b0b10)
ACCENT = (124, 92, 255)  # the site's accent (#7c5cff)
LIVE_RED = (235, 4, 0)
MAX_SOURCE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CardFacts:
    name: str
    live: bool
    viewers: int
    title: str
    picture: Path | None  # the latest preview or thumbnail on this node's disk, if any


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size)  # Pillow's bundled font: no system font is needed


def _picture(path: Path | None) -> Image.Image | None:
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        with Image.open(path, formats=["JPEG", "PNG"]) as img:
            img.draft("RGB", CARD_SIZE)  # JPEG: decode at a reduced scale when the source is larger
            return ImageOps.fit(img.convert("RGB"), CARD_SIZE, Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _clip_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_card(facts: CardFacts) -> bytes:
    """The card as a JPEG. CPU-heavy: call it through the image pool."""
    card = _picture(facts.picture) or Image.new("RGB", CARD_SIZE, BACKGROUND)
    width, height = CARD_SIZE
    band = Image.new("RGBA", (width, BAND_HEIGHT), (*BACKGROUND, 215))
    card.paste(band, (0, height - BAND_HEIGHT), band)
    draw = ImageDraw.Draw(card)
    top = height - BAND_HEIGHT
    draw.rectangle((0, top, 10, height), fill=ACCENT)
    draw.text((40, top + 22), _clip_text(facts.name, 32), font=_font(56), fill=(255, 255, 255))
    subtitle = _clip_text(facts.title, 70) if facts.title else "on retake"
    draw.text((40, top + 92), subtitle, font=_font(30), fill=(200, 200, 214))
    if facts.live:
        draw.rounded_rectangle((32, 32, 172, 92), radius=10, fill=LIVE_RED)
        draw.text((57, 41), "LIVE", font=_font(40), fill=(255, 255, 255))
        watching = f"{facts.viewers} watching" if facts.viewers != 1 else "1 watching"
        box = draw.textbbox((0, 0), watching, font=_font(34))
        right = width - 40
        draw.rounded_rectangle((right - (box[2] - box[0]) - 36, 36, right, 88), radius=10, fill=(0, 0, 0))
        draw.text((right - (box[2] - box[0]) - 18, 42), watching, font=_font(34), fill=(255, 255, 255))
    else:
        draw.rounded_rectangle((32, 32, 232, 92), radius=10, fill=(60, 60, 72))
        draw.text((52, 41), "OFFLINE", font=_font(40), fill=(230, 230, 238))
    out = io.BytesIO()
    card.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


class CardCache:
    """Cards by key for ``ttl`` seconds, at most ``entries`` of them (the least recently made go first)."""

    def __init__(
        self,
        ttl: float = CARD_TTL_SECONDS,
        entries: int = CARD_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._entries = entries
        self._clock = clock
        self._cards: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        found = self._cards.get(key)
        if found is None or self._clock() - found[0] >= self.ttl:
            return None
        return found[1]

    def put(self, key: str, data: bytes) -> None:
        self._cards[key] = (self._clock(), data)
        self._cards.move_to_end(key)
        while len(self._cards) > self._entries:
            self._cards.popitem(last=False)
