"""Issue 16, raids, whole system: a real ``retake serve``, two agents live with real ffmpeg publishers, the CLI
(``retake agent raid``) and the Debian Chromium.

A viewer on the raider's watch page sees the banner and is taken to the target's page within 15 s (the default
10 s delay); a second viewer who clicks "Stay" stays; both chats show the raid's lines.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from typer.testing import CliRunner

from retake.cli import app
from tests.e2e.conftest import Server
from tests.e2e.media_support import status, wait_until
from tests.web.conftest import PHONE, LiveAgent, Visitor, end_process, go_live, screenshot, wait_playing

pytestmark = pytest.mark.timeout(180)
DONE_WITHIN = 15.0  # the "Done when"
SMALL = "320x180"  # two publishers and two players share a small machine


@pytest.fixture(scope="module")
def two_live(http: httpx.Client) -> Iterator[tuple[LiveAgent, LiveAgent]]:
    host = go_live(http, "RaidHost", size=SMALL)
    try:
        guest_star = go_live(http, "RaidGuest", size=SMALL)
    except BaseException:
        end_process(host.publisher)
        raise
    yield host, guest_star
    end_process(host.publisher)
    end_process(guest_star.publisher)


def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"RETAKE_CREDENTIALS": "/nonexistent", **env})
    return result.exit_code, result.stdout, result.stderr


def system_lines(page: object) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#chat-log .chat-system .chat-text", "nodes => nodes.map(n => n.textContent)"
    )
    return texts


def test_a_raid_moves_the_viewers_page_and_both_chats_show_it(
    web_server: Server,
    http: httpx.Client,
    two_live: tuple[LiveAgent, LiveAgent],
    visitor_factory: Callable[..., Visitor],
) -> None:
    host, target = two_live
    base = web_server.base
    watcher = visitor_factory().page()
    watcher.goto("/RaidHost")
    stayer = visitor_factory(viewport=PHONE).page()  # the banner fits a phone too
    stayer.goto("/RaidHost")
    for page in (watcher, stayer):
        page.wait_for_selector('.chat[data-realtime="connected"]')
        wait_playing(page, advance=0.5)
    wait_until(lambda: status(http, host.auth)["viewers"] >= 1, timeout=10)

    token = host.auth["Authorization"].removeprefix("Bearer ")
    env = {"RETAKE_ACCESS_TOKEN": token, "RETAKE_BASE_URL": base}
    started = time.monotonic()
    code, out, err = cli(env, "agent", "raid", "raidguest", "--json")  # any case
    assert code == 0, out + err
    raid = json.loads(out)
    assert raid["target"] == {
        "userDbId": target.user_id,
        "agent_name": "RaidGuest",
        "url": f"{base}/RaidGuest",
    }
    assert raid["seconds"] == 10 and raid["viewers"] >= 1

    # -- the banner, on both pages; one viewer stays
    for page in (watcher, stayer):
        page.wait_for_selector("#raid-banner:not([hidden])")
        assert page.text_content("#raid-title") == "Raiding RaidGuest"
        assert re.fullmatch(r"Taking you there in \d+ s", page.text_content("#raid-countdown") or "")
    watcher.wait_for_timeout(400)  # the banner's entrance animation
    screenshot(watcher, "raid-banner")
    screenshot(stayer, "raid-banner-phone")
    stayer.click("#raid-stay")
    assert stayer.is_hidden("#raid-banner")

    # -- the watcher is taken to the target's page, marked with the raid, within 15 s of the raid
    destination = re.compile(re.escape(f"{base}/RaidGuest?raid={raid['raid_id']}") + "$")
    assert watcher.url.endswith("/RaidHost")  # not before the countdown ends
    watcher.wait_for_url(destination, timeout=DONE_WITHIN * 1000, wait_until="commit")  # the move itself
    moved_after = time.monotonic() - started
    assert 9.0 <= moved_after <= DONE_WITHIN, moved_after
    count = raid["viewers"]
    noun = "viewer" if count == 1 else "viewers"
    watcher.wait_for_function(
        "text => [...document.querySelectorAll('#chat-log .chat-system .chat-text')].some(n => n.textContent === text)",
        arg=f"RaidHost is raiding with {count} {noun}!",
    )
    wait_playing(watcher, advance=0.5)  # the target's stream plays there
    assert watcher.get_attribute("#raid-banner", "data-state") == "arrived"  # a welcome, without the buttons
    assert watcher.text_content("#raid-title") == "Welcome, raiders!" and watcher.is_hidden("#raid-stay")
    screenshot(watcher, "raid-welcome")

    # -- the one who stayed is still on the raider's page, whose chat shows the raid
    time.sleep(max(0.0, started + raid["seconds"] + 1.5 - time.monotonic()))
    assert stayer.url.endswith("/RaidHost")
    assert f"Raiding RaidGuest with {count} {noun}" in system_lines(stayer)

    # -- the CLI's plain answer and its refusals (one raid a minute by default)
    code, out, err = cli(env, "agent", "raid", "RaidGuest")
    assert code == 1 and "429 rate_limited" in err, out + err
    guest_env = {**env, "RETAKE_ACCESS_TOKEN": target.auth["Authorization"].removeprefix("Bearer ")}
    code, out, err = cli(guest_env, "agent", "raid", "NobodyHere")
    assert code == 1 and "404 target_not_found" in err, out + err
    code, out, err = cli(guest_env, "agent", "raid", host.user_id)  # by userDbId
    assert code == 0, out + err
    assert out.splitlines()[0].startswith("raiding RaidHost with ") and "RaidHost in 10 s" in out
