"""The HTTP clients against ``httpx.MockTransport``: error mapping, the token-host rule, request shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from retake.agent import calls
from retake.agent.async_client import AsyncRetakeClient
from retake.agent.client import RetakeClient, origin
from retake.agent.errors import (
    ApiError,
    BadRequest,
    Conflict,
    CredentialsError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TokenHostError,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
)

BASE = "http://127.0.0.1:8000"
TOKEN = "rtk_" + "a" * 40
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class Recorder:
    """A MockTransport handler that records requests and answers from a per-path table."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(200, json={"ok": True}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answer(request)


def sync_client(recorder: Recorder, token: str | None = TOKEN, **kwargs: Any) -> RetakeClient:
    return RetakeClient(kwargs.pop("base_url", BASE), token, transport=httpx.MockTransport(recorder), **kwargs)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (415, UnsupportedMediaType),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (418, ApiError),
    ],
)
def test_error_bodies_become_typed_exceptions(status: int, kind: type[ApiError]) -> None:
    body = {"error": "no active session: call POST /api/v1/agent/stream/start first", "code": "no_active_session"}
    recorder = Recorder(lambda r: httpx.Response(status, json=body))
    with sync_client(recorder) as client, pytest.raises(kind) as caught:
        client.stream_stop()
    exc = caught.value
    assert type(exc) is kind
    assert exc.status == status and exc.code == "no_active_session"
    assert exc.message.startswith("no active session")
    assert exc.method == "POST" and exc.url == f"{BASE}/api/v1/agent/stream/stop"
    assert str(status) in str(exc) and "no_active_session" in str(exc)
    assert TOKEN not in str(exc)


def test_rate_limit_carries_retry_after() -> None:
    recorder = Recorder(
        lambda r: httpx.Response(429, json={"error": "slow down", "code": "rate_limited"}, headers={"Retry-After": "7"})
    )
    with sync_client(recorder) as client, pytest.raises(RateLimited) as caught:
        client.chat_send("hi", "u1")
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("response", "code", "message"),
    [
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "http_502", "<html>Bad Gateway</html>"),
        (httpx.Response(500), "http_500", "Internal Server Error"),
        (httpx.Response(404, json={"detail": "Not Found"}), "http_404", "Not Found"),
        (httpx.Response(400, json={"error": "ticker is required"}), "http_400", "ticker is required"),
        (httpx.Response(400, json=["not", "an", "object"]), "http_400", '["not","an","object"]'),
    ],
)
def test_bodies_that_are_not_the_error_shape_still_give_status_and_code(
    response: httpx.Response, code: str, message: str
) -> None:
    with sync_client(Recorder(lambda r: response)) as client, pytest.raises(ApiError) as caught:
        client.live_users()
    assert caught.value.status == response.status_code
    assert caught.value.code == code
    assert caught.value.message == message


def test_transport_failures_are_wrapped() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with sync_client(Recorder(refuse)) as client, pytest.raises(TransportError) as caught:
        client.health()
    assert "connection refused" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_a_success_that_is_not_json_is_an_error() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, text="<html>"))
    with sync_client(recorder) as client, pytest.raises(ApiError) as caught:
        client.stream_status()
    assert caught.value.code == "invalid_response"


def test_redirects_are_not_followed() -> None:
    recorder = Recorder(lambda r: httpx.Response(302, headers={"Location": "https://evil.example/steal"}))
    with sync_client(recorder) as client, pytest.raises(ApiError) as caught:
        client.stream_status()
    assert caught.value.status == 302
    assert [str(r.url) for r in recorder.requests] == [f"{BASE}/api/v1/agent/stream/status"]


# -- the token-host rule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        "http://evil.example:8000",  # another host
        "http://localhost:8000",  # same machine, another name: still another host
        "http://127.0.0.1:8001",  # another port
        "https://127.0.0.1:8000",  # another scheme
    ],
)
def test_token_is_never_sent_to_another_origin(other: str) -> None:
    recorder = Recorder()
    client = RetakeClient(other, TOKEN, token_base_url=BASE, transport=httpx.MockTransport(recorder))
    with client:
        with pytest.raises(TokenHostError) as caught:
            client.stream_status()
        assert recorder.requests == []  # nothing left the client
        assert TOKEN not in str(caught.value)
        assert "127.0.0.1:8000" in str(caught.value)
        # public reads need no token and still work against that host
        assert client.live_users() == {"ok": True}
    assert "authorization" not in recorder.requests[-1].headers


def test_token_goes_to_its_own_origin_even_with_a_path_prefix() -> None:
    recorder = Recorder()
    prefixed = "https://platform.example/retake"
    with RetakeClient(prefixed + "/", TOKEN, transport=httpx.MockTransport(recorder)) as client:
        client.stream_status()
    request = recorder.requests[0]
    assert str(request.url) == "https://platform.example/retake/api/v1/agent/stream/status"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_default_ports_are_the_same_origin() -> None:
    assert origin("https://retake.tv") == origin("https://RETAKE.tv:443/api/v1")
    assert origin("http://a:80") == origin("http://a")
    assert origin("http://a") != origin("https://a")


def test_the_guard_also_covers_requests_built_by_hand() -> None:
    recorder = Recorder()
    with sync_client(recorder) as client:
        with pytest.raises(TokenHostError):
            client.http.get("https://evil.example/x", headers={"Authorization": f"Bearer {TOKEN}"})
        client.http.get("https://elsewhere.example/x")  # without our token: not our business
    assert [r.url.host for r in recorder.requests] == ["elsewhere.example"]


def test_authenticated_call_without_token_raises_before_sending() -> None:
    recorder = Recorder()
    with sync_client(recorder, token=None) as client, pytest.raises(CredentialsError):
        client.rtmp()
    assert recorder.requests == []


def test_public_calls_never_carry_the_token() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=[]))
    with sync_client(recorder) as client:
        client.live_users()
        client.search_users("nova")
    assert all("authorization" not in r.headers for r in recorder.requests)


async def test_async_client_applies_the_same_rules() -> None:
    recorder = Recorder(
        lambda r: (
            httpx.Response(409, json={"error": "no session", "code": "no_active_session"})
            if r.url.path.endswith("/stop")
            else httpx.Response(200, json={"verified": True})
        )
    )
    transport = httpx.MockTransport(recorder)
    async with AsyncRetakeClient(BASE, TOKEN, transport=transport) as client:
        assert await client.verification_status() == {"verified": True}
        with pytest.raises(Conflict) as caught:
            await client.stream_stop()
        assert caught.value.code == "no_active_session"
    async with AsyncRetakeClient("http://evil.example", TOKEN, token_base_url=BASE, transport=transport) as other:
        with pytest.raises(TokenHostError):
            await other.rtmp()
        with pytest.raises(TokenHostError):
            await other.http.get("http://evil.example/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert len(recorder.requests) == 2


async def test_async_transport_failure_is_wrapped() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with AsyncRetakeClient(BASE, TOKEN, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(TransportError):
            await client.stream_status()


# -- request shapes ----------------------------------------------------------------------------------------


def test_request_shapes() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json={}))
    with sync_client(recorder) as client:
        client.register("Nova", "1111", "nova", "explores", None)
        client.chat_send("hello", "user-1")
        client.comments("user-1", limit=50, before_id="1042")
        client.update_thumbnail(PNG)
        client.user_metadata("../../admin")
        client.chat_history(streamer_id="s1", before_chat_event_id="9")
        client.token_swap("Tok", "buy", 1_000_000, min_out=5)
        client.tip("u2", 10**9)
        client.set_banner(PNG, "https://example.com")
        client.recorded_sessions("s1", limit=5)
        client.recorded_sessions()
    r = recorder.requests
    assert (r[0].method, r[0].url.path) == ("POST", "/api/v1/agent/register")
    assert json.loads(r[0].content) == {
        "agent_name": "Nova",
        "agent_description": "explores",
        "wallet_address": "1111",
        "ticker": "nova",
    }
    assert "authorization" not in r[0].headers  # registering needs no token
    assert json.loads(r[1].content) == {"message": "hello", "destination_user_id": "user-1"}
    assert r[1].headers["authorization"] == f"Bearer {TOKEN}"
    assert dict(r[2].url.params) == {"userDbId": "user-1", "limit": "50", "beforeId": "1042"}
    assert r[3].headers["content-type"].startswith("multipart/form-data")
    assert b'name="image"; filename="image.png"' in r[3].content and b"Content-Type: image/png" in r[3].content
    assert r[4].url.raw_path == b"/api/v1/users/metadata/..%2F..%2Fadmin"  # an id cannot change the path
    assert dict(r[5].url.params) == {"streamer_id": "s1", "before_chat_event_id": "9"}
    assert json.loads(r[6].content) == {"side": "buy", "amount": "1000000", "min_out": "5"}
    assert json.loads(r[7].content) == {"receiver_id": "u2", "lamports": "1000000000"}
    assert r[8].method == "PATCH" and b'name="url"' in r[8].content
    assert (r[9].url.path, dict(r[9].url.params)) == ("/api/v1/sessions/recorded/s1/", {"limit": "5"})
    assert r[10].url.path == "/api/v1/sessions/recorded/"


def test_text_and_empty_answers() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/skill.md":
            return httpx.Response(200, text="# retake skill")
        return httpx.Response(204)

    with sync_client(Recorder(answer)) as client:
        assert client.skill_md() == "# retake skill"
        assert client.unfollow("u3") is None


def test_chat_history_needs_exactly_one_id() -> None:
    with pytest.raises(ValueError):
        calls.chat_history()
    with pytest.raises(ValueError):
        calls.chat_history(streamer_id="a", session_id="b")


def test_every_call_builder_is_exposed_by_both_clients() -> None:
    builders = {
        name
        for name, value in vars(calls).items()
        if callable(value) and getattr(value, "__module__", "") == calls.__name__ and not name.startswith("_")
    } - {"image_upload", "Call"}
    for cls in (RetakeClient, AsyncRetakeClient):
        missing = sorted(name for name in builders if not hasattr(cls, name))
        assert missing == [], f"{cls.__name__} lacks {missing}"
