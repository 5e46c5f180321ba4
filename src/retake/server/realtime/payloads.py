"""What Socket.IO clients may send (API.md, Socket.IO), checked before any work is done for it.

Fields the server decides itself (the stored session, the sender's name, the time) are accepted and ignored,
so clients written against the real service, which send them, keep working.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from retake.errors import RetakeError, ValidationFailed

MAX_ROOM_ID = 200
MAX_TX_HASH = 128


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TipData(_Lenient):
    receiver_id: str | None = Field(default=None, max_length=64)
    amount: float | int | str | None = None
    tx_hash: str | None = Field(default=None, max_length=MAX_TX_HASH)


class TradeData(_Lenient):
    amount: float | int | str | None = None
    type: Literal["buy", "sell"] | None = None
    tx_hash: str | None = Field(default=None, max_length=MAX_TX_HASH)


class ClientMessage(_Lenient):
    type: Literal["message", "tip", "trade"] = "message"
    streamer_id: str = Field(min_length=1, max_length=64)
    sender_token: str | None = Field(default=None, max_length=4096)
    sender_user_id: str | None = Field(default=None, max_length=64)
    text: str = Field(default="", max_length=10_000)
    # Sent by real clients, decided by the server: accepted whatever their type, then ignored.
    session_id: Any = None
    sender_username: Any = None
    timestamp: Any = None
    tip_data: TipData | None = None
    trade_data: TradeData | None = None

    @field_validator("streamer_id", "sender_token", "sender_user_id")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL cannot store NUL; refused here, an id with one would otherwise fail deep in the store.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @property
    def tx_hash(self) -> str | None:
        data = self.tip_data if self.type == "tip" else self.trade_data
        return data.tx_hash if data is not None else None


def parse_message(data: Any) -> ClientMessage:
    if not isinstance(data, dict):
        raise ValidationFailed("message payload must be a JSON object", code="invalid_payload")
    try:
        return ClientMessage.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "payload"
        if first.get("type") == "missing":
            raise ValidationFailed(f"{field} is required", code="missing_field") from None
        raise ValidationFailed(f"{field}: {first.get('msg', 'invalid value')}", code="validation_error") from None


def parse_room(data: Any) -> str:
    """``{roomId}`` as API.md says; a bare string is accepted too (some clients send one)."""
    room = data.get("roomId") if isinstance(data, dict) else data
    if not isinstance(room, str) or not 1 <= len(room) <= MAX_ROOM_ID or not room.isprintable():
        raise ValidationFailed(f"roomId must be a string of 1-{MAX_ROOM_ID} printable characters", code="invalid_room")
    return room


def error_body(exc: RetakeError) -> dict[str, str]:
    """The REST error shape (server/errors.py), so one client-side handler reads both."""
    return {"error": exc.message, "code": exc.code}
