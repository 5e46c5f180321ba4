"""Optional Cython build of the hot path (the modules in ``retake.extensions.HOT_MODULES``).

Everything else about the package is in ``pyproject.toml``. The ``.py`` files stay the source and the
fallback: without Cython, without a C compiler, with ``RETAKE_NO_EXTENSIONS=1`` at build time, or when a
module fails to compile, the install goes on and that code runs as pure Python.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent


def _hot_modules() -> tuple[str, ...]:
    # Read the list from the package without importing it (its dependencies may not be installed yet).
    spec = importlib.util.spec_from_file_location("_retake_extensions", HERE / "src/retake/extensions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.extensions_disabled():
        return ()
    return tuple(module.HOT_MODULES)


class OptionalBuildExt(build_ext):
    """A failed build of one extension leaves that module in pure Python instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler at all (distutils' errors are Exceptions too)
            self._skip("the extensions", error)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self._skip(ext.name, error)

    def _skip(self, what: str, error: Exception) -> None:
        print(f"retake: not compiling {what} ({error}); running it as pure Python", file=sys.stderr)


def _extensions() -> list[Any]:
    modules = _hot_modules()
    if not modules:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("retake: Cython is not installed; the hot path runs as pure Python", file=sys.stderr)
        return []
    from setuptools import Extension

    built: list[Any] = []
    for name in modules:
        source = os.path.join("src", *name.split(".")) + ".py"
        try:  # one module Cython cannot translate stays pure Python; the others are still built
            built += cythonize(
                [Extension(name, [source])],
                language_level=3,
                quiet=True,
                compiler_directives={
                    # Annotations stay what they are in Python (hints), so compiled code accepts and rejects
                    # exactly what the .py does; C types are opted into per module with .pxd files.
                    "annotation_typing": False,
                },
            )
        except Exception as error:
            print(f"retake: not compiling {name} ({error}); running it as pure Python", file=sys.stderr)
    return built


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
