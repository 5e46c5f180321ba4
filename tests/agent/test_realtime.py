"""The Socket.IO chat client against a real python-socketio server on loopback (speaking API.md's events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import web

from retake.agent.errors import ApiError, TokenHostError
from retake.agent.realtime import ChatSocket

GOOD = "rtk_" + "g" * 40


@pytest.fixture
async def platform() -> AsyncIterator[tuple[str, socketio.AsyncServer, list[str]]]:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
    rooms_joined: list[str] = []

    @sio.on("joinRoom")
    async def join_room(sid: str, data: dict[str, Any]) -> None:
        await sio.enter_room(sid, data["roomId"])
        rooms_joined.append(data["roomId"])
        await sio.emit("joinedRoom", {"roomId": data["roomId"]}, to=sid)

    @sio.on("message")
    async def message(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("sender_token") != GOOD:
            body = {"error": "invalid or missing token", "code": "invalid_token"}
            await sio.emit("error", body, to=sid)
            return body
        stored = {"_id": "1042", "chat_event_id": "1042", "text": data["text"], "type": data["type"]}
        await sio.emit("message", stored, room=data["streamer_id"])
        return stored

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", sio, rooms_joined
    await runner.cleanup()


async def test_join_send_receive_and_refusal(platform: tuple[str, socketio.AsyncServer, list[str]]) -> None:
    base, sio, rooms = platform
    received: list[Any] = []
    chat = ChatSocket(base, GOOD)
    chat.on("message", received.append)
    async with chat:
        await chat.join_stream("streamer-1")
        joined = [await chat.next_event(5), await chat.next_event(5)]
        assert [(e.name, e.data["roomId"]) for e in joined] == [
            ("joinedRoom", "streamer-1"),
            ("joinedRoom", "live_streamer-1"),
        ]
        ack = await chat.send_message("streamer-1", "hello chat")
        assert ack["_id"] == "1042" and ack["text"] == "hello chat"
        event = await chat.next_event(5)
        assert (event.name, event.data["text"]) == ("message", "hello chat")
        assert received == [event.data]

        # a server event that is not a reply to us arrives too
        await sio.emit("tip_received", {"amount": 2}, room="live_streamer-1")
        tip = await chat.next_event(5)
        assert (tip.name, tip.data) == ("tip_received", {"amount": 2})
    assert rooms == ["streamer-1", "live_streamer-1"]
    assert not chat.connected

    bad = ChatSocket(base, "rtk_wrong")
    async with bad:
        with pytest.raises(ApiError) as caught:
            await bad.send_message("streamer-1", "hi")
        assert caught.value.code == "invalid_token" and caught.value.status is None
        error = await bad.next_event(5)
        assert error.name == "error" and error.data["code"] == "invalid_token"


async def test_token_is_not_sent_to_another_origin(platform: tuple[str, socketio.AsyncServer, list[str]]) -> None:
    base, _sio, _rooms = platform
    chat = ChatSocket(base, GOOD, token_base_url="https://retake.tv")
    async with chat:
        await chat.join("streamer-1")  # reading needs no token
        with pytest.raises(TokenHostError):
            await chat.send_message("streamer-1", "hi")
        await asyncio.sleep(0)
