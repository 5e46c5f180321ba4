"""The caller's own profile and who they follow. One database transaction per call; raises only
``retake.errors`` exceptions; a failed validation changes nothing."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.accounts.results import Followed, FollowState, NewFollower, OwnProfile, Page
from retake.errors import NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.identity.validation import NAME_RE, check_http_url, check_name, check_text
from retake.ids import parse_id
from retake.live import LiveRegistry
from retake.principal import Principal
from retake.store.tables import Agent, Follow, User
from retake.store.types import iso, utcnow

MAX_BIO = 500
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_TOKEN_NAME = 32


def _check_token_name(value: str) -> str:
    value = value.strip()
    printable = all(unicodedata.category(ch)[0] != "C" for ch in value)
    if not 1 <= len(value) <= MAX_TOKEN_NAME or not printable:
        raise ValidationFailed(f"token_name must be 1-{MAX_TOKEN_NAME} printable characters", code="invalid_token_name")
    return value


class ProfileService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        live: LiveRegistry,
        events: EventBus,
        *,
        user_changed: Sequence[Callable[[str, frozenset[str]], Awaitable[None]]],
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._events = events
        # Called with the user id and the changed columns after a profile change is stored: this node's caches
        # that hold user rows or names (authentication, rendered comment pages) drop them. Not an event-bus
        # event: those are broadcast on Socket.IO.
        self.user_changed = tuple(user_changed)

    async def _changed(self, user_id: str, columns: frozenset[str]) -> None:
        for listener in self.user_changed:
            await listener(user_id, columns)

    # -- own profile ---------------------------------------------------------------------------------------

    async def me(self, user_id: str) -> OwnProfile:
        async with self._sessions() as db:
            user = await db.get(User, user_id)
            if user is None:
                raise NotFound("your account no longer exists", code="user_not_found")
            return await self._body(db, user)

    async def _body(self, db: AsyncSession, user: User) -> OwnProfile:
        followers = await db.scalar(select(func.count()).select_from(Follow).where(Follow.target_id == user.id))
        following = await db.scalar(select(func.count()).select_from(Follow).where(Follow.follower_id == user.id))
        agent_id = await db.scalar(select(Agent.id).where(Agent.user_id == user.id))
        return OwnProfile(
            user_id=user.id,
            username=user.username,
            kind=user.kind,
            bio=user.bio,
            avatar_url=user.avatar_url,
            banner_url=user.banner_url,
            banner_link=user.banner_link,
            wallet_address=user.wallet_address,
            token_name=user.token_name,
            is_agent=agent_id is not None,
            followers_count=int(followers or 0),
            following_count=int(following or 0),
            created_at=user.created_at,
        )

    async def _update(self, user_id: str, **values: str | None) -> OwnProfile:
        async with self._sessions() as db:
            user = await db.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound("your account no longer exists", code="user_not_found")
            for name, value in values.items():
                setattr(user, name, value)
            await db.commit()
            await self._changed(user_id, frozenset(values))
            return await self._body(db, user)

    async def set_bio(self, user_id: str, bio: str) -> OwnProfile:
        check_text(bio, "bio")
        if len(bio) > MAX_BIO:
            raise ValidationFailed(f"bio must be at most {MAX_BIO} characters", code="invalid_bio")
        return await self._update(user_id, bio=bio)

    async def set_token_name(self, user_id: str, token_name: str) -> OwnProfile:
        return await self._update(user_id, token_name=_check_token_name(token_name))

    async def set_avatar(self, user_id: str, url: str) -> OwnProfile:
        return await self._update(user_id, avatar_url=url)

    @staticmethod
    def check_banner_link(link: str) -> str | None:
        """An http(s) URL, or ``None`` for an empty value (which clears the link)."""
        link = check_text(link, "url").strip()
        return check_http_url(link, "url") if link else None

    async def set_banner(self, user_id: str, image_url: str | None, link: str | None) -> OwnProfile:
        values: dict[str, str | None] = {}
        if link is not None:
            values["banner_link"] = self.check_banner_link(link)
        if image_url is not None:
            values["banner_url"] = image_url
        return await self._update(user_id, **values)

    async def set_username(self, user_id: str, username: str) -> OwnProfile:
        username = check_name(username, "username")
        key = username.lower()
        async with self._sessions() as db:
            user = await db.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFound("your account no longer exists", code="user_not_found")
            if key != user.username_key:
                taken = await db.scalar(select(User.id).where(User.username_key == key))
                if taken is not None:
                    raise ValidationFailed(f"username '{username}' is already taken", code="name_taken")
            user.username, user.username_key = username, key
            try:
                await db.commit()
            except IntegrityError as exc:  # a concurrent rename or registration took the name first
                await db.rollback()
                raise ValidationFailed(f"username '{username}' is already taken", code="name_taken") from exc
            await self._changed(user_id, frozenset({"username", "username_key"}))
            return await self._body(db, user)

    # -- following -----------------------------------------------------------------------------------------

    async def following(self, user_id: str, limit: int, cursor: str | None) -> Page[Followed]:
        """Newest follow first; ``next_cursor`` is the last item's follow id."""
        before = (
            None
            if cursor is None
            else parse_id(cursor, "cursor", code="invalid_cursor", message="is not one this server issued")
        )
        query = select(Follow, User).join(User, User.id == Follow.target_id).where(Follow.follower_id == user_id)
        if before is not None:
            query = query.where(Follow.id < before)
        async with self._sessions() as db:
            rows = (await db.execute(query.order_by(Follow.id.desc()).limit(limit + 1))).all()
        live = self._live.live_stream_ids()
        items = tuple(
            Followed(
                user_id=target.id,
                username=target.username,
                avatar_url=target.avatar_url,
                is_live=target.id in live,
                followed_at=follow.created_at,
            )
            for follow, target in rows[:limit]
        )
        next_cursor = str(rows[limit - 1][0].id) if len(rows) > limit else None
        return Page(items, next_cursor)

    @staticmethod
    async def _resolve(db: AsyncSession, target: str) -> User:
        """A user by id or by username (any case): ids are 36-character UUIDs, names at most 32 characters."""
        user: User | None = None
        if _UUID_RE.match(target):
            user = await db.get(User, target)
        elif NAME_RE.match(target):  # anything else names no one, and never reaches the database
            user = await db.scalar(select(User).where(User.username_key == target.lower()))
        if user is None:
            raise NotFound(f"no user '{target}'", code="user_not_found")
        return user

    async def is_following(self, user_id: str, target: str) -> bool:
        async with self._sessions() as db:
            target_id = (await self._resolve(db, target)).id
            found = await db.scalar(
                select(Follow.id).where(Follow.follower_id == user_id, Follow.target_id == target_id)
            )
        return found is not None

    async def _target(self, db: AsyncSession, follower: Principal, target: str) -> User:
        user = await self._resolve(db, target)
        if user.id == follower.id:
            raise ValidationFailed("you cannot follow yourself", code="cannot_follow_self")
        return user

    async def _followers(self, db: AsyncSession, target_id: str) -> int:
        count = await db.scalar(select(func.count()).select_from(Follow).where(Follow.target_id == target_id))
        return int(count or 0)

    async def follow(self, follower: Principal, target: str) -> FollowState:
        """Idempotent; ``user_followed`` goes to the target's live room only when the follow is new."""
        now = utcnow()
        async with self._sessions() as db:
            target_id = (await self._target(db, follower, target)).id
            exists = await db.scalar(
                select(Follow.id).where(Follow.follower_id == follower.id, Follow.target_id == target_id)
            )
            created = False
            if exists is None:
                db.add(Follow(follower_id=follower.id, target_id=target_id, created_at=now))
                try:
                    await db.commit()
                    created = True
                except IntegrityError:  # the same follow, sent twice at once: the other request stored it
                    await db.rollback()
            followers = await self._followers(db, target_id)
        if created:
            new = NewFollower(target_id, follower.id, follower.username, follower.avatar_url, followers, iso(now))
            await self._events.publish(PlatformEvent("user_followed", f"live_{target_id}", new))
        return FollowState(following=True, target_id=target_id, followers_count=followers)

    async def unfollow(self, follower: Principal, target: str) -> FollowState:
        async with self._sessions() as db:
            target_id = (await self._target(db, follower, target)).id
            await db.execute(delete(Follow).where(Follow.follower_id == follower.id, Follow.target_id == target_id))
            await db.commit()
            followers = await self._followers(db, target_id)
        return FollowState(following=False, target_id=target_id, followers_count=followers)
