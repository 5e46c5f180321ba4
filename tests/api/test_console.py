"""The operator console at /admin over HTTP, on SQLite and PostgreSQL: sign-in, the doors (bad token, CSRF,
Origin, roles), each action and its audit row, and the suspension enforced by the services (RTMP keys, stream
start, chat on REST). The browser side, with a real publisher, is tests/web/test_console.py."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from retake.accounts.audit import AuditLog
from retake.accounts.operators import OperatorAccounts
from retake.cli import app as cli_app

ORIGIN = {"Origin": "http://testserver"}
SEND = "/api/v1/agent/stream/chat/send"


def platform_of(client: httpx.AsyncClient) -> Any:
    return client.app.state.platform  # type: ignore[attr-defined]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


async def new_operator(client: httpx.AsyncClient, name: str, role: str = "admin") -> str:
    return (await OperatorAccounts(platform_of(client).sessions).create(name, role)).token


async def sign_in(client: httpx.AsyncClient, token: str) -> str:
    """Signs the client in; returns the form token of its session."""
    form = await client.get("/admin/login")
    assert form.status_code == 200
    done = await client.post("/admin/login", data={"token": token, "csrf": csrf_of(form.text)}, headers=ORIGIN)
    assert done.status_code == 303 and done.headers["location"] == "/admin/streams", done.text
    page = await client.get("/admin/streams")
    assert page.status_code == 200
    return csrf_of(page.text)


async def act(client: httpx.AsyncClient, csrf: str, what: str, **fields: str) -> httpx.Response:
    return await client.post(f"/admin/act/{what}", data={"csrf": csrf, **fields}, headers=ORIGIN)


async def audit_rows(client: httpx.AsyncClient) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.target) for e in await AuditLog(platform_of(client).sessions).recent()]


async def test_sign_in_pages_and_sign_out(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/streams")).headers["location"] == "/admin/login"
    token = await new_operator(client, "ada")
    csrf = await sign_in(client, token)
    cookie = next(c for c in client.cookies.jar if c.name == "retake_console")
    assert cookie.path == "/admin" and cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure
    page = await client.get("/admin/streams")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"] and "<script" not in page.text
    assert "style=" not in page.text, "strict CSP: no inline style attributes"
    for path in ("/admin/agents", "/admin/chat", "/admin/audit", "/admin/agents?q=zz"):
        assert (await client.get(path)).status_code == 200, path
    secret = cookie.value
    accounts = OperatorAccounts(platform_of(client).sessions)
    assert (await accounts.session_of(secret)) is not None
    out = await client.post("/admin/logout", data={"csrf": csrf}, headers=ORIGIN)
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert (await client.get("/admin/streams")).headers["location"] == "/admin/login"
    assert await accounts.session_of(secret) is None, "the stored session is gone: the old cookie is worthless"


async def test_cookie_is_secure_behind_https(client: httpx.AsyncClient) -> None:
    token = await new_operator(client, "sec")
    https = httpx.AsyncClient(transport=client._transport, base_url="https://testserver")
    async with https:
        form = await https.get("/admin/login")
        answer = await https.post(
            "/admin/login",
            data={"token": token, "csrf": csrf_of(form.text)},
            headers={"Origin": "https://testserver"},
        )
    assert answer.status_code == 303
    set_cookie = answer.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/admin"):
        assert flag in set_cookie, set_cookie


async def test_bad_token_csrf_and_origin_refusals(client: httpx.AsyncClient) -> None:
    form = await client.get("/admin/login")
    nonce = csrf_of(form.text)
    bad = await client.post("/admin/login", data={"token": "rto_" + "x" * 43, "csrf": nonce}, headers=ORIGIN)
    assert bad.status_code == 401 and "does not sign anyone in" in bad.text
    assert "retake_console" not in {c.name for c in client.cookies.jar}
    token = await new_operator(client, "bob")
    assert (
        await client.post("/admin/login", data={"token": token, "csrf": "forged"}, headers=ORIGIN)
    ).status_code == 403
    evil = {"Origin": "https://evil.example"}
    assert (await client.post("/admin/login", data={"token": token, "csrf": nonce}, headers=evil)).status_code == 403
    csrf = await sign_in(client, token)
    for data, headers in [
        ({"agent": "x", "reason": "r"}, ORIGIN),  # no form token
        ({"agent": "x", "reason": "r", "csrf": "0" * 64}, ORIGIN),  # a wrong one
        ({"agent": "x", "reason": "r", "csrf": csrf}, evil),  # the right one, from another site
        ({"agent": "x", "reason": "r", "csrf": csrf}, {}),  # no Origin nor Referer
    ]:
        refused = await client.post("/admin/act/warn", data=data, headers=headers)
        assert refused.status_code == 403, (data, headers)
    assert await audit_rows(client) == []
    referer = await client.post(
        "/admin/act/warn",
        data={"agent": "nobody", "reason": "r", "csrf": csrf},
        headers={"Referer": "http://testserver/admin/streams"},
    )
    assert referer.status_code == 404 and "no agent named" in referer.text, "Referer stands in for Origin"


async def test_actions_write_the_audit_log(client: httpx.AsyncClient, register: Any) -> None:
    agent, viewer = await register(), await register()
    start = await client.post("/api/v1/agent/stream/start", headers=agent.headers)
    assert start.status_code == 200
    said = await client.post(
        SEND, json={"message": "spam spam", "destination_user_id": agent.user_id}, headers=viewer.headers
    )
    chat_id = said.json()["chat_event_id"]
    csrf = await sign_in(client, await new_operator(client, "ada"))

    warned = await act(client, csrf, "warn", agent=agent.name, reason="keep it clean")
    assert warned.status_code == 303 and "done=warn" in warned.headers["location"]
    assert "was warned" in (await client.get(warned.headers["location"])).text
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["warnings"][0]["reason"] == "keep it clean"

    assert (await act(client, csrf, "verify", agent=agent.name)).status_code == 303
    assert (await client.get("/api/v1/agent/verification-status", headers=agent.headers)).json()["verified"]

    chat = await client.get("/admin/chat")
    assert "spam spam" in chat.text and f"Jail {viewer.name}" in chat.text
    assert (await act(client, csrf, "jail", chat_event_id=chat_id)).status_code == 303
    muted = await client.post(
        SEND, json={"message": "again", "destination_user_id": agent.user_id}, headers=viewer.headers
    )
    assert muted.status_code == 403 and muted.json()["code"] == "muted"
    assert (await act(client, csrf, "delete", chat_event_id=chat_id)).status_code == 303
    comments = await client.get(f"/api/v1/agent/stream/comments?userDbId={agent.user_id}", headers=agent.headers)
    assert chat_id not in {c["_id"] for c in comments.json()["comments"]}
    gone = await act(client, csrf, "delete", chat_event_id=chat_id)
    assert gone.status_code == 404 and "no chat message" in gone.text

    assert (await act(client, csrf, "shutdown", agent=agent.name)).status_code == 303

    rows = await audit_rows(client)  # newest first
    assert [action for _a, action, _t in rows] == ["shutdown", "delete_message", "jail", "verify", "warn"], rows
    assert all(actor == "ada" for actor, _a, _t in rows)
    assert rows[-1] == ("ada", "warn", agent.name)
    assert rows[-3][2] == f"{viewer.name} in {agent.name}'s chat"
    page = (await client.get("/admin/audit")).text
    assert page.index("shutdown") < page.index("keep it clean"), "newest first"


async def test_suspended_agent_is_refused_everywhere(client: httpx.AsyncClient, register: Any) -> None:
    agent, other = await register(), await register()
    csrf = await sign_in(client, await new_operator(client, "ada"))
    assert (await act(client, csrf, "suspend", agent=agent.name, q=agent.name)).status_code == 303
    listed = await client.get(f"/admin/agents?q={agent.name}")
    assert "suspended" in listed.text and "Unsuspend" in listed.text
    for method, path, body in [
        ("POST", "/api/v1/agent/rtmp", None),
        ("POST", "/api/v1/agent/stream/start", None),
        ("POST", SEND, {"message": "hi", "destination_user_id": other.user_id}),
        ("POST", SEND, {"message": "hi", "destination_user_id": agent.user_id}),
    ]:
        refused = await client.request(method, path, json=body, headers=agent.headers)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json() == {"error": "this agent is suspended by the platform operator", "code": "suspended"}
    assert (await client.post("/api/v1/agent/rtmp", headers=other.headers)).status_code == 200
    assert (await act(client, csrf, "unsuspend", agent=agent.name)).status_code == 303
    assert (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).status_code == 200
    assert (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).status_code == 200
    assert [a for _w, a, _t in reversed(await audit_rows(client))] == ["suspend", "unsuspend"]


async def test_suspension_revokes_unused_stream_keys(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    platform = platform_of(client)
    assert await platform.streams.authorize_publish(key) is not None
    await platform.agents.set_suspended(agent.name, True)
    assert await platform.streams.authorize_publish(key) is None, "a held key does not publish once suspended"


async def test_moderator_role(client: httpx.AsyncClient, register: Any) -> None:
    agent, viewer = await register(), await register()
    await client.post("/api/v1/agent/stream/start", headers=agent.headers)
    said = await client.post(
        SEND, json={"message": "hello", "destination_user_id": agent.user_id}, headers=viewer.headers
    )
    csrf = await sign_in(client, await new_operator(client, "mo", "moderator"))
    agents_page = await client.get("/admin/agents")
    assert "Suspend</button>" not in agents_page.text and "needs an admin" in agents_page.text
    for what in ("suspend", "unsuspend", "verify", "shutdown"):
        refused = await act(client, csrf, what, agent=agent.name)
        assert refused.status_code == 403 and "Not for your role" in refused.text, what
    assert (await client.get("/api/v1/agent/verification-status", headers=agent.headers)).json()["verified"] is False
    assert (await act(client, csrf, "warn", agent=agent.name, reason="calm down")).status_code == 303
    assert (await act(client, csrf, "jail", chat_event_id=said.json()["chat_event_id"])).status_code == 303
    assert (await act(client, csrf, "delete", chat_event_id=said.json()["chat_event_id"])).status_code == 303
    assert [(w, a) for w, a, _t in reversed(await audit_rows(client))] == [
        ("mo", "warn"),
        ("mo", "jail"),
        ("mo", "delete_message"),
    ]


async def test_service_refusals_are_shown_on_the_page(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    csrf = await sign_in(client, await new_operator(client, "ada"))
    no_session = await act(client, csrf, "shutdown", agent=agent.name)
    assert no_session.status_code == 409 and "no open session" in no_session.text
    empty = await act(client, csrf, "warn", agent=agent.name, reason="   ")
    assert empty.status_code == 400 and "reason" in empty.text
    bad_id = await act(client, csrf, "jail", chat_event_id="abc")
    assert bad_id.status_code == 400
    assert (await act(client, csrf, "nothing")).status_code == 404
    assert await audit_rows(client) == []


async def test_create_operator_validation(client: httpx.AsyncClient) -> None:
    accounts = OperatorAccounts(platform_of(client).sessions)
    await accounts.create("ops", "moderator")
    for name, role, code in [
        ("ops", "admin", "operator_exists"),
        ("bad name", "admin", "invalid_name"),
        ("x", "root", "invalid_role"),
    ]:
        with pytest.raises(Exception) as raised:
            await accounts.create(name, role)
        assert getattr(raised.value, "code", None) == code


async def test_cli_actions_write_the_audit_log(
    client: httpx.AsyncClient, register: Any, database_url: str, tmp_path: Any
) -> None:
    agent = await register()
    runner = CliRunner()
    args = ["--database-url", database_url, "--data-dir", str(tmp_path / "cli")]

    def run(*words: str) -> Any:
        return runner.invoke(cli_app, ["admin", *words, *args])

    made = await asyncio.to_thread(run, "create-operator", "night", "--role", "moderator")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("rto_")
    assert (await asyncio.to_thread(run, "verify", agent.name)).exit_code == 0
    assert (await asyncio.to_thread(run, "warn", agent.name, "from the shell")).exit_code == 0
    assert [(w, a, t) for w, a, t in reversed(await audit_rows(client))] == [
        ("cli", "verify", agent.name),
        ("cli", "warn", agent.name),
    ]
    await sign_in(client, token)  # the printed token signs in


async def test_live_stream_row_shows_the_status_health(client: httpx.AsyncClient, register: Any) -> None:
    """Without a health report from the media layer (no media through a real ingest here) the column shows "—"."""
    agent = await register()
    platform = platform_of(client)
    key = (await client.post("/api/v1/agent/rtmp", headers=agent.headers)).json()["key"]
    target = await platform.streams.authorize_publish(key)  # the ingest's calls, as tests/api/test_streams does
    await platform.streams.media_flowing(target)
    await sign_in(client, await new_operator(client, "ada"))
    page = (await client.get("/admin/streams")).text
    assert f'id="stream-{agent.name}"' in page and '<dd data-field="health"><span class="muted">—</span>' in page
