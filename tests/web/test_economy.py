"""Issue 15 (items 1-3, 6) in Chromium against a real server and a real ffmpeg publisher: wallet sign-in through
the Wallet Standard with an injected test wallet, demo SOL, buy and sell from the watch page (the trade reaches a
second browser's chat within a second; balances match the API), tips with a message, a slippage refusal that
changes nothing, moderation in every viewer's chat, and screenshots at phone and desktop sizes.

The test wallet is an ed25519 key held here (PyNaCl). The init script registers it with the page the way a wallet
extension does (`wallet-standard:register-wallet`, and an answer to `wallet-standard:app-ready`); its
`solana:signMessage` hands the bytes to Python, which signs them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import base58
import httpx
import pytest
from nacl.signing import SigningKey
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import registered, status, wait_until
from tests.support import FakeOEmbed
from tests.web.conftest import PHONE, LiveAgent, Visitor, end_process, screenshot, start_publisher

pytestmark = pytest.mark.e2e

SOL = 1_000_000_000
DEMO = 10 * SOL  # what one "Get demo SOL" click credits (web/src/lib/account.ts)

WALLET_SCRIPT = """
(() => {
  const address = %(address)s;
  const publicKey = new Uint8Array(%(public_key)s);
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
    + '<rect width="24" height="24" rx="6" fill="#22c3a6"/></svg>';
  const icon = "data:image/svg+xml;base64," + btoa(svg);
  const chains = ["solana:mainnet", "solana:devnet"];
  const account = { address, publicKey, chains, features: ["solana:signMessage"], label: "Test", icon };
  let connected = false;
  const wallet = {
    version: "1.0.0",
    name: "Test Wallet",
    icon,
    chains,
    get accounts() { return connected ? [account] : []; },
    features: {
      "standard:connect": {
        version: "1.0.0",
        connect: async () => { connected = true; return { accounts: [account] }; },
      },
      "standard:disconnect": { version: "1.0.0", disconnect: async () => { connected = false; } },
      "standard:events": { version: "1.0.0", on: () => () => {} },
      "solana:signMessage": {
        version: "1.0.0",
        signMessage: async (...inputs) => Promise.all(inputs.map(async ({ message }) => ({
          signedMessage: message,
          signature: new Uint8Array(await window.__testWalletSign(Array.from(message))),
        }))),
      },
    },
  };
  const callback = ({ register }) => register(wallet);
  try { window.dispatchEvent(new CustomEvent("wallet-standard:register-wallet", { detail: callback })); } catch {}
  window.addEventListener("wallet-standard:app-ready", ({ detail }) => callback(detail));
})();
"""


@dataclass
class InjectedWallet:
    key: SigningKey
    address: str


def inject_wallet(visitor: Visitor) -> InjectedWallet:
    key = SigningKey.generate()
    public = bytes(key.verify_key)
    wallet = InjectedWallet(key, base58.b58encode(public).decode())
    visitor.context.expose_function("__testWalletSign", lambda data: list(key.sign(bytes(data)).signature))
    script = WALLET_SCRIPT % {"address": json.dumps(wallet.address), "public_key": json.dumps(list(public))}
    visitor.context.add_init_script(script)
    return wallet


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory, oembed_module: FakeOEmbed) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("economy"), oembed_module.url, RETAKE_ENABLE_AIRDROP="1")
    yield server
    stop_server(server)


@dataclass
class TokenAgent(LiveAgent):
    token: str = ""


@pytest.fixture(scope="module")
def token_agent(http: httpx.Client, oembed_module: FakeOEmbed) -> Iterator[TokenAgent]:
    """A verified agent (so stream/start launches its token), live with a real ffmpeg publisher."""
    creds, auth = registered(http, "CoinStar")
    message = http.post("/api/v1/agent/prepare-verify", headers=auth).json()["verification_message"]
    oembed_module.tweets["1500"] = message
    verified = http.post("/api/v1/agent/verify", json={"tweet_url": "https://x.com/coin/status/1500"}, headers=auth)
    assert verified.json() == {"verified": True}, verified.text
    rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
    start = http.post("/api/v1/agent/stream/start", headers=auth)
    assert start.status_code == 200, start.text
    token = start.json()["token"]["tokenAddress"]
    assert token
    target = f"{rtmp['url']}/{rtmp['key']}"
    publisher = start_publisher(target)
    wait_until(lambda: status(http, auth)["is_live"], timeout=20)
    agent = TokenAgent("CoinStar", creds["userDbId"], auth, target, publisher, token)
    yield agent
    end_process(publisher)


def viewer_token(page: Page) -> str:
    return str(page.evaluate("JSON.parse(localStorage.getItem('retake.viewer')).token"))


def api_wallet(http: httpx.Client, token: str) -> dict[str, Any]:
    response = http.get("/api/v1/wallet", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def holding(wallet: dict[str, Any], address: str) -> str:
    return next((t["amount"] for t in wallet["tokens"] if t["address"] == address), "0")


def chat_ready(page: Page) -> None:
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "connected")
    expect(page.locator("#chat-input")).to_be_enabled()


def sign_in(page: Page, wallet: InjectedWallet, *, demo: bool = True) -> None:
    """Header → the test wallet → signed in; then one "Get demo SOL" click."""
    page.click("#account-button")
    page.click('.wallet-option[data-wallet="Test Wallet"]')
    # Two round trips (nonce, signed verify) and a session write: a loaded CI machine once took over the 5 s
    # default (the dialog was open, the page still "guest").
    expect(page.locator("#account")).to_have_attribute("data-state", "wallet", timeout=15_000)
    expect(page.locator("#account-label")).to_have_text(f"{wallet.address[:4]}…{wallet.address[-4:]}")
    stored = page.evaluate("JSON.parse(localStorage.getItem('retake.viewer'))")
    assert stored["wallet_address"] == wallet.address
    if demo:
        page.click("#demo-sol")
        expect(page.locator("#account-balance")).to_have_text("10 SOL")
    page.keyboard.press("Escape")
    expect(page.locator("#account-menu")).to_be_hidden()


def expect_balances(page: Page, http: httpx.Client, token: str, address: str) -> dict[str, Any]:
    """The trade panel's balance line holds exactly what GET /wallet says."""
    wallet = api_wallet(http, token)
    balance = page.locator("#trade-balance")
    expect(balance).to_have_attribute("data-sol", wallet["sol"])
    expect(balance).to_have_attribute("data-atoms", holding(wallet, address))
    return wallet


def funded_user(http: httpx.Client, lamports: int) -> dict[str, str]:
    guest = http.post("/api/v1/auth/guest", json={}).json()
    headers = {"Authorization": f"Bearer {guest['token']}"}
    assert http.post("/api/v1/wallet/airdrop", json={"lamports": str(lamports)}, headers=headers).status_code == 200
    return headers


def test_sign_in_demo_sol_buy_and_sell(
    visitor_factory: Callable[..., Visitor], token_agent: TokenAgent, http: httpx.Client
) -> None:
    trader_visitor = visitor_factory()
    wallet = inject_wallet(trader_visitor)
    trader, watcher = trader_visitor.page(), visitor_factory().page()
    for page in (trader, watcher):
        page.goto(f"/{token_agent.name}")
        chat_ready(page)
    sign_in(trader, wallet)
    token = viewer_token(trader)
    me = http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["wallet_address"] == wallet.address
    assert api_wallet(http, token)["sol"] == str(DEMO)
    expect_balances(trader, http, token, token_agent.token)

    # buy 0.5 SOL: the quote shows what the API quotes, with the minimum at the default 1 % slippage
    trader.fill("#trade-amount", "0.5")
    quote = http.get(
        f"/api/v1/tokens/{token_agent.token}/quote", params={"side": "buy", "amount": str(SOL // 2)}
    ).json()
    expect(trader.locator("#trade-quote")).to_be_visible()
    expect(trader.locator("#quote-main-label")).to_have_text("You receive")
    expect(trader.locator("#quote-main")).to_contain_text("$LIVE")
    expect(trader.locator("#quote-fee")).to_contain_text("0.005 SOL")
    expect(trader.locator("#quote-limit-label")).to_have_text("Minimum received")
    expect(trader.locator("#trade-slippage-100")).to_be_checked()
    minimum = int(quote["amount_out"]) * 99 // 100
    shown = trader.inner_text("#quote-limit")
    assert shown.startswith(f"{minimum / 1e6 / 1e6:.2f}M"), shown  # atoms → tokens (6 decimals) → millions
    trader.click("#trade-review")
    expect(trader.locator("#trade-confirm-box")).to_be_visible()
    expect(trader.locator("#trade-confirm-text")).to_contain_text("slippage 1.0 %")
    began = time.monotonic()
    trader.click("#trade-confirm")
    watcher.locator('#chat-log .chat-trade[data-side="buy"]').wait_for(timeout=5000)
    took = time.monotonic() - began
    # Push, not a poll: the page's slowest poll that could show a trade is 5 s (watch.ts) and the market's is
    # 15 s. The bound is loose because the click also signs and posts the trade; 1.0 s failed once in CI at 1.06 s.
    assert took < 3.0, f"the trade took {took:.2f} s to reach the other viewer's chat"
    expect(watcher.locator("#chat-log .chat-trade").last).to_contain_text("bought")
    latest = http.get(f"/api/v1/trades/recent/{token_agent.token}/", params={"limit": 1}).json()["trades"][0]
    expect(watcher.locator(f'#trade-feed .feed-row[data-tx="{latest["tx_hash"]}"]')).to_have_attribute(
        "data-side", "buy"
    )  # in the token panel too
    expect(trader.locator("#trade-result")).to_contain_text("Bought")
    after_buy = expect_balances(trader, http, token, token_agent.token)
    assert int(after_buy["sol"]) == DEMO - SOL // 2 and int(holding(after_buy, token_agent.token)) >= minimum
    chart = http.get(f"/api/v1/tokens/{token_agent.token}/chart").json()
    expect(watcher.locator("#token-holders")).to_have_text(str(chart["holders"]))
    expect(watcher.locator("#chart-empty")).to_be_hidden()
    assert watcher.locator("#token-chart canvas").count() > 0

    # sell half of it, amount in tokens by the 50 % chip
    trader.check("#trade-side-sell")
    expect(trader.locator("#trade-review")).to_have_text("Review sell")
    trader.click("#trade-quick button:text('50 %')")
    expect(trader.locator("#quote-main")).to_contain_text("SOL")
    trader.click("#trade-review")
    trader.click("#trade-confirm")
    expect(watcher.locator('#chat-log .chat-trade[data-side="sell"]')).to_contain_text("sold")
    expect(trader.locator("#trade-result")).to_contain_text("Sold")
    after_sell = expect_balances(trader, http, token, token_agent.token)
    assert (
        int(holding(after_sell, token_agent.token))
        == int(holding(after_buy, token_agent.token)) - int(holding(after_buy, token_agent.token)) // 2
    )
    assert int(after_sell["sol"]) > int(after_buy["sol"])
    latest = http.get(f"/api/v1/trades/recent/{token_agent.token}/", params={"limit": 1}).json()["trades"][0]
    expect(watcher.locator(f'#trade-feed .feed-row[data-tx="{latest["tx_hash"]}"]')).to_have_attribute(
        "data-side", "sell"
    )
    stats = http.get(f"/api/v1/tokens/{token_agent.token}/stats").json()
    for page in (trader, watcher):
        expect(page.locator("#token-trades")).to_have_text(str(stats["trade_count"]["total"]))
    chats = http.get("/api/v1/chat/", params={"streamer_id": token_agent.user_id}).json()["chats"]
    assert [c["trade_data"]["type"] for c in chats if c["type"] == "trade"][:2] == ["sell", "buy"]
    screenshot(trader, "economy-desktop")

    # sign out: back to a guest, the trade panel asks for a wallet again
    trader.click("#account-button")
    trader.click("#sign-out")
    expect(trader.locator("#account")).to_have_attribute("data-state", "guest")
    expect(trader.locator("#trade-review")).to_have_text("Sign in to trade")


def test_tip_with_a_message(
    visitor_factory: Callable[..., Visitor], token_agent: TokenAgent, http: httpx.Client
) -> None:
    tipper_visitor = visitor_factory()
    wallet = inject_wallet(tipper_visitor)
    tipper, watcher = tipper_visitor.page(), visitor_factory().page()
    for page in (tipper, watcher):
        page.goto(f"/{token_agent.name}")
        chat_ready(page)
    sign_in(tipper, wallet)
    name = str(tipper.evaluate("JSON.parse(localStorage.getItem('retake.viewer')).username"))
    tipper.check("#trade-side-tip")
    expect(tipper.locator("#tip-form")).to_be_visible()
    expect(tipper.locator("#trade-form")).to_be_hidden()
    tipper.fill("#tip-amount", "0.25")
    note = "great stream, <b>keep going</b>!"
    tipper.fill("#tip-message", note)
    tipper.click("#tip-send")
    expect(tipper.locator("#tip-result")).to_contain_text("0.25 SOL")
    for page in (tipper, watcher):
        line = page.locator("#chat-log .chat-tip").last
        expect(line).to_contain_text(note)
        expect(line).to_contain_text("tipped 0.25 SOL")
        expect(line.locator(".chat-name")).to_have_text(name)
        expect(page.locator(f'#tippers-list .tipper:has-text("{name}")')).to_contain_text("0.25 SOL")
    tippers = http.get("/api/v1/chat/top-tippers", params={"streamer_id": token_agent.user_id}).json()["tippers"]
    assert any(t["username"] == name and t["total_amount"] == 0.25 for t in tippers)
    assert api_wallet(http, viewer_token(tipper))["sol"] == str(DEMO - SOL // 4)

    # a tip larger than the balance is refused in words, and nothing moves
    tipper.fill("#tip-amount", "1000")
    tipper.click("#tip-send")
    expect(tipper.locator("#tip-error")).to_contain_text("Not enough SOL")
    assert api_wallet(http, viewer_token(tipper))["sol"] == str(DEMO - SOL // 4)


def test_slippage_refusal_changes_nothing(
    visitor_factory: Callable[..., Visitor], token_agent: TokenAgent, http: httpx.Client
) -> None:
    visitor = visitor_factory()
    wallet = inject_wallet(visitor)
    page = visitor.page()
    page.goto(f"/{token_agent.name}")
    chat_ready(page)
    sign_in(page, wallet)
    token = viewer_token(page)
    page.fill("#trade-amount", "2")
    expect(page.locator("#trade-quote")).to_be_visible()
    page.click("#trade-review")
    expect(page.locator("#trade-confirm-box")).to_be_visible()
    before = expect_balances(page, http, token, token_agent.token)
    trades_before = http.get(f"/api/v1/tokens/{token_agent.token}/stats").json()["trade_count"]["total"]

    # someone else buys a lot meanwhile: the reviewed terms no longer hold within 1 %
    whale = funded_user(http, 20 * SOL)
    bought = http.post(
        f"/api/v1/tokens/{token_agent.token}/swap", json={"side": "buy", "amount": str(20 * SOL)}, headers=whale
    )
    assert bought.status_code == 200, bought.text
    expect(page.locator("#trade-confirm-note")).to_be_visible()  # the page saw the trade and says so
    visitor.expected_refusals.add(f"api/v1/tokens/{token_agent.token}/swap")  # the 409 this test provokes
    page.click("#trade-confirm")
    expect(page.locator("#trade-error")).to_contain_text("slippage")
    expect(page.locator("#trade-error")).to_contain_text("nothing was traded")
    after = expect_balances(page, http, token, token_agent.token)
    assert after["sol"] == before["sol"] and holding(after, token_agent.token) == holding(before, token_agent.token)
    stats = http.get(f"/api/v1/tokens/{token_agent.token}/stats").json()
    assert stats["trade_count"]["total"] == trades_before + 1  # only the whale's trade

    # not enough SOL: refused before review, in words
    page.fill("#trade-amount", "50")
    expect(page.locator("#trade-quote")).to_be_visible()
    page.click("#trade-review")
    expect(page.locator("#trade-error")).to_contain_text("Not enough SOL")
    expect(page.locator("#trade-confirm-box")).to_be_hidden()


def test_moderation_reaches_every_viewer(
    visitor_factory: Callable[..., Visitor], token_agent: TokenAgent, http: httpx.Client
) -> None:
    talker, watcher = visitor_factory().page(), visitor_factory().page()
    for page in (talker, watcher):
        page.goto(f"/{token_agent.name}")
        chat_ready(page)
    # a browser without a wallet extension is told what to install
    watcher.click("#account-button")
    expect(watcher.locator(".wallet-none")).to_contain_text("No Solana wallet found")
    expect(watcher.locator(".wallet-none a")).to_have_count(3)
    screenshot(watcher, "economy-no-wallet")
    watcher.keyboard.press("Escape")
    text = f"please delete me {time.monotonic_ns()}"
    talker.fill("#chat-input", text)
    talker.press("#chat-input", "Enter")
    expect(watcher.locator("#chat-log")).to_contain_text(text)
    chats = http.get("/api/v1/chat/", params={"streamer_id": token_agent.user_id}).json()["chats"]
    event = next(c for c in chats if c["text"] == text)
    assert http.delete(f"/api/v1/chat/{event['chat_event_id']}", headers=token_agent.auth).status_code == 200
    for page in (talker, watcher):
        expect(page.locator("#chat-log")).not_to_contain_text(text)

    session = http.get(f"/api/v1/sessions/active/{token_agent.user_id}/").json()["session_id"]
    jailed = http.post(
        f"/api/v1/sessions/{session}/jail", json={"user_id": event["sender_user_id"]}, headers=token_agent.auth
    )
    assert jailed.status_code == 200, jailed.text
    for page in (talker, watcher):
        expect(page.locator("#chat-log .chat-notice").last).to_contain_text("was muted by the streamer")
    expect(talker.locator("#chat-input")).to_be_disabled()
    expect(talker.locator("#chat-input")).to_have_attribute("placeholder", "You were muted by the streamer")
    expect(watcher.locator("#chat-input")).to_be_enabled()
    unjailed = http.post(
        f"/api/v1/sessions/{session}/unjail", json={"user_id": event["sender_user_id"]}, headers=token_agent.auth
    )
    assert unjailed.status_code == 200, unjailed.text
    expect(talker.locator("#chat-input")).to_be_enabled()


def test_keyboard_and_phone_layout(
    visitor_factory: Callable[..., Visitor], token_agent: TokenAgent, http: httpx.Client
) -> None:
    visitor = visitor_factory(viewport=PHONE, is_mobile=True, has_touch=True)
    inject_wallet(visitor)
    page = visitor.page()
    page.goto(f"/{token_agent.name}")
    chat_ready(page)
    # the account menu works from the keyboard: focus moves into it, Escape closes it and returns focus
    page.focus("#account-button")
    page.keyboard.press("Enter")
    expect(page.locator("#account-menu")).to_be_visible()
    expect(page.locator('.wallet-option[data-wallet="Test Wallet"]')).to_be_focused()
    screenshot(page, "economy-phone-menu")
    page.keyboard.press("Enter")
    expect(page.locator("#account")).to_have_attribute("data-state", "wallet")
    page.locator("#demo-sol").press("Enter")
    expect(page.locator("#account-balance")).to_have_text("10 SOL")
    page.keyboard.press("Escape")
    expect(page.locator("#account-menu")).to_be_hidden()
    expect(page.locator("#account-button")).to_be_focused()
    # the trade form by keyboard: amount, then Enter reviews
    page.locator("#trade-panel").scroll_into_view_if_needed()
    page.fill("#trade-amount", "0.1")
    expect(page.locator("#trade-quote")).to_be_visible()
    page.press("#trade-amount", "Enter")
    expect(page.locator("#trade-confirm")).to_be_focused()
    screenshot(page, "economy-phone-confirm")
    page.keyboard.press("Enter")
    expect(page.locator("#trade-result")).to_contain_text("Bought")
    expect(page.locator("#trade-review")).to_be_enabled()  # ready for the next trade
    assert api_wallet(http, viewer_token(page))["sol"] == str(DEMO - SOL // 10)
    screenshot(page, "economy-phone", full_page=True)
    wide = visitor_factory().page()
    wide.goto(f"/{token_agent.name}")
    chat_ready(wide)
    wide.locator("#token-panel").scroll_into_view_if_needed()
    screenshot(wide, "economy-desktop-guest")
    home = visitor_factory(viewport=PHONE, is_mobile=True, has_touch=True).page()
    home.goto("/")
    expect(home.locator("#account-button")).to_be_enabled()
    screenshot(home, "economy-home-phone")
