"""Issue 7 against a real server, a real ffmpeg publisher and Chromium: home, watch page, chat, follow,
recovery from a publisher reconnect, offline state with recordings, the recording player, 404s."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server
from tests.e2e.media_support import status, wait_until
from tests.web.conftest import (
    PHONE,
    LiveAgent,
    Visitor,
    end_process,
    go_live,
    screenshot,
    start_publisher,
    wait_playing,
)

pytestmark = pytest.mark.e2e


def chat_ready(page: Page) -> None:
    """Socket.IO connected and the guest identity made: the chat input is enabled."""
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#chat-input")).to_be_enabled()


def chat_texts(page: Page) -> list[str]:
    return [str(t) for t in page.eval_on_selector_all("#chat-log .chat-text", "nodes => nodes.map(n => n.textContent)")]


def test_home_lists_the_live_agent(visitor_factory: Callable[..., Visitor], live_agent: LiveAgent) -> None:
    page = visitor_factory().page()
    page.goto("/")
    card = page.locator(f'.live-card[data-user="{live_agent.user_id}"]')
    expect(card).to_be_visible()
    expect(card.locator(".card-name")).to_have_text(live_agent.name)
    expect(card.locator(".ticker")).to_have_text("$LIVE")
    expect(card.locator(".viewer-pill")).to_contain_text("viewer")
    expect(card.locator(".thumb-corner.right")).to_have_text(re.compile(r"^\d+:\d\d"))  # uptime
    expect(page.locator("#newest-list")).to_contain_text(live_agent.name)
    assert card.get_attribute("href") == f"/{live_agent.name}"
    # the header search finds the agent as you type
    page.fill("#search-input", live_agent.name[:4].lower())
    expect(page.locator("#search-results a").first).to_have_attribute("href", f"/{live_agent.name}")
    page.keyboard.press("Escape")
    screenshot(page, "home")
    mobile = visitor_factory(viewport=PHONE, is_mobile=True, has_touch=True).page()
    mobile.goto("/")
    expect(mobile.locator(f'.live-card[data-user="{live_agent.user_id}"]')).to_be_visible()
    screenshot(mobile, "home-phone")


def test_watch_page_plays_the_stream(
    visitor_factory: Callable[..., Visitor], live_agent: LiveAgent, http: httpx.Client
) -> None:
    page = visitor_factory().page()
    response = page.goto(f"/{live_agent.name.lower()}")  # names are case-insensitive
    assert response is not None and response.status == 200
    expect(page.locator("h1")).to_have_text(live_agent.name)
    wait_playing(page, advance=1.5)
    assert page.eval_on_selector("video", "v => v.dataset.mode") == "flv"  # mpegts.js over the WebSocket
    behind = page.eval_on_selector("video", "v => v.buffered.end(v.buffered.length - 1) - v.currentTime")
    assert behind < 1.5, f"the player holds {behind:.2f} s of buffer: not low latency"
    assert page.eval_on_selector("video", "v => v.muted") is True  # muted autoplay, with an unmute button
    expect(page.locator("#unmute")).to_be_visible()
    page.click("#unmute")
    expect(page.locator("#unmute")).to_be_hidden()
    assert page.eval_on_selector("video", "v => v.muted") is False
    # the page counts as a viewer, and shows it
    wait_until(lambda: status(http, live_agent.auth)["viewers"] >= 1, timeout=10)
    expect(page.locator("#viewer-count")).to_have_text(re.compile(r"^[1-9]\d* viewers?$"), timeout=10_000)
    expect(page.locator("#uptime")).to_have_text(re.compile(r"^\d+:\d\d"))
    expect(page.locator("#live-badge")).to_be_visible()
    screenshot(page, "watch")

    phone = visitor_factory(viewport=PHONE, is_mobile=True, has_touch=True).page()
    phone.goto(f"/{live_agent.name}")
    wait_playing(phone, advance=1.0)
    chat_ready(phone)
    screenshot(phone, "watch-phone", full_page=True)


def test_watch_page_hls_fallback_plays(visitor: Visitor, live_agent: LiveAgent) -> None:
    page = visitor.page()
    page.goto(f"/{live_agent.name}?player=hls")
    wait_playing(page, advance=1.0, timeout_ms=30_000)
    assert page.eval_on_selector("video", "v => v.dataset.mode") == "hls"


def test_chat_between_pages_rest_and_agent(
    visitor_factory: Callable[..., Visitor], live_agent: LiveAgent, http: httpx.Client
) -> None:
    alice, bob = visitor_factory().page(), visitor_factory().page()
    for page in (alice, bob):
        page.goto(f"/{live_agent.name}")
        chat_ready(page)

    # a viewer picks a name, then chats; the text carries markup that must stay text
    alice.click("#chat-name")
    alice.fill("#name-input", "AliceViewer")
    alice.press("#name-input", "Enter")
    expect(alice.locator("#chat-name")).to_contain_text("AliceViewer")
    hostile = "hi <script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
    alice.fill("#chat-input", hostile)
    alice.press("#chat-input", "Enter")
    expect(alice.locator("#chat-input")).to_have_value("")

    def stored() -> list[dict[str, str]]:
        page = http.get("/api/v1/chat/", params={"streamer_id": live_agent.user_id}).json()
        return [c for c in page["chats"] if c["text"] == hostile]

    wait_until(lambda: bool(stored()), timeout=5)
    assert stored()[0]["sender_username"] == "AliceViewer"
    expect(bob.locator("#chat-log")).to_contain_text(hostile)  # reached the other browser as text
    for page in (alice, bob):
        assert hostile in chat_texts(page)
        assert page.locator("#chat-log script, #chat-log img").count() == 0
        assert page.evaluate("window.__pwned") is None

    # an agent's REST message shows up in the page within a second
    line = f"agent here <b>{time.monotonic_ns()}</b>"
    began = time.monotonic()
    sent = http.post(
        "/api/v1/agent/stream/chat/send",
        headers=live_agent.auth,
        json={"message": line, "destination_user_id": live_agent.user_id},
    )
    assert sent.status_code == 200, sent.text
    bob.wait_for_function("text => document.querySelector('#chat-log').textContent.includes(text)", arg=line)
    took = time.monotonic() - began
    assert took < 1.0, f"the agent's message took {took:.2f} s to appear"
    expect(bob.locator("#chat-log .from-streamer").last).to_contain_text(line)

    # the streamer pins it: every open page shows the pinned message
    pinned = http.post(f"/api/v1/chat/{sent.json()['chat_event_id']}/pin", headers=live_agent.auth)
    assert pinned.status_code == 200, pinned.text
    for page in (alice, bob):
        expect(page.locator("#chat-pinned")).to_contain_text(line)
    screenshot(bob, "watch-chat")


def test_follow_survives_a_reload(visitor: Visitor, live_agent: LiveAgent, http: httpx.Client) -> None:
    page = visitor.page()
    page.goto(f"/{live_agent.name}")
    follow = page.locator("#follow")
    expect(follow).to_be_enabled()
    before = int(page.inner_text("#followers"))
    follow.click()
    expect(page.locator("#follow-label")).to_have_text("Following")
    expect(page.locator("#followers")).to_have_text(str(before + 1))
    stored = page.evaluate("JSON.parse(localStorage.getItem('retake.viewer'))")
    assert stored["token"] and stored["username"].startswith("guest-")
    page.reload()
    expect(page.locator("#follow-label")).to_have_text("Following")  # same guest, kept in localStorage
    meta = http.get(f"/api/v1/users/metadata/{live_agent.user_id}").json()
    assert meta["followers_count"] == before + 1


def test_player_recovers_from_a_publisher_reconnect(
    visitor: Visitor, live_agent: LiveAgent, http: httpx.Client
) -> None:
    page = visitor.page()
    page.goto(f"/{live_agent.name}")
    wait_playing(page, advance=1.0)
    page.evaluate("window.__sameDocument = true")
    session = status(http, live_agent.auth)["session_id"]
    end_process(live_agent.publisher)  # the encoder drops; the session stays open for the grace period
    time.sleep(1.5)
    live_agent.publisher = start_publisher(live_agent.target)  # and comes back with the same key
    wait_until(lambda: status(http, live_agent.auth)["is_live"], timeout=20)
    assert status(http, live_agent.auth)["session_id"] == session
    wait_playing(page, advance=2.0, timeout_ms=30_000)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    expect(page.locator("#player-offline")).to_be_hidden()


def test_offline_page_recordings_and_playback(visitor: Visitor, http: httpx.Client) -> None:
    agent = go_live(http, "OfflineOlly")
    page, hls_page = visitor.page(), visitor.page()
    page.goto(f"/{agent.name}")
    hls_page.goto(f"/{agent.name}?player=hls")
    wait_playing(page, advance=2.5)
    wait_playing(hls_page, advance=0.5, timeout_ms=30_000)
    # An LL-HLS player has a preload-hinted part in flight when the stream ends; the server answers it 404.
    visitor.expected_404_prefixes.add(f"live/{agent.user_id}/")
    stopped = http.post("/api/v1/agent/stream/stop", headers=agent.auth)
    assert stopped.status_code == 200, stopped.text
    end_process(agent.publisher)
    # open pages turn into the offline state by themselves: last picture, "offline", recordings
    expect(hls_page.locator("#player-offline")).to_be_visible(timeout=15_000)
    hls_page.close()
    expect(page.locator("#player-offline")).to_be_visible(timeout=15_000)
    expect(page.locator("#offline-badge")).to_be_visible()
    expect(page.locator("#player-offline")).to_contain_text(f"{agent.name} is offline")
    expect(page.locator("#recordings-list .rec-card")).to_have_count(1, timeout=10_000)
    screenshot(page, "offline")
    page.locator("#recordings-heading").scroll_into_view_if_needed()
    screenshot(page, "offline-recordings")

    # a new visitor gets the same offline page from the server
    fresh = visitor.page()
    fresh.goto(f"/{agent.name}")
    expect(fresh.locator("#player-offline")).to_be_visible()
    expect(fresh.locator("#offline-image")).to_be_visible()
    expect(fresh.locator("#stream-title")).to_contain_text("Last live")

    fresh.click("#recordings-list .rec-card")
    expect(fresh).to_have_url(re.compile(rf"/{agent.name}/recordings/[0-9a-f-]{{36}}$"))
    wait_playing(fresh, advance=1.0)  # hls.js on the VOD recording
    screenshot(fresh, "recording")

    listing = visitor.page()
    listing.goto(f"/{agent.name}/recordings")
    expect(listing.locator(".rec-card")).to_have_count(1)


def test_unknown_names_and_api_routes(visitor: Visitor, web_server: Server) -> None:
    page = visitor.page()
    paths = ("/NoSuchAgent", "/NoSuchAgent/recordings", "/a")
    visitor.expected_404s.update(path.lstrip("/") for path in paths)  # the 404 page's own status, nothing else
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        expect(page.locator("h1")).to_have_text("Nothing to watch here")
    screenshot(page, "not-found")
    # pages never shadow the API or the site's own paths
    assert httpx.get(f"{web_server.base}/NoSuchAgent").json()["code"] == "not_found"
    assert httpx.get(f"{web_server.base}/api/v1/users/live/").status_code == 200
    assert httpx.get(f"{web_server.base}/health").json()["status"] == "ok"
    assert httpx.get(f"{web_server.base}/skill.md").headers["content-type"].startswith("text/markdown")
    assert httpx.get(f"{web_server.base}/docs").status_code == 200
