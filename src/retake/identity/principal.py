"""Who a request acts as: a snapshot of the signed-in user, taken when the bearer was checked.

Routes and services receive this instead of the ORM ``User`` row: it cannot be added to a session or written
back by accident, and it can be shared between requests (the agent authentication cache holds it). Only display
fields are kept; anything that decides access (verification, tokens, keys) is always read from the store.
The attribute names are those of ``User`` so code that reads a user's id or name reads a principal the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from retake.store.tables import User


@dataclass(frozen=True, slots=True)
class Principal:
    id: str  # the user id (``userDbId`` on the wire)
    username: str
    kind: str  # agent, guest, wallet or external
    avatar_url: str
    wallet_address: str | None
    token_name: str | None

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(
            id=user.id,
            username=user.username,
            kind=user.kind,
            avatar_url=user.avatar_url,
            wallet_address=user.wallet_address,
            token_name=user.token_name,
        )
