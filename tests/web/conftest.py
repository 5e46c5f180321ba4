"""Browser tests: a real ``retake serve``, a real ffmpeg publisher, the Debian Chromium through Playwright.

One server, one live agent and one browser per module (each costs seconds to start); a fresh browser context
per test, so each test is a first-time visitor. Every console error and uncaught page error fails the test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import lavfi_publisher, registered, status, wait_until
from tests.support import FakeOEmbed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class LiveAgent:
    name: str
    user_id: str
    auth: dict[str, str]
    target: str  # rtmp URL with the key: a second publisher on it takes over / resumes the session
    publisher: subprocess.Popen[bytes]


@dataclass
class Visitor:
    """A browser context (a first-time visitor) and the errors its pages reported."""

    context: BrowserContext
    errors: list[str] = field(default_factory=list)

    def page(self) -> Page:
        page = self.context.new_page()
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        return page

    expected_404s: set[str] = field(default_factory=set)  # documents a test asks for knowing they are 404 pages
    expected_404_prefixes: set[str] = field(default_factory=set)  # e.g. HLS parts in flight when a stream ends
    # API paths a test makes refuse a request on purpose (a trade refused for slippage): Chromium logs the 4xx.
    expected_refusals: set[str] = field(default_factory=set)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        path = url.split("//", 1)[-1].partition("/")[2]
        if "status of 404" in message.text and (
            path in self.expected_404s or any(path.startswith(p) for p in self.expected_404_prefixes)
        ):
            return
        if "the server responded with a status of 4" in message.text and path in self.expected_refusals:
            return
        self.errors.append(f"console error: {message.text} ({url})")


@pytest.fixture(scope="module")
def oembed_module() -> Iterator[FakeOEmbed]:
    fake = FakeOEmbed()
    with fake.running():
        yield fake


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, oembed_module: FakeOEmbed) -> Iterator[Server]:
    if not (Path(__file__).parents[2] / "src/retake/server/web/static/dist/watch.js").is_file():
        pytest.fail("the web bundle is not built: run `make web` (npm ci, then the esbuild build)")
    server = start_server(tmp_path_factory.mktemp("web"), oembed_module.url)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def http(web_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web_server.base, timeout=15) as client:
        yield client


def go_live(http: httpx.Client, name: str, size: str = "640x360") -> LiveAgent:
    creds, auth = registered(http, name)
    assert "access_token" in creds, creds
    rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
    assert http.post("/api/v1/agent/stream/start", headers=auth).status_code == 200
    target = f"{rtmp['url']}/{rtmp['key']}"
    publisher = start_publisher(target, size)
    wait_until(lambda: status(http, auth)["is_live"], timeout=20)
    return LiveAgent(name, creds["userDbId"], auth, target, publisher)


def start_publisher(target: str, size: str = "640x360") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        lavfi_publisher(target, size=size),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def end_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def live_agent(http: httpx.Client) -> Iterator[LiveAgent]:
    agent = go_live(http, "WebStar")
    yield agent
    end_process(agent.publisher)


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}; run `make system-deps`")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def visitor_factory(browser: Browser, web_server: Server) -> Iterator[Callable[..., Visitor]]:
    visitors: list[Visitor] = []

    def make(viewport: dict[str, int] | None = None, **options: Any) -> Visitor:
        context = browser.new_context(base_url=web_server.base, viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(15_000)
        visitor = Visitor(context)
        visitors.append(visitor)
        return visitor

    yield make
    errors = [error for visitor in visitors for error in visitor.errors]
    for visitor in visitors:
        visitor.context.close()
    assert errors == [], "the pages reported errors:\n" + "\n".join(errors)


@pytest.fixture
def visitor(visitor_factory: Callable[..., Visitor]) -> Visitor:
    return visitor_factory()


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def wait_playing(page: Page, *, advance: float = 1.0, timeout_ms: int = 20_000) -> float:
    """Wait until the <video> plays: currentTime moves at least ``advance`` seconds past where it was."""
    start = float(page.evaluate("document.querySelector('video').currentTime"))
    page.wait_for_function(
        "([start, advance]) => { const v = document.querySelector('video'); return v.currentTime > start + advance }",
        arg=[start, advance],
        timeout=timeout_ms,
    )
    return float(page.evaluate("document.querySelector('video').currentTime"))
