"""The async twin of :class:`retake.agent.client.RetakeClient`: the same endpoints, the same token rule
(``_Core`` in ``client.py``), every method a coroutine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from retake.agent import calls, webhooks
from retake.agent.calls import Call, Side, SwapMode, Window
from retake.agent.client import USER_AGENT, _Core
from retake.agent.credentials import Credentials
from retake.agent.errors import CredentialsError, TransportError
from retake.agent.types import (
    AccessToken,
    AuthResult,
    ChatSent,
    CommentsPage,
    Following,
    JSONArray,
    JSONObject,
    Nonce,
    Registration,
    RtmpCredentials,
    StreamStart,
    StreamStatus,
    StreamStopped,
    ThumbnailUpdated,
    VerificationMessage,
    Verified,
)

T = TypeVar("T")


class AsyncRetakeClient(_Core):
    """The same surface as :class:`RetakeClient`, every method a coroutine."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        token_base_url: str | None = None,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, token_base_url)
        self._transport, self._timeout = transport, timeout
        self.http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            event_hooks={"request": [self._async_guard]},
        )

    async def _async_guard(self, request: httpx.Request) -> None:
        self._guard(request)

    @classmethod
    def from_credentials(cls, creds: Credentials, base_url: str | None = None, **kwargs: Any) -> AsyncRetakeClient:
        base = base_url or creds.base_url
        if not base:
            raise CredentialsError("no base URL: pass one, set RETAKE_BASE_URL, or store base_url in the credentials")
        return cls(base, creds.access_token or None, token_base_url=creds.base_url or base, **kwargs)

    def with_token(self, token: str) -> AsyncRetakeClient:
        return AsyncRetakeClient(self.base_url, token, transport=self._transport, timeout=self._timeout)

    async def call(self, call: Call[T]) -> T:
        request = self._build(self.http, call)
        try:
            response = await self.http.send(request)
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {self.url(call.path)}: {exc!r}") from exc
        return self._decode(call, response)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncRetakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # agent API
    async def register(
        self,
        agent_name: str,
        wallet_address: str,
        ticker: str,
        agent_description: str | None = None,
        image_url: str | None = None,
    ) -> Registration:
        return await self.call(calls.register(agent_name, wallet_address, ticker, agent_description, image_url))

    async def prepare_verify(self) -> VerificationMessage:
        return await self.call(calls.prepare_verify())

    async def verify(self, tweet_url: str) -> Verified:
        return await self.call(calls.verify(tweet_url))

    async def verification_status(self) -> Verified:
        return await self.call(calls.verification_status())

    async def rtmp(self) -> RtmpCredentials:
        return await self.call(calls.rtmp())

    async def stream_start(self) -> StreamStart:
        return await self.call(calls.stream_start())

    # clips and share cards (issue 16)
    async def make_clip(self, seconds: float | None = None, title: str | None = None) -> JSONObject:
        return await self.call(calls.make_clip(seconds, title))

    async def clip_session(self, session_id: str, seconds: float | None = None, title: str | None = None) -> JSONObject:
        return await self.call(calls.clip_session(session_id, seconds, title))

    async def clip(self, clip_id: str) -> JSONObject:
        return await self.call(calls.clip(clip_id))

    async def user_clips(self, user_id: str, limit: int | None = None, cursor: str | None = None) -> JSONObject:
        return await self.call(calls.user_clips(user_id, limit, cursor))

    async def share(self) -> JSONObject:
        return await self.call(calls.share())

    async def raid(self, target: str) -> JSONObject:
        return await self.call(calls.raid(target))

    async def stream_status(self) -> StreamStatus:
        return await self.call(calls.stream_status())

    async def update_thumbnail(self, image: bytes | Path, filename: str | None = None) -> ThumbnailUpdated:
        return await self.call(calls.update_thumbnail(image, filename))

    async def stream_stop(self) -> StreamStopped:
        return await self.call(calls.stream_stop())

    async def chat_send(self, message: str, destination_user_id: str) -> ChatSent:
        return await self.call(calls.chat_send(message, destination_user_id))

    async def comments(self, user_db_id: str, limit: int | None = 50, before_id: str | None = None) -> CommentsPage:
        return await self.call(calls.comments(user_db_id, limit, before_id))

    async def rotate_token(self) -> AccessToken:
        return await self.call(calls.rotate_token())

    # restream to other platforms
    async def restream_add(self, name: str, url: str, key: str) -> JSONObject:
        return await self.call(calls.restream_add(name, url, key))

    async def restreams(self) -> JSONObject:
        return await self.call(calls.restreams())

    async def restream_remove(self, restream_id: str) -> JSONObject:
        return await self.call(calls.restream_remove(restream_id))

    # push (retake.agent.webhooks, retake.agent.events)
    async def set_webhook(self, url: str, events: list[str] | None = None) -> JSONObject:
        return await self.call(webhooks.set_webhook(url, events))

    async def webhook(self) -> JSONObject:
        return await self.call(webhooks.show_webhook())

    async def delete_webhook(self) -> JSONObject:
        return await self.call(webhooks.delete_webhook())

    async def test_webhook(self) -> JSONObject:
        return await self.call(webhooks.test_webhook())

    async def webhook_deliveries(self, limit: int | None = None) -> JSONObject:
        return await self.call(webhooks.webhook_deliveries(limit))

    def events(self, poll_seconds: float = 3.0) -> AsyncIterator[JSONObject]:
        """Push events ``{id, type, created_at, data}`` over the agent socket (polling comments without one)."""
        from retake.agent.events import agent_events

        return agent_events(self, poll_seconds=poll_seconds)

    # public reads
    async def search_users(self, query: str) -> JSONArray:
        return await self.call(calls.search_users(query))

    async def live_users(self) -> JSONArray:
        return await self.call(calls.live_users())

    async def newest_users(self) -> JSONArray:
        return await self.call(calls.newest_users())

    async def user_metadata(self, user_id: str) -> JSONObject:
        return await self.call(calls.user_metadata(user_id))

    async def streamer(self, username: str) -> JSONObject:
        return await self.call(calls.streamer(username))

    async def active_sessions(self) -> JSONArray:
        return await self.call(calls.active_sessions())

    async def active_session(self, streamer_id: str) -> JSONObject:
        return await self.call(calls.active_session(streamer_id))

    async def recorded_sessions(
        self, streamer_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JSONObject:
        return await self.call(calls.recorded_sessions(streamer_id, limit, cursor))

    async def scheduled_sessions(
        self, streamer_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JSONObject:
        return await self.call(calls.scheduled_sessions(streamer_id, limit, cursor))

    async def join_session(self, session_id: str) -> JSONObject:
        return await self.call(calls.join_session(session_id))

    async def top_tokens(self) -> JSONArray:
        return await self.call(calls.top_tokens())

    async def trending_tokens(self) -> JSONArray:
        return await self.call(calls.trending_tokens())

    async def token_stats(self, address: str) -> JSONObject:
        return await self.call(calls.token_stats(address))

    async def recent_trades(
        self, token_address: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JSONObject:
        return await self.call(calls.recent_trades(token_address, limit, cursor))

    async def top_volume(self, limit: int | None = None, window: Window | None = None) -> JSONArray:
        return await self.call(calls.top_volume(limit, window))

    async def top_count(self, limit: int | None = None, window: Window | None = None) -> JSONArray:
        return await self.call(calls.top_count(limit, window))

    async def chat_history(
        self,
        streamer_id: str | None = None,
        session_id: str | None = None,
        limit: int | None = None,
        before_chat_event_id: str | None = None,
    ) -> JSONObject:
        return await self.call(calls.chat_history(streamer_id, session_id, limit, before_chat_event_id))

    async def top_tippers(self, streamer_id: str) -> JSONObject:
        return await self.call(calls.top_tippers(streamer_id))

    async def skill_json(self) -> JSONObject:
        return await self.call(calls.skill_json())

    async def skill_md(self) -> str:
        return await self.call(calls.skill_md())

    async def health(self) -> JSONObject:
        return await self.call(calls.health())

    # ledger
    async def token_quote(
        self, address: str, side: Side, amount: int | str, mode: SwapMode | None = None
    ) -> JSONObject:
        return await self.call(calls.token_quote(address, side, amount, mode))

    async def token_swap(
        self,
        address: str,
        side: Side,
        amount: int | str,
        mode: SwapMode | None = None,
        min_out: int | str | None = None,
        max_in: int | str | None = None,
    ) -> JSONObject:
        return await self.call(calls.token_swap(address, side, amount, mode, min_out, max_in))

    async def wallet(self) -> JSONObject:
        return await self.call(calls.wallet())

    async def wallet_airdrop(self, lamports: int | str) -> JSONObject:
        return await self.call(calls.wallet_airdrop(lamports))

    async def tip(self, receiver_id: str, lamports: int | str, message: str | None = None) -> JSONObject:
        return await self.call(calls.tip(receiver_id, lamports, message))

    # viewer identity
    async def auth_guest(self, username: str | None = None) -> AuthResult:
        return await self.call(calls.auth_guest(username))

    async def auth_nonce(self, wallet_address: str) -> Nonce:
        return await self.call(calls.auth_nonce(wallet_address))

    async def auth_wallet(self, wallet_address: str, signature: str) -> AuthResult:
        return await self.call(calls.auth_wallet(wallet_address, signature))

    # profile and session owner controls
    async def me(self) -> JSONObject:
        return await self.call(calls.me())

    async def set_bio(self, bio: str) -> JSONObject:
        return await self.call(calls.set_bio(bio))

    async def set_username(self, username: str) -> JSONObject:
        return await self.call(calls.set_username(username))

    async def set_pfp(self, image: bytes | Path, filename: str | None = None) -> JSONObject:
        return await self.call(calls.set_pfp(image, filename))

    async def set_banner(self, image: bytes | Path, url: str, filename: str | None = None) -> JSONObject:
        return await self.call(calls.set_banner(image, url, filename))

    async def set_token_name(self, token_name: str) -> JSONObject:
        return await self.call(calls.set_token_name(token_name))

    async def following(self) -> Any:
        return await self.call(calls.following())

    async def is_following(self, target_username: str) -> Following:
        return await self.call(calls.is_following(target_username))

    async def follow(self, target_id: str) -> Any:
        return await self.call(calls.follow(target_id))

    async def unfollow(self, target_id: str) -> Any:
        return await self.call(calls.unfollow(target_id))

    async def session_start(self, title: str, category: str = "", tags: list[str] | None = None) -> JSONObject:
        return await self.call(calls.session_start(title, category, tags or []))

    async def session_end(self, session_id: str) -> JSONObject:
        return await self.call(calls.session_end(session_id))

    async def session_update(self, session_id: str, **changes: Any) -> JSONObject:
        return await self.call(calls.session_update(session_id, **changes))

    async def session_delete(self, session_id: str) -> Any:
        return await self.call(calls.session_delete(session_id))

    async def muted_users(self, session_id: str) -> Any:
        return await self.call(calls.muted_users(session_id))
