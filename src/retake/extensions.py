"""The compiled hot path: which modules are built with Cython, and the switch back to pure Python.

The ``.py`` files are the source and the fallback (as in aiohttp, uvloop and asyncpg): ``setup.py`` compiles
:data:`HOT_MODULES` with Cython in pure-Python mode when Cython and a C compiler are there, and places each
extension next to its ``.py``, where Python's import system prefers it. ``RETAKE_NO_EXTENSIONS=1`` makes
:class:`SourceFinder` (installed by ``retake/__init__.py``, before any of these modules can be imported)
load the ``.py`` instead. It does the same, whatever the variable says, for an extension older than its
``.py``: a developer who edits a hot module and forgets to rebuild runs what they wrote, not the old build.

This module imports nothing of the project and only the standard library, so that ``setup.py`` can read
:data:`HOT_MODULES` from it before the package is installed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final

NO_EXTENSIONS_ENV: Final = "RETAKE_NO_EXTENSIONS"

# What runs per RTMP message, from the socket read to FLV, CMAF/LL-HLS and the recorder. Left out:
# media/stream.py (its Subscriber is an async iterator; mypyc's build of it crashed there, and other work
# changes it often), and everything that runs per request or per stream rather than per message.
HOT_MODULES: Final[tuple[str, ...]] = (
    "retake.av.amf0",
    "retake.av.headers",
    "retake.av.message",
    "retake.ingest.rtmp.chunk",
    "retake.ingest.rtmp.connection",
    "retake.ingest.rtmp.messages",
    "retake.ingest.server",
    "retake.media.cmaf",
    "retake.media.flv",
    "retake.media.fmp4",
    "retake.media.hls",
    "retake.media.recording",
    "retake.media.timestamps",
    "retake.streams.media_bridge",
)


def extensions_disabled(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """``RETAKE_NO_EXTENSIONS`` set to anything but empty, ``0``, ``false`` or ``no``."""
    return environ.get(NO_EXTENSIONS_ENV, "").strip().lower() not in ("", "0", "false", "no")


class SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the ``.py`` of a hot module when extensions are disabled or the extension is stale."""

    def __init__(self, modules: Sequence[str], *, force_source: bool) -> None:
        self.modules = frozenset(modules)
        self.force_source = force_source

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules or path is None:
            return None  # one set lookup for every other import
        leaf = fullname.rpartition(".")[2]
        for directory in path:
            source = os.path.join(directory, leaf + ".py")
            if not os.path.exists(source):
                continue
            if not self.force_source and not _stale_extension(directory, leaf, source):
                return None  # the normal import: the extension, or the .py when none was built
            return importlib.util.spec_from_file_location(fullname, source)
        return None


def _stale_extension(directory: str, leaf: str, source: str) -> bool:
    source_mtime = os.stat(source).st_mtime
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = os.path.join(directory, leaf + suffix)
        if os.path.exists(candidate):
            return os.stat(candidate).st_mtime < source_mtime
    return False


def install() -> None:
    """Put a :class:`SourceFinder` first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, SourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, SourceFinder(HOT_MODULES, force_source=extensions_disabled()))


def is_compiled(module: ModuleType) -> bool:
    spec = module.__spec__
    return spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def compiled_modules() -> list[str]:
    """The hot modules running compiled in this process (importing them if needed)."""
    return [name for name in HOT_MODULES if is_compiled(importlib.import_module(name))]


def describe() -> str:
    """One line for the start-up banner: how the hot path runs in this process."""
    compiled = compiled_modules()
    if compiled:
        return f"compiled ({len(compiled)} of {len(HOT_MODULES)} hot modules)"
    if extensions_disabled():
        return f"pure Python ({NO_EXTENSIONS_ENV}=1)"
    return "pure Python (no extensions built)"
