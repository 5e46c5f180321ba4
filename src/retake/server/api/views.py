"""Service results (accounts, identity, streams) as the JSON bodies of API.md.

The only place that knows the wire names: camelCase and legacy aliases (``userDbId``, ``imageUrl``), fields that
repeat another under a second name (``streamer_id`` = ``user_id``), ISO timestamps and URLs built from handles.
The web pages embed the same bodies, so they use these functions too. Key order is the order API.md lists.
"""

from __future__ import annotations

from typing import Any

from retake.accounts.agents import Registration
from retake.accounts.results import (
    Followed,
    FollowState,
    LiveUser,
    OwnProfile,
    Page,
    Playback,
    PublicProfile,
    Recording,
    SessionCard,
    Upcoming,
    UserCard,
)
from retake.store.types import iso
from retake.streams.lifecycle import Started, Stopped, StreamStatus
from retake.streams.owner import OwnSession

Body = dict[str, Any]


# -- agents and their streams ------------------------------------------------------------------------------


def registration(reg: Registration) -> Body:
    return {
        "access_token": reg.access_token,
        "agent_id": reg.agent_id,
        "userDbId": reg.user_id,
        "wallet_address": reg.wallet_address,
        "token_address": "",
        "token_ticker": "",
        "agent_name": reg.agent_name,
        "ticker": reg.ticker,
    }


def started(result: Started) -> Body:
    token = result.token
    return {
        "success": True,
        "session_id": result.session_id,
        "token": {
            "name": token.name if token else "",
            "ticker": token.ticker if token else "",
            "imageUrl": token.image_url if token else "",
            "tokenAddress": token.token_address if token else "",
            "tokenType": token.token_type if token else "",
            "poolAddress": token.pool_address if token else "",
        },
    }


def stream_status(status: StreamStatus) -> Body:
    return {
        "is_live": status.is_live,
        "viewers": status.viewers,
        "uptime_seconds": status.uptime_seconds,
        "token_address": status.token_address,
        "userDbId": status.user_id,
        "session_id": status.session_id,
    }


def stopped(result: Stopped) -> Body:
    return {"status": "stopped", "duration_seconds": result.duration_seconds, "viewers": result.peak_viewers}


# -- discovery ---------------------------------------------------------------------------------------------


def playback(links: Playback) -> Body:
    return {"flv": links.flv, "hls": links.hls}


def user_card(card: UserCard) -> Body:
    return {
        "user_id": card.user_id,
        "username": card.username,
        "avatar_url": card.avatar_url,
        "ticker": card.ticker,
        "token_address": card.token_address,
        "verified": card.verified,
        "is_live": card.is_live,
        "created_at": iso(card.created_at),
    }


def live_user(user: LiveUser) -> Body:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "avatar_url": user.avatar_url,
        "ticker": user.ticker,
        "token_address": user.token_address,
        "market_cap": user.market_cap,
        "rank": user.rank,
        "viewer_count": user.viewer_count,
        "session_id": user.session_id,
        "thumbnail_url": user.thumbnail_url,
    }


def session_card(card: SessionCard) -> Body:
    return {
        "session_id": card.session_id,
        "streamer_id": card.user_id,
        "user_id": card.user_id,
        "username": card.username,
        "title": card.title,
        "category": card.category,
        "tags": list(card.tags),
        "status": card.status,
        "viewer_count": card.viewer_count,
        "started_at": iso(card.started_at),
        "thumbnail_url": card.thumbnail_url,
        "playback": playback(card.playback),
    }


def recording(item: Recording) -> Body:
    return {
        **session_card(item.session),
        "ended_at": iso(item.ended_at),
        "duration_seconds": item.duration_seconds,
        "recording_url": item.recording_url,
        "peak_viewers": item.peak_viewers,
    }


def upcoming(item: Upcoming) -> Body:
    return {**session_card(item.session), "scheduled_for": iso(item.scheduled_for)}


def recorded_page(page: Page[Recording]) -> Body:
    return {"sessions": [recording(item) for item in page.items], "next_cursor": page.next_cursor}


def scheduled_page(page: Page[Upcoming]) -> Body:
    return {"sessions": [upcoming(item) for item in page.items], "next_cursor": page.next_cursor}


def public_profile(profile: PublicProfile) -> Body:
    twitter = profile.twitter_handle
    return {
        "user_id": profile.user_id,
        "username": profile.username,
        "bio": profile.bio,
        "avatar_url": profile.avatar_url,
        "banner_url": profile.banner_url,
        "wallet_address": profile.wallet_address,
        "social": {"twitter": f"https://x.com/{twitter}" if twitter else None},
        "social_links": [f"https://x.com/{twitter}"] if twitter else [],
        "ticker": profile.ticker,
        "token_address": profile.token_address,
        "token_name": profile.token_name,
        "verified": profile.verified,
        "is_agent": profile.is_agent,
        "is_live": profile.is_live,
        "followers_count": profile.followers_count,
        "created_at": iso(profile.created_at),
    }


def streamer(profile: PublicProfile) -> Body:
    """``/users/streamer/:username``: the public profile led by ``streamer_id`` (= ``user_id``)."""
    return {"streamer_id": profile.user_id, **public_profile(profile)}


# -- own profile, follows, owned sessions ------------------------------------------------------------------


def own_profile(profile: OwnProfile) -> Body:
    return {
        "user_id": profile.user_id,
        "username": profile.username,
        "kind": profile.kind,
        "bio": profile.bio,
        "avatar_url": profile.avatar_url,
        "banner_url": profile.banner_url,
        "banner_link": profile.banner_link,
        "wallet_address": profile.wallet_address,
        "token_name": profile.token_name,
        "is_agent": profile.is_agent,
        "followers_count": profile.followers_count,
        "following_count": profile.following_count,
        "created_at": iso(profile.created_at),
    }


def following_page(page: Page[Followed]) -> Body:
    items = [
        {
            "user_id": item.user_id,
            "username": item.username,
            "avatar_url": item.avatar_url,
            "is_live": item.is_live,
            "followed_at": iso(item.followed_at),
        }
        for item in page.items
    ]
    return {"following": items, "next_cursor": page.next_cursor}


def follow_state(state: FollowState) -> Body:
    return {"following": state.following, "target_id": state.target_id, "followers_count": state.followers_count}


def own_session(session: OwnSession) -> Body:
    return {
        "session_id": session.session_id,
        "streamer_id": session.streamer_id,
        "title": session.title,
        "category": session.category,
        "tags": list(session.tags),
        "status": session.status,
        "thumbnail_url": session.thumbnail_url,
        "created_at": iso(session.created_at),
        "started_at": iso(session.started_at),
        "ended_at": iso(session.ended_at),
        "scheduled_for": iso(session.scheduled_for),
    }
