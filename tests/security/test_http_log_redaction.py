"""Issue 12 item 10: secrets sent in a query string never reach the log, the access log included.
Before, uvicorn's access line carried the full ``?access_token=rtk_…``."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.security.conftest import serve

SECRET = "rtk_secretSECRETsecret0123456789abcdef"


def test_query_string_tokens_are_redacted_in_every_log_line(tmp_path: Path) -> None:
    for server in serve(tmp_path):
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for path in (
                f"/api/v1/agent/stream/status?access_token={SECRET}",
                f"/api/v1/users/newest/?token={SECRET}&limit=1",
                f"/socket.io/?EIO=4&transport=polling&access_token={SECRET}",
                f"/nobody-here?x=1&token={SECRET}",
            ):
                http.get(path)
        log = server.log()
        assert "/api/v1/users/newest/?token=" in log, "the access log is on, and redacts rather than drops"
    assert "secretSECRET" not in log, [line for line in log.splitlines() if "secretSECRET" in line][:3]
