"""Uploaded images (thumbnails, avatars, banners): decoded and re-encoded by Pillow so that no metadata and
no trailing bytes of the upload ever reach a viewer. The work runs in a bounded worker pool
(``server/workers.py``), never on the event loop; the pixel count is checked from the header, before decoding."""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from retake.errors import PayloadTooLarge, UnsupportedMedia

MAX_PIXELS = 16_000_000  # Settings.max_image_pixels' default; larger claims are refused before decoding
KEEP_PER_OWNER = 20  # enough that recent sessions keep their thumbnails; older ones fall back to avatars


@dataclass(frozen=True)
class StoredImage:
    path: Path
    url: str


def reencode(data: bytes, max_bytes: int, max_pixels: int = MAX_PIXELS) -> tuple[bytes, str]:
    """Return (clean bytes, extension). 413 past ``max_bytes`` or ``max_pixels`` (decompression bombs
    included); 415 unless the bytes are a JPEG or PNG. CPU-heavy: call it through a worker pool."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"image is larger than {max_bytes // (1024 * 1024)} MB", code="image_too_large")
    if not data:
        raise UnsupportedMedia("image is empty; send a JPEG or PNG", code="unsupported_image")
    too_many = PayloadTooLarge(f"image has more than {max_pixels} pixels", code="image_too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["JPEG", "PNG"]) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise too_many
                fmt = img.format
                img.load()
                clean = img.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise too_many from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMedia("image must be a JPEG or PNG", code="unsupported_image") from exc
    out = io.BytesIO()
    if fmt == "JPEG":
        if clean.mode not in ("RGB", "L"):
            clean = clean.convert("RGB")
        clean.save(out, format="JPEG", quality=90, optimize=True)
        return out.getvalue(), "jpg"
    if clean.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        clean = clean.convert("RGBA")
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue(), "png"


class ImageStore:
    """Files under ``<data_dir>/media/<kind>/<owner>/``, served at ``<public_url>/media/...``."""

    def __init__(self, root: Path, public_url: str) -> None:
        self.root = root
        self._public_url = public_url

    def save(self, kind: str, owner: str, data: bytes, ext: str) -> StoredImage:
        folder = self.root / kind / owner
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{secrets.token_hex(8)}.{ext}"
        tmp = folder / (name + ".tmp")
        tmp.write_bytes(data)
        path = folder / name
        tmp.replace(path)  # atomic: a viewer never reads half a file
        self._prune(folder)
        return StoredImage(path=path, url=f"{self._public_url}/media/{kind}/{owner}/{name}")

    def url_prefix(self, kind: str, owner: str) -> str:
        """What every URL :meth:`save` returns for (``kind``, ``owner``) starts with."""
        return f"{self._public_url}/media/{kind}/{owner}/"

    def _prune(self, folder: Path) -> None:
        files = sorted((p for p in folder.iterdir() if p.suffix in {".jpg", ".png"}), key=lambda p: p.stat().st_mtime)
        for old in files[:-KEEP_PER_OWNER]:
            old.unlink(missing_ok=True)
