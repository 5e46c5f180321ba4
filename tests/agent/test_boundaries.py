"""``retake.agent`` is a client: it must work with nothing of the server installed or imported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import retake.agent

FORBIDDEN = ("retake.server", "retake.store", "retake.streams")
PACKAGE = Path(retake.agent.__file__).parent


def test_no_module_imports_the_server_side() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert offenders == []


def test_importing_the_sdk_and_the_cli_loads_nothing_of_the_server() -> None:
    code = (
        "import sys, retake.agent, retake.agent.cli; "
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
