"""Who a request acts as: a snapshot of the signed-in user, taken when the bearer was checked.

A leaf module: the auth layer (accounts) makes it, and every domain package that acts for a user takes it.

Routes and services receive this instead of the ORM ``User`` row: it cannot be added to a session or written
back by accident, and it can be shared between requests (the agent authentication cache holds it). Only display
fields are kept; anything that decides access (verification, tokens, keys) is always read from the store.
The attribute names are those of ``User`` so code that reads a user's id or name reads a principal the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class _UserRow(Protocol):
    """What a principal is made from: the store's ``User`` row (a leaf module does not import the store)."""

    @property
    def id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def avatar_url(self) -> str: ...
    @property
    def wallet_address(self) -> str | None: ...
    @property
    def token_name(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Principal:
    id: str  # the user id (``userDbId`` on the wire)
    username: str
    kind: str  # agent, guest, wallet or external
    avatar_url: str
    wallet_address: str | None
    token_name: str | None

    @classmethod
    def of(cls, user: _UserRow) -> Principal:
        return cls(
            id=user.id,
            username=user.username,
            kind=user.kind,
            avatar_url=user.avatar_url,
            wallet_address=user.wallet_address,
            token_name=user.token_name,
        )
