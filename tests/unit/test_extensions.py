"""The compiled hot path (retake/extensions.py, setup.py): built where a compiler is, switched off by
RETAKE_NO_EXTENSIONS=1, and never run stale after an edit of its .py."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx

from retake import extensions
from retake.extensions import HOT_MODULES, SourceFinder

SRC = Path(extensions.__file__).resolve().parents[1]
EXTENSION_SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
PROBE = (
    "import json, retake.extensions as e, importlib;"
    "print(json.dumps({n: importlib.import_module(n).__file__ for n in e.HOT_MODULES}))"
)


def compiler_present() -> bool:
    """The C compiler the build uses (setuptools takes $CC first), as a command on PATH."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def module_files(**env: str) -> dict[str, str]:
    """Where each hot module is loaded from in a fresh interpreter with ``env``."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    files: dict[str, str] = json.loads(out)
    return files


def expected_compiled() -> list[str]:
    """Everything where a compiler is (the install built it), nothing with RETAKE_NO_EXTENSIONS=1 or no compiler."""
    return list(HOT_MODULES) if compiler_present() and not extensions.extensions_disabled() else []


def test_every_hot_module_is_compiled_where_a_compiler_is() -> None:
    files = module_files()
    compiled = [name for name, file in files.items() if file.endswith(EXTENSION_SUFFIX)]
    assert compiled == expected_compiled(), "missing ones are not built or older than their .py: `make extensions`"
    assert extensions.compiled_modules() == expected_compiled()


def test_no_extensions_loads_every_hot_module_from_its_py() -> None:
    files = module_files(RETAKE_NO_EXTENSIONS="1")
    assert sorted(files) == sorted(HOT_MODULES)
    for name, file in files.items():
        assert file == str(SRC / Path(*name.split("."))) + ".py"
    probe = "import retake.extensions as e; print(e.compiled_modules(), e.describe())"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(SRC), "RETAKE_NO_EXTENSIONS": "1"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == "[] pure Python (RETAKE_NO_EXTENSIONS=1)"


def test_the_switch_reads_common_spellings() -> None:
    assert extensions.extensions_disabled({"RETAKE_NO_EXTENSIONS": "1"})
    assert extensions.extensions_disabled({"RETAKE_NO_EXTENSIONS": "yes"})
    for off in ("", "0", "false", "No"):
        assert not extensions.extensions_disabled({"RETAKE_NO_EXTENSIONS": off})
    assert not extensions.extensions_disabled({})


def test_a_stale_extension_is_passed_over_for_its_py(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    source = package / "hot.py"
    source.write_text("VALUE = 1\n")
    built = package / f"hot{EXTENSION_SUFFIX}"
    built.write_bytes(b"not loaded by this test")
    finder = SourceFinder(["pkg.hot"], force_source=False)

    os.utime(built, (1_000_000, 1_000_000))
    os.utime(source, (2_000_000, 2_000_000))  # the .py was edited after the build
    spec = finder.find_spec("pkg.hot", [str(package)])
    assert spec is not None and spec.origin == str(source)

    os.utime(built, (3_000_000, 3_000_000))  # rebuilt: the normal import (the extension) goes ahead
    assert finder.find_spec("pkg.hot", [str(package)]) is None
    assert SourceFinder(["pkg.hot"], force_source=True).find_spec("pkg.hot", [str(package)]).origin == str(source)  # type: ignore[union-attr]
    assert finder.find_spec("pkg.other", [str(package)]) is None  # not a hot module: not ours to find


async def test_health_lists_the_compiled_modules(client: httpx.AsyncClient) -> None:
    health = (await client.get("/health")).json()
    assert health["extensions"] == extensions.compiled_modules() == expected_compiled()
