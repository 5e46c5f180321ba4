"""The accounts services called directly (no HTTP): registration, authentication, token rotation, tweet
verification, stream keys, the directory and the caller's profile, with the typed results they answer."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from retake.accounts.agents import AgentVerification, AuthedAgent, Registration
from retake.accounts.results import FollowState, OwnProfile, Page, PublicProfile, UserCard
from retake.errors import NotFound, Unauthorized, ValidationFailed
from retake.principal import Principal
from tests.support import VALID_WALLET, FakeOEmbed
from tests.unit.services import HANDLE, Services, services


@pytest.fixture
async def svc(database_url: str, oembed: FakeOEmbed, tmp_path: Path) -> AsyncIterator[Services]:
    async with services(database_url, oembed.url, tmp_path / "recordings", auth_cache_seconds=60.0) as built:
        yield built


async def test_register_answers_a_registration_and_the_token_authenticates(svc: Services) -> None:
    reg = await svc.agents.register(
        agent_name="Alpha",
        agent_description="an agent",
        image_url="https://example.com/a.png",
        wallet_address=VALID_WALLET,
        ticker="abc",
    )
    assert isinstance(reg, Registration)
    assert reg.access_token.startswith("rtk_") and reg.agent_id and reg.user_id
    assert reg.wallet_address == VALID_WALLET
    who = await svc.agents.authenticate(reg.access_token)
    assert isinstance(who, AuthedAgent)
    assert who.agent_id == reg.agent_id and who.user_id == reg.user_id
    assert who.user == Principal(
        id=reg.user_id,
        username="Alpha",
        kind="agent",
        avatar_url="https://example.com/a.png",
        wallet_address=VALID_WALLET,
        token_name=None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        who.agent_id = "other"  # type: ignore[misc]


async def test_register_refuses_a_taken_name_ignoring_case_and_bad_fields(svc: Services) -> None:
    await svc.register("Bravo")
    with pytest.raises(ValidationFailed) as taken:
        await svc.register("bRAVO")
    assert taken.value.code == "name_taken"
    with pytest.raises(ValidationFailed) as long_text:
        await svc.register("charlie", agent_description="x" * 501)
    assert long_text.value.code == "invalid_description"
    with pytest.raises(ValidationFailed):
        await svc.register("delta", wallet_address="not-a-wallet")


@pytest.mark.parametrize(
    ("token", "code"), [(None, "missing_token"), ("", "missing_token"), ("nonsense", "invalid_token")]
)
async def test_authenticate_refuses_missing_and_malformed_tokens(svc: Services, token: str | None, code: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        await svc.agents.authenticate(token)
    assert refused.value.code == code


async def test_rotation_ends_the_old_token_at_once_even_when_it_was_cached(svc: Services) -> None:
    old = await svc.register("echo")
    who = await svc.agents.authenticate(old)  # now in the authentication cache
    assert len(svc.agents.auth_cache) == 1
    new = await svc.agents.rotate_token(who.agent_id)
    assert new != old
    with pytest.raises(Unauthorized):
        await svc.agents.authenticate(old)
    assert (await svc.agents.authenticate(new)).agent_id == who.agent_id


async def test_verification_needs_a_prepared_message_then_the_tweet(svc: Services, oembed: FakeOEmbed) -> None:
    who = await svc.agents.authenticate(await svc.register("foxtrot"))
    with pytest.raises(ValidationFailed) as early:
        await svc.agents.verify(who.agent_id, "https://x.com/foxtrot/status/1")
    assert early.value.code == "no_verification_message"
    assert "/api/" not in early.value.message, "services name no HTTP path; the edge adds the hint"
    message = await svc.agents.prepare_verify(who.agent_id)
    assert f"@{HANDLE}" in message
    oembed.tweets["2"] = "something else"
    with pytest.raises(ValidationFailed) as wrong:
        await svc.agents.verify(who.agent_id, "https://x.com/foxtrot/status/2")
    assert wrong.value.code == "code_not_found"
    assert not await svc.agents.is_verified(who.agent_id)
    oembed.tweets["3"] = f"hello {message}"
    await svc.agents.verify(who.agent_id, "https://x.com/foxtrot/status/3")
    assert await svc.agents.is_verified(who.agent_id)
    profile = await svc.directory.metadata(who.user_id)
    assert profile.verified and profile.twitter_handle == "foxtrot"


async def test_operator_verify_answers_the_agent_and_knows_unknown_names(svc: Services) -> None:
    who = await svc.agents.authenticate(await svc.register("golf"))
    assert await svc.agents.operator_verify("GOLF") == AgentVerification(agent_id=who.agent_id, verified=True)
    assert await svc.agents.is_verified(who.agent_id)
    with pytest.raises(NotFound) as unknown:
        await svc.agents.operator_verify("nobody")
    assert unknown.value.code == "agent_not_found"


async def test_a_new_stream_key_revokes_the_idle_one(svc: Services) -> None:
    who = await svc.agents.authenticate(await svc.register("hotel"))
    first = await svc.agents.new_stream_key(who.agent_id)
    second = await svc.agents.new_stream_key(who.agent_id)
    assert await svc.agents.agent_for_stream_key(first) is None
    found = await svc.agents.agent_for_stream_key(second)
    assert found is not None and found[0].id == who.agent_id
    assert await svc.agents.agent_for_stream_key("not-a-key") is None


async def test_directory_answers_typed_cards_and_profiles(svc: Services) -> None:
    who = await svc.agents.authenticate(await svc.register("India", image_url="https://example.com/i.png"))
    viewer = await svc.viewer("indigo_viewer")
    cards = await svc.directory.search("ind")
    assert [type(card) for card in cards] == [UserCard, UserCard]
    agent_card = next(card for card in cards if card.user_id == who.user_id)
    assert (agent_card.username, agent_card.ticker, agent_card.verified, agent_card.is_live) == (
        "India",
        "TST",
        False,
        False,
    )
    assert agent_card.created_at is not None
    assert [card.user_id for card in await svc.directory.newest()] == [who.user_id], "newest lists agents only"
    profile = await svc.directory.streamer("india")
    assert isinstance(profile, PublicProfile)
    assert profile.user_id == who.user_id and profile.is_agent and profile.token_name == "India"
    assert profile.twitter_handle is None and profile.followers_count == 0
    assert not (await svc.directory.metadata(viewer.id)).is_agent
    with pytest.raises(NotFound):
        await svc.directory.streamer("nobody_here")
    with pytest.raises(ValidationFailed) as bad:
        await svc.directory.search(" ")
    assert bad.value.code == "invalid_query"


async def test_profile_edits_answer_the_new_profile(svc: Services) -> None:
    who = await svc.agents.authenticate(await svc.register("juliet"))
    me = await svc.profiles.me(who.user_id)
    assert isinstance(me, OwnProfile) and me.is_agent and me.kind == "agent" and me.bio == ""
    assert (await svc.profiles.set_bio(who.user_id, "hello")).bio == "hello"
    assert (await svc.profiles.set_token_name(who.user_id, " Juliet Coin ")).token_name == "Juliet Coin"
    renamed = await svc.profiles.set_username(who.user_id, "Juliet2")
    assert renamed.username == "Juliet2"
    banner = await svc.profiles.set_banner(who.user_id, "https://example.com/b.png", "https://example.com")
    assert (banner.banner_url, banner.banner_link) == ("https://example.com/b.png", "https://example.com")
    assert [columns for _user, columns in svc.changed] == [
        {"bio"},
        {"token_name"},
        {"username", "username_key"},
        {"banner_link", "banner_url"},
    ], "each stored change tells this node's caches which columns changed"
    assert all(user_id == who.user_id for user_id, _columns in svc.changed)
    with pytest.raises(ValidationFailed) as long_bio:
        await svc.profiles.set_bio(who.user_id, "x" * 501)
    assert long_bio.value.code == "invalid_bio"
    assert (await svc.profiles.me(who.user_id)).bio == "hello", "a refused edit changes nothing"


async def test_follow_is_idempotent_and_announced_once(svc: Services) -> None:
    streamer = await svc.agents.authenticate(await svc.register("kilo"))
    fan = await svc.viewer("kilo_fan")
    first = await svc.profiles.follow(fan, "KILO")
    again = await svc.profiles.follow(fan, streamer.user_id)
    assert first == again == FollowState(following=True, target_id=streamer.user_id, followers_count=1)
    followed = [event for event in svc.heard if event.name == "user_followed"]
    assert len(followed) == 1 and followed[0].room == f"live_{streamer.user_id}"
    assert await svc.profiles.is_following(fan.id, "kilo")
    page = await svc.profiles.following(fan.id, 10, None)
    assert isinstance(page, Page) and page.next_cursor is None
    assert [(item.user_id, item.username, item.is_live) for item in page.items] == [(streamer.user_id, "kilo", False)]
    with pytest.raises(ValidationFailed) as itself:
        await svc.profiles.follow(fan, fan.id)
    assert itself.value.code == "cannot_follow_self"
    gone = await svc.profiles.unfollow(fan, "kilo")
    assert gone == FollowState(following=False, target_id=streamer.user_id, followers_count=0)
    assert (await svc.profiles.following(fan.id, 10, None)).items == ()
