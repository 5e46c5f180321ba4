"""Schemathesis over /openapi.json against a real server: no 5xx, every response matches its declared schema,
status code, content type and headers. Business rules that a schema cannot state (reserved names, taken
names, base58 byte length, "exactly one of two ids") are why positive_data_acceptance is left out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.support import VALID_WALLET

MAX_EXAMPLES = 15


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_errors_or_schema_mismatches(server: Server, tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis (st) is not installed in the venv; run `make install`"
    with httpx.Client(base_url=server.base, timeout=10) as http:
        body = {"agent_name": "fuzz_target", "wallet_address": VALID_WALLET, "ticker": "FZ"}
        token = http.post("/api/v1/agent/register", json=body).json()["access_token"]
        # An open session so thumbnail uploads and chat reach their deeper code paths too.
        http.post("/api/v1/agent/stream/start", headers={"Authorization": f"Bearer {token}"})
    command = [
        st, "run", f"{server.base}/openapi.json",
        "--checks", "all",
        "--exclude-checks", "positive_data_acceptance",
        # Rotating the token mid-run would turn every later authenticated call into a 401.
        "--exclude-path", "/api/v1/agent/rotate-token",
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(MAX_EXAMPLES),
        "--no-color",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    assert "failed" not in output.split("SUMMARY")[-1].lower() or " 0 failed" in output, output[-4000:]
    assert "Traceback" not in server.log(), server.log()[-4000:]
