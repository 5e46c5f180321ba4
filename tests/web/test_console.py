"""The operator console in Debian Chromium against a real ``retake serve`` and a real ffmpeg publisher.

An admin signs in with the token ``retake admin create-operator`` printed, sees the live stream, warns the agent
(the warning reaches its stream status), shuts the stream down (ffmpeg is disconnected and exits), suspends the
agent (its /agent/rtmp is refused) and finds all of it in the audit log; a moderator cannot suspend. Every page
is used with the keyboard where a person would type, screenshotted at desktop and phone size, and any console
error (a CSP violation included) fails the test (tests/web/conftest.py).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import RETAKE, Server
from tests.e2e.media_support import registered, status, wait_until
from tests.web.conftest import DESKTOP, PHONE, Visitor, end_process, go_live, screenshot


def create_operator(server: Server, name: str, role: str) -> str:
    done = subprocess.run(
        [*RETAKE, "admin", "create-operator", name, "--role", role],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("rto_"), done.stdout
    return token


def sign_in(page: Page, token: str) -> None:
    page.goto("/admin")
    expect(page).to_have_url("/admin/login")
    page.keyboard.type(token)  # the token field has the focus (autofocus): paste and Enter, no mouse
    page.keyboard.press("Enter")
    expect(page).to_have_url("/admin/streams")


def wait_for_preview(page: Page, name: str, timeout: float = 30) -> None:
    """Previews come from the stream's keyframes every few seconds: reload until the first one is there."""
    deadline = time.monotonic() + timeout
    while page.locator(f"#stream-{name} .console-preview img").count() == 0:
        assert time.monotonic() < deadline, "no preview image appeared"
        time.sleep(1)
        page.reload()
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('#stream-{name} .console-preview img'); "
        "return i && i.complete && i.naturalWidth > 0 }"
    )


def test_operator_console(web_server: Server, http: httpx.Client, visitor_factory: Callable[..., Visitor]) -> None:
    agent = go_live(http, "ConsoleStar")
    try:
        _viewer, viewer_auth = registered(http, "ChattyViewer")
        said = http.post(
            "/api/v1/agent/stream/chat/send",
            json={"message": "hello from the chat", "destination_user_id": agent.user_id},
            headers=viewer_auth,
        )
        assert said.status_code == 200, said.text
        with ThreadPoolExecutor(2) as pool:  # two CLI processes at once: each is mostly its imports
            admin_call = pool.submit(create_operator, web_server, "boss", "admin")
            moderator_call = pool.submit(create_operator, web_server, "mod", "moderator")
            admin_token, moderator_token = admin_call.result(), moderator_call.result()

        admin = visitor_factory()
        page = admin.page()
        sign_in(page, admin_token)
        row = page.locator("#stream-ConsoleStar")
        expect(row).to_be_visible()
        expect(row.locator("[data-field=node]")).to_have_text(web_server.base)
        wait_for_preview(page, "ConsoleStar")
        # The media layer's health of the stream (media/health.py), as the agent's own status shows it.
        health = row.locator("[data-field=health]")
        expect(health).to_contain_text("video codec")
        expect(health).to_contain_text("h264")
        screenshot(page, "console-streams-desktop")
        page.set_viewport_size(PHONE)
        screenshot(page, "console-streams-live-phone", full_page=True)
        page.set_viewport_size(DESKTOP)

        # Warn: type the reason and press Enter in the field.
        row.get_by_placeholder("Reason for the warning").fill("please keep the stream on topic")
        row.get_by_placeholder("Reason for the warning").press("Enter")
        expect(page.get_by_role("status")).to_contain_text("ConsoleStar was warned")
        reasons = [w["reason"] for w in status(http, agent.auth)["warnings"]]
        assert "please keep the stream on topic" in reasons

        page.goto("/admin/chat")
        expect(page.locator(".console-message").first).to_contain_text("Operator warning")  # the system notice
        expect(page.get_by_text("hello from the chat")).to_be_visible()
        screenshot(page, "console-chat-desktop")

        # Shut down: the node closes the publisher; ffmpeg loses its connection and exits.
        page.goto("/admin/streams")
        page.locator("#stream-ConsoleStar").get_by_role("button", name="Shut down").click()
        expect(page.get_by_role("status")).to_contain_text("Shutdown of ConsoleStar's stream sent")
        wait_until(lambda: agent.publisher.poll() is not None, timeout=20)
        wait_until(lambda: not status(http, agent.auth)["is_live"], timeout=10)
        page.reload()
        expect(page.get_by_text("Nobody is live right now")).to_be_visible()

        # Suspend: search, then the row's button, with the keyboard.
        page.goto("/admin/agents")
        page.get_by_label("Search agents").fill("Console")
        page.get_by_label("Search agents").press("Enter")
        suspend = page.locator("#agent-ConsoleStar").get_by_role("button", name="Suspend")
        suspend.focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("ConsoleStar is suspended")
        expect(page.locator("#agent-ConsoleStar")).to_contain_text("suspended")
        screenshot(page, "console-agents-desktop")
        refused = http.post("/api/v1/agent/rtmp", headers=agent.auth)
        assert refused.status_code == 403 and refused.json()["code"] == "suspended", refused.text

        page.goto("/admin/audit")
        rows = page.locator(".audit-row")
        assert [rows.nth(i).get_attribute("data-action") for i in range(3)] == ["suspend", "shutdown", "warn"]
        for i in range(3):
            expect(rows.nth(i)).to_contain_text("boss")
            expect(rows.nth(i)).to_contain_text("ConsoleStar")
        expect(rows.nth(2)).to_contain_text("please keep the stream on topic")
        screenshot(page, "console-audit-desktop", full_page=True)

        moderator_cannot_suspend(visitor_factory, moderator_token)
    finally:
        end_process(agent.publisher)


def moderator_cannot_suspend(visitor_factory: Callable[..., Visitor], token: str) -> None:
    moderator = visitor_factory(viewport=PHONE, is_mobile=True, has_touch=True)
    page = moderator.page()
    page.goto("/admin/login")
    screenshot(page, "console-login-phone")
    sign_in(page, token)
    screenshot(page, "console-streams-phone")
    page.goto("/admin/agents?q=ConsoleStar")
    expect(page.get_by_text("Verifying and suspending agents needs an admin")).to_be_visible()
    expect(page.locator("#agent-ConsoleStar").get_by_role("button", name="Unsuspend")).to_have_count(0)
    screenshot(page, "console-agents-phone")
    # The button is not there; a forged form with the moderator's own session and form token is refused too.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    forged = page.request.post(
        "/admin/act/unsuspend",
        form={"csrf": csrf, "agent": "ConsoleStar"},
        headers={"Origin": page.url.split("/admin")[0]},
    )
    assert forged.status == 403 and "Not for your role" in forged.text()
    page.goto("/admin/audit")
    expect(page.locator(".audit-row").first).to_have_attribute("data-action", "suspend")
    screenshot(page, "console-audit-phone", full_page=True)
    page.goto("/admin/chat")
    screenshot(page, "console-chat-phone")
