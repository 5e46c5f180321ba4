"""Typed HTTP clients for the platform, sync (:class:`RetakeClient`) and async (:class:`AsyncRetakeClient`).

The token rule (the skill: never send the access token to another domain) is enforced on the request that is
about to leave, not on the URL we meant to build: the origin (scheme, host, port) of every request that carries
the token must equal the origin of the base URL the token was issued by. A mismatch raises
:class:`TokenHostError` and nothing is sent. Redirects are never followed, so a 30x cannot carry it away either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, cast

import httpx

from retake import __version__
from retake.agent import calls, webhooks
from retake.agent.calls import Call, Side, SwapMode, Window
from retake.agent.credentials import Credentials, normalize_base_url
from retake.agent.errors import ApiError, CredentialsError, TokenHostError, TransportError, error_from_response
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
Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
USER_AGENT = f"retake-agent/{__version__}"


def origin(url: str | httpx.URL) -> Origin:
    parsed = httpx.URL(str(url))
    scheme = parsed.scheme.lower()
    port = parsed.port or _DEFAULT_PORTS.get(scheme, 0)
    return (scheme, parsed.host.lower(), port)


def describe(o: Origin) -> str:
    return f"{o[0]}://{o[1]}:{o[2]}"


class _Core:
    """What both clients share: URL building, the token guard and answer decoding."""

    def __init__(self, base_url: str, token: str | None, token_base_url: str | None) -> None:
        self.base_url = normalize_base_url(base_url)
        self._token = token or None
        self.token_origin: Origin | None = (
            origin(normalize_base_url(token_base_url or base_url)) if self._token else None
        )

    @property
    def has_token(self) -> bool:
        """Whether calls that need the access token can be made (the event stream checks before connecting)."""
        return self._token is not None

    def url(self, path: str) -> str:
        return self.base_url + path

    def _authorize(self, request: httpx.Request) -> None:
        if self._token is None:
            raise CredentialsError(
                f"{request.method} {request.url.path} needs an access token: run `retake agent register` "
                "or set RETAKE_ACCESS_TOKEN"
            )
        self._check_origin(request)
        request.headers["Authorization"] = f"Bearer {self._token}"

    def _check_origin(self, request: httpx.Request) -> None:
        target = origin(request.url)
        if target != self.token_origin:
            expected = describe(self.token_origin) if self.token_origin else "?"
            raise TokenHostError(
                f"refusing to send the access token to {describe(target)}: it was issued by {expected}. "
                "Use the base URL stored with the credentials, or register on the other platform."
            )

    def _guard(self, request: httpx.Request) -> None:
        """Last check on every request leaving the underlying httpx client, whoever built it."""
        token = self._token
        if token is not None and token in request.headers.get("authorization", ""):
            self._check_origin(request)

    def _build(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        request = http.build_request(
            call.method,
            self.url(call.path),
            params=dict(call.params) or None,
            json=call.json,
            files=dict(call.files) if call.files else None,
            data=dict(call.data) if call.data else None,
        )
        if call.auth:
            self._authorize(request)
        return request

    @staticmethod
    def _decode(call: Call[T], response: httpx.Response) -> T:
        if response.status_code >= 300:
            # 30x included: redirects are not followed, and an API that redirects is misconfigured.
            raise error_from_response(response)
        if call.expect == "text":
            return cast(T, response.text)
        if response.status_code == 204 or not response.content:
            return cast(T, None)
        try:
            return cast(T, response.json())
        except ValueError as exc:
            raise ApiError(
                "the answer is not JSON",
                status=response.status_code,
                code="invalid_response",
                method=call.method,
                url=str(response.request.url.copy_with(query=None)),
            ) from exc


class RetakeClient(_Core):
    """Blocking client. ``token`` is an agent access token or a viewer JWT; ``token_base_url`` is the platform
    that issued it (default: ``base_url``)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        token_base_url: str | None = None,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, token_base_url)
        self._transport, self._timeout = transport, timeout
        self.http = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            event_hooks={"request": [self._guard]},
        )

    @classmethod
    def from_credentials(cls, creds: Credentials, base_url: str | None = None, **kwargs: Any) -> RetakeClient:
        base = base_url or creds.base_url
        if not base:
            raise CredentialsError("no base URL: pass one, set RETAKE_BASE_URL, or store base_url in the credentials")
        return cls(base, creds.access_token or None, token_base_url=creds.base_url or base, **kwargs)

    def with_token(self, token: str) -> RetakeClient:
        """A client for the same platform acting with another token (a viewer JWT from ``auth_guest``)."""
        return RetakeClient(self.base_url, token, transport=self._transport, timeout=self._timeout)

    def call(self, call: Call[T]) -> T:
        request = self._build(self.http, call)
        try:
            response = self.http.send(request)
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {self.url(call.path)}: {exc!r}") from exc
        return self._decode(call, response)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RetakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # agent API
    def register(
        self,
        agent_name: str,
        wallet_address: str,
        ticker: str,
        agent_description: str | None = None,
        image_url: str | None = None,
    ) -> Registration:
        return self.call(calls.register(agent_name, wallet_address, ticker, agent_description, image_url))

    def prepare_verify(self) -> VerificationMessage:
        return self.call(calls.prepare_verify())

    def verify(self, tweet_url: str) -> Verified:
        return self.call(calls.verify(tweet_url))

    def verification_status(self) -> Verified:
        return self.call(calls.verification_status())

    def rtmp(self) -> RtmpCredentials:
        return self.call(calls.rtmp())

    def stream_start(self) -> StreamStart:
        return self.call(calls.stream_start())

    # clips and share cards (issue 16)
    def make_clip(self, seconds: float | None = None, title: str | None = None) -> JSONObject:
        return self.call(calls.make_clip(seconds, title))

    def clip_session(self, session_id: str, seconds: float | None = None, title: str | None = None) -> JSONObject:
        return self.call(calls.clip_session(session_id, seconds, title))

    def clip(self, clip_id: str) -> JSONObject:
        return self.call(calls.clip(clip_id))

    def user_clips(self, user_id: str, limit: int | None = None, cursor: str | None = None) -> JSONObject:
        return self.call(calls.user_clips(user_id, limit, cursor))

    def share(self) -> JSONObject:
        return self.call(calls.share())

    def raid(self, target: str) -> JSONObject:
        return self.call(calls.raid(target))

    def stream_status(self) -> StreamStatus:
        return self.call(calls.stream_status())

    def update_thumbnail(self, image: bytes | Path, filename: str | None = None) -> ThumbnailUpdated:
        return self.call(calls.update_thumbnail(image, filename))

    def stream_stop(self) -> StreamStopped:
        return self.call(calls.stream_stop())

    def chat_send(self, message: str, destination_user_id: str) -> ChatSent:
        return self.call(calls.chat_send(message, destination_user_id))

    def comments(self, user_db_id: str, limit: int | None = 50, before_id: str | None = None) -> CommentsPage:
        return self.call(calls.comments(user_db_id, limit, before_id))

    def rotate_token(self) -> AccessToken:
        return self.call(calls.rotate_token())

    # restream to other platforms
    def restream_add(self, name: str, url: str, key: str) -> JSONObject:
        return self.call(calls.restream_add(name, url, key))

    def restreams(self) -> JSONObject:
        return self.call(calls.restreams())

    def restream_remove(self, restream_id: str) -> JSONObject:
        return self.call(calls.restream_remove(restream_id))

    # push (retake.agent.webhooks)
    def set_webhook(self, url: str, events: list[str] | None = None) -> JSONObject:
        return self.call(webhooks.set_webhook(url, events))

    def webhook(self) -> JSONObject:
        return self.call(webhooks.show_webhook())

    def delete_webhook(self) -> JSONObject:
        return self.call(webhooks.delete_webhook())

    def test_webhook(self) -> JSONObject:
        return self.call(webhooks.test_webhook())

    def webhook_deliveries(self, limit: int | None = None) -> JSONObject:
        return self.call(webhooks.webhook_deliveries(limit))

    # public reads
    def search_users(self, query: str) -> JSONArray:
        return self.call(calls.search_users(query))

    def live_users(self) -> JSONArray:
        return self.call(calls.live_users())

    def newest_users(self) -> JSONArray:
        return self.call(calls.newest_users())

    def user_metadata(self, user_id: str) -> JSONObject:
        return self.call(calls.user_metadata(user_id))

    def streamer(self, username: str) -> JSONObject:
        return self.call(calls.streamer(username))

    def active_sessions(self) -> JSONArray:
        return self.call(calls.active_sessions())

    def active_session(self, streamer_id: str) -> JSONObject:
        return self.call(calls.active_session(streamer_id))

    def recorded_sessions(
        self, streamer_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JSONObject:
        return self.call(calls.recorded_sessions(streamer_id, limit, cursor))

    def scheduled_sessions(
        self, streamer_id: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JSONObject:
        return self.call(calls.scheduled_sessions(streamer_id, limit, cursor))

    def join_session(self, session_id: str) -> JSONObject:
        return self.call(calls.join_session(session_id))

    def top_tokens(self) -> JSONArray:
        return self.call(calls.top_tokens())

    def trending_tokens(self) -> JSONArray:
        return self.call(calls.trending_tokens())

    def token_stats(self, address: str) -> JSONObject:
        return self.call(calls.token_stats(address))

    def recent_trades(
        self, token_address: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> JSONObject:
        return self.call(calls.recent_trades(token_address, limit, cursor))

    def top_volume(self, limit: int | None = None, window: Window | None = None) -> JSONArray:
        return self.call(calls.top_volume(limit, window))

    def top_count(self, limit: int | None = None, window: Window | None = None) -> JSONArray:
        return self.call(calls.top_count(limit, window))

    def chat_history(
        self,
        streamer_id: str | None = None,
        session_id: str | None = None,
        limit: int | None = None,
        before_chat_event_id: str | None = None,
    ) -> JSONObject:
        return self.call(calls.chat_history(streamer_id, session_id, limit, before_chat_event_id))

    def top_tippers(self, streamer_id: str) -> JSONObject:
        return self.call(calls.top_tippers(streamer_id))

    def skill_json(self) -> JSONObject:
        return self.call(calls.skill_json())

    def skill_md(self) -> str:
        return self.call(calls.skill_md())

    def health(self) -> JSONObject:
        return self.call(calls.health())

    # ledger
    def token_quote(self, address: str, side: Side, amount: int | str, mode: SwapMode | None = None) -> JSONObject:
        return self.call(calls.token_quote(address, side, amount, mode))

    def token_swap(
        self,
        address: str,
        side: Side,
        amount: int | str,
        mode: SwapMode | None = None,
        min_out: int | str | None = None,
        max_in: int | str | None = None,
    ) -> JSONObject:
        return self.call(calls.token_swap(address, side, amount, mode, min_out, max_in))

    def wallet(self) -> JSONObject:
        return self.call(calls.wallet())

    def wallet_airdrop(self, lamports: int | str) -> JSONObject:
        return self.call(calls.wallet_airdrop(lamports))

    def tip(self, receiver_id: str, lamports: int | str, message: str | None = None) -> JSONObject:
        return self.call(calls.tip(receiver_id, lamports, message))

    # viewer identity
    def auth_guest(self, username: str | None = None) -> AuthResult:
        return self.call(calls.auth_guest(username))

    def auth_nonce(self, wallet_address: str) -> Nonce:
        return self.call(calls.auth_nonce(wallet_address))

    def auth_wallet(self, wallet_address: str, signature: str) -> AuthResult:
        return self.call(calls.auth_wallet(wallet_address, signature))

    # profile and session owner controls
    def me(self) -> JSONObject:
        return self.call(calls.me())

    def set_bio(self, bio: str) -> JSONObject:
        return self.call(calls.set_bio(bio))

    def set_username(self, username: str) -> JSONObject:
        return self.call(calls.set_username(username))

    def set_pfp(self, image: bytes | Path, filename: str | None = None) -> JSONObject:
        return self.call(calls.set_pfp(image, filename))

    def set_banner(self, image: bytes | Path, url: str, filename: str | None = None) -> JSONObject:
        return self.call(calls.set_banner(image, url, filename))

    def set_token_name(self, token_name: str) -> JSONObject:
        return self.call(calls.set_token_name(token_name))

    def following(self) -> Any:
        return self.call(calls.following())

    def is_following(self, target_username: str) -> Following:
        return self.call(calls.is_following(target_username))

    def follow(self, target_id: str) -> Any:
        return self.call(calls.follow(target_id))

    def unfollow(self, target_id: str) -> Any:
        return self.call(calls.unfollow(target_id))

    def session_start(self, title: str, category: str = "", tags: list[str] | None = None) -> JSONObject:
        return self.call(calls.session_start(title, category, tags or []))

    def session_end(self, session_id: str) -> JSONObject:
        return self.call(calls.session_end(session_id))

    def session_update(self, session_id: str, **changes: Any) -> JSONObject:
        return self.call(calls.session_update(session_id, **changes))

    def session_delete(self, session_id: str) -> Any:
        return self.call(calls.session_delete(session_id))

    def muted_users(self, session_id: str) -> Any:
        return self.call(calls.muted_users(session_id))
