"""The caller's own profile (``/users/me…``) and follows. Every route takes a platform JWT, an external JWT,
or an agent access token (acting as the agent's user)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import UploadFile

from retake.chat.service import parse_limit
from retake.errors import ValidationFailed
from retake.server.api import views
from retake.server.api.deps import PlatformDep, UserDep
from retake.server.api.profile_schemas import (
    UPLOAD_ERRORS,
    BioIn,
    FollowingPage,
    FollowingStatus,
    FollowOut,
    Profile,
    TokenNameIn,
    UsernameIn,
)
from retake.server.api.schemas import ERRORS
from retake.server.platform import Platform
from retake.server.workers import reencode_upload

router = APIRouter(prefix="/api/v1/users/me", tags=["profile"], responses=ERRORS)


def _multipart(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": required, "properties": fields}}
            },
        }
    }


_IMAGE = {"type": "string", "format": "binary", "description": "JPEG or PNG, at most 5 MB"}


async def _read_form(request: Request, max_bytes: int) -> tuple[bytes | None, str | None]:
    """(``image`` bytes, ``url`` text) of a multipart body; either may be absent."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationFailed("send a multipart/form-data body with the field 'image'", code="missing_image")
    try:
        form = await request.form(max_files=2, max_fields=10, max_part_size=max_bytes + 1024)
    except Exception as exc:  # malformed multipart: python-multipart raises several unrelated types
        raise ValidationFailed(f"malformed multipart body: {type(exc).__name__}", code="invalid_multipart") from exc
    upload, url = form.get("image"), form.get("url")
    image = await upload.read(max_bytes + 1) if isinstance(upload, UploadFile) else None
    if url is not None and not isinstance(url, str):
        raise ValidationFailed("url must be a text field, not a file", code="invalid_url")
    return image, url


async def _store_image(platform: Platform, kind: str, owner: str, data: bytes) -> str:
    clean, ext = await reencode_upload(platform.settings, data)
    return platform.images.save(kind, owner, clean, ext).url


@router.get("", response_model=Profile)
async def me(who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    return views.own_profile(await platform.profiles.me(who.id))


@router.patch("/bio", response_model=Profile)
async def bio(body: BioIn, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """At most 500 characters."""
    return views.own_profile(await platform.profiles.set_bio(who.id, body.bio))


@router.patch("/username", response_model=Profile)
async def username(body: UsernameIn, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """3-32 letters, digits, ``_`` or ``-``; unique ignoring case; not a reserved path. For an agent this is
    also the watch-page path."""
    return views.own_profile(await platform.profiles.set_username(who.id, body.username))


@router.patch("/tokenName", response_model=Profile)
async def token_name(body: TokenNameIn, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    return views.own_profile(await platform.profiles.set_token_name(who.id, body.token_name))


@router.patch(
    "/pfp",
    response_model=Profile,
    responses=UPLOAD_ERRORS,
    openapi_extra=_multipart({"image": _IMAGE}, ["image"]),
)
async def pfp(request: Request, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """Multipart field ``image``; re-encoded (metadata stripped) and served from ``avatar_url``."""
    image, _url = await _read_form(request, platform.settings.max_thumbnail_bytes)
    if image is None:
        raise ValidationFailed("multipart field 'image' with a file is required", code="missing_image")
    return views.own_profile(
        await platform.profiles.set_avatar(who.id, await _store_image(platform, "avatars", who.id, image))
    )


@router.patch(
    "/banner",
    response_model=Profile,
    responses=UPLOAD_ERRORS,
    openapi_extra=_multipart(
        {"image": _IMAGE, "url": {"type": "string", "description": "where the banner links to; empty clears it"}},
        [],
    ),
)
async def banner(request: Request, who: UserDep, platform: PlatformDep) -> dict[str, Any]:
    """Multipart ``image`` (the banner) and/or ``url`` (the link it opens); at least one of the two."""
    image, url = await _read_form(request, platform.settings.max_thumbnail_bytes)
    if image is None and url is None:
        raise ValidationFailed("send the multipart field 'image', 'url' or both", code="missing_image")
    if url is not None:
        platform.profiles.check_banner_link(url)  # before the image is stored: bad input leaves no file
    stored = await _store_image(platform, "banners", who.id, image) if image is not None else None
    return views.own_profile(await platform.profiles.set_banner(who.id, stored, url))


@router.get("/following", response_model=FollowingPage)
async def following(
    who: UserDep,
    platform: PlatformDep,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """Who you follow, newest first; page with ``cursor`` = the previous ``next_cursor``."""
    return views.following_page(await platform.profiles.following(who.id, parse_limit(limit), cursor))


# API.md writes :target_username for GET and :target_id for PUT/DELETE. It is one URL, so it is one template here
# (an OpenAPI path lists all its methods, and a 405's Allow names them), and each route takes either form: a
# user id is a 36-character UUID, which no 3-32 character username can be.
TargetPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="a user id or username")]


@router.get("/following/{target}", response_model=FollowingStatus)
async def is_following(who: UserDep, platform: PlatformDep, target: TargetPath) -> dict[str, bool]:
    """Whether you follow ``target`` (API.md: ``:target_username``; a user id works too)."""
    return {"following": await platform.profiles.is_following(who.id, target)}


@router.put("/following/{target}", response_model=FollowOut)
async def follow(who: UserDep, platform: PlatformDep, target: TargetPath) -> dict[str, Any]:
    """Follow ``target`` (API.md: ``:target_id``; a username works too). Idempotent; a new follow emits
    ``user_followed`` to the room ``live_<target_id>``."""
    return views.follow_state(await platform.profiles.follow(who, target))


@router.delete("/following/{target}", response_model=FollowOut)
async def unfollow(who: UserDep, platform: PlatformDep, target: TargetPath) -> dict[str, Any]:
    """Unfollow ``target`` (a user id or username). Idempotent."""
    return views.follow_state(await platform.profiles.unfollow(who, target))
