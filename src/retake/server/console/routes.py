"""The operator console at ``/admin``: server-rendered pages, plain HTML forms, no script.

GET pages read (``reads.py``); every POST is checked (same origin, signed in, the session's form token) and then
acts through ``OperatorActions`` (the services the API and ``retake admin`` use, plus the audit log), and answers
with a redirect to the page it came from (post/redirect/get), whose banner says what was done. A refusal by a
service re-renders the page with the service's status and message; a role refusal is a 403 page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from retake.accounts.audit import AuditLog
from retake.accounts.operators import OperatorAccounts, SignedIn, csrf_matches
from retake.errors import Forbidden, RetakeError, Unauthorized
from retake.server.api.deps import PlatformDep
from retake.server.console import guard, reads
from retake.server.console.actions import Actor, OperatorActions, may
from retake.server.platform import Platform

router = APIRouter(prefix="/admin", include_in_schema=False)

# Stricter than the public pages: the console runs no script at all and takes no inline style.
CONSOLE_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' http: https: data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
CONSOLE_HEADERS = {
    "Content-Security-Policy": CONSOLE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NOTICES = {
    "warn": "{target} was warned: the warning is in its chat and its stream status.",
    "shutdown": "Shutdown of {target}'s stream sent: the node holding it ends it within seconds.",
    "verify": "{target} is verified.",
    "suspend": "{target} is suspended: no stream keys, no new session, no chat.",
    "unsuspend": "{target} is no longer suspended.",
    "delete_message": "The message was deleted from every viewer's chat.",
    "jail": "{target} is jailed in that chat.",
}
_TARGET_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


@dataclass(frozen=True)
class Done:
    notice: str  # a key of NOTICES
    target: str
    page: str
    query: str = ""


def _actions(platform: Platform) -> OperatorActions:
    """Built per request from the node's services: it holds no state of its own."""
    return OperatorActions(
        platform.sessions, platform.agents, platform.operator, platform.moderation, AuditLog(platform.sessions)
    )


async def _me(request: Request, platform: Platform) -> SignedIn | None:
    return await OperatorAccounts(platform.sessions).session_of(request.cookies.get(guard.SESSION_COOKIE))


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, f"admin/{template}", context, status_code=status_code, headers=CONSOLE_HEADERS
    )


def _to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def _notice(request: Request) -> str:
    key, target = request.query_params.get("done", ""), request.query_params.get("target", "")
    if key not in NOTICES or not (target == "" or _TARGET_RE.match(target)):
        return ""
    return NOTICES[key].format(target=target)


# -- pages ---------------------------------------------------------------------------------------------------


async def _page(
    request: Request, platform: Platform, me: SignedIn, page: str, *, status_code: int = 200, error: str = ""
) -> HTMLResponse:
    context: dict[str, Any] = {"me": me, "nav": page, "error": error, "notice": "" if error else _notice(request)}
    context["can"] = {action: may(Actor(me.name, me.role), action) for action in ("shutdown", "verify", "suspend")}
    if page == "streams":
        context["streams"] = await reads.live_streams(platform)
    elif page == "agents":
        context["q"] = request.query_params.get("q", "")[:64]
        context["agents"] = await reads.agents(platform, context["q"])
    elif page == "chat":
        context["messages"] = await reads.recent_messages(platform.sessions)
    else:
        context["entries"] = await _actions(platform).audit.recent()
    return _render(request, f"{page}.html", status_code=status_code, **context)


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def console_home(request: Request, platform: PlatformDep) -> Response:
    return _to("/admin/streams" if await _me(request, platform) else "/admin/login")


# -- signing in and out ----------------------------------------------------------------------------------------


def _login_form(request: Request, platform: Platform, *, status_code: int = 200, error: str = "") -> HTMLResponse:
    nonce = guard.new_nonce()
    response = _render(request, "login.html", status_code=status_code, error=error, nonce=nonce)
    guard.set_login_nonce(response, nonce, secure=guard.secure_cookies(request, platform))
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, platform: PlatformDep) -> Response:
    if await _me(request, platform) is not None:
        return _to("/admin/streams")
    return _login_form(request, platform)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, platform: PlatformDep) -> Response:
    form = await _form(request)
    if not guard.same_origin(request, platform) or not guard.login_nonce_matches(request, form.get("csrf", "")):
        return _refused(request, "The sign-in form did not come from this console: open it again and retry.")
    try:
        secret, _who = await OperatorAccounts(platform.sessions).sign_in(form.get("token", ""))
    except Unauthorized:
        return _login_form(request, platform, status_code=401, error="That token does not sign anyone in.")
    response = _to("/admin/streams")
    secure = guard.secure_cookies(request, platform)
    guard.set_session_cookie(response, secret, secure=secure)
    response.delete_cookie(guard.LOGIN_COOKIE, path=guard.COOKIE_PATH, secure=secure, httponly=True)
    return response


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, platform: PlatformDep) -> Response:
    async def sign_out(_actor: Actor, _form: dict[str, str]) -> None:
        await OperatorAccounts(platform.sessions).sign_out(request.cookies.get(guard.SESSION_COOKIE, ""))

    refused = await _checked(request, platform, "streams", sign_out)
    if refused is not None:
        return refused
    response = _to("/admin/login")
    guard.clear_session_cookie(response, secure=guard.secure_cookies(request, platform))
    return response


# -- actions ---------------------------------------------------------------------------------------------------


def _agent_action(what: str) -> Callable[[OperatorActions, Actor, dict[str, str]], Awaitable[Done]]:
    async def act(actions: OperatorActions, actor: Actor, form: dict[str, str]) -> Done:
        name, reason = form.get("agent", ""), form.get("reason", "")
        if what == "warn":
            await actions.warn(actor, name, reason)
        elif what == "shutdown":
            await actions.shutdown(actor, name, reason)
        elif what == "verify":
            await actions.verify(actor, name)
        else:
            await actions.set_suspended(actor, name, what == "suspend")
        return Done(what, name, PAGE_OF[what], form.get("q", "")[:64])

    return act


async def _delete(actions: OperatorActions, actor: Actor, form: dict[str, str]) -> Done:
    await actions.delete_message(actor, form.get("chat_event_id", ""))
    return Done("delete_message", "", "chat")


async def _jail(actions: OperatorActions, actor: Actor, form: dict[str, str]) -> Done:
    state = await actions.jail(actor, form.get("chat_event_id", ""))
    return Done("jail", state.username, "chat")


ACTIONS: dict[str, Callable[[OperatorActions, Actor, dict[str, str]], Awaitable[Done]]] = {
    "warn": _agent_action("warn"),
    "shutdown": _agent_action("shutdown"),
    "verify": _agent_action("verify"),
    "suspend": _agent_action("suspend"),
    "unsuspend": _agent_action("unsuspend"),
    "delete": _delete,
    "jail": _jail,
}
PAGE_OF = {"warn": "streams", "shutdown": "streams", "verify": "agents", "suspend": "agents"}
PAGE_OF |= {"unsuspend": "agents", "delete": "chat", "jail": "chat"}


@router.post("/act/{what}", response_class=HTMLResponse)
async def act(what: str, request: Request, platform: PlatformDep) -> Response:
    if what not in ACTIONS:
        return _render(request, "refused.html", status_code=404, title="No such action", message=f"“{what[:40]}”?")
    done: list[Done] = []
    actions = _actions(platform)

    async def run(actor: Actor, form: dict[str, str]) -> None:
        done.append(await ACTIONS[what](actions, actor, form))

    refused = await _checked(request, platform, PAGE_OF[what], run)
    if refused is not None:
        return refused
    result = done[0]
    query = {"done": result.notice, "target": result.target} if result.notice else {}
    if result.query:
        query["q"] = result.query
    return _to(f"/admin/{result.page}" + (f"?{urlencode(query)}" if query else ""))


async def _checked(
    request: Request, platform: Platform, page: str, run: Callable[[Actor, dict[str, str]], Awaitable[None]]
) -> Response | None:
    """Run a POST's action once every check passed; a response when it was refused, else None."""
    if not guard.same_origin(request, platform):
        return _refused(request, "This form did not come from the console (its origin is another site).")
    me = await _me(request, platform)
    if me is None:
        return _to("/admin/login")
    form = await _form(request)
    if not csrf_matches(request.cookies.get(guard.SESSION_COOKIE, ""), form.get("csrf", "")):
        return _refused(request, "This form's security token is missing or stale: reload the page and retry.")
    try:
        await run(Actor(me.name, me.role), form)
    except Forbidden as exc:
        if exc.code != "role_forbidden":
            return await _page(request, platform, me, page, status_code=exc.status, error=exc.message)
        return _render(request, "refused.html", status_code=403, me=me, title="Not for your role", message=exc.message)
    except RetakeError as exc:
        return await _page(request, platform, me, page, status_code=exc.status, error=exc.message)
    return None


def _refused(request: Request, message: str) -> HTMLResponse:
    return _render(request, "refused.html", status_code=403, title="Request refused", message=message)


async def _form(request: Request) -> dict[str, str]:
    if int(request.headers.get("content-length") or 0) > guard.MAX_FORM_BYTES:
        return {}
    try:
        form = await request.form(max_files=0, max_fields=20)
    except Exception:  # a malformed body is treated as an empty form: every check then refuses it
        return {}
    return {key: value for key, value in form.items() if isinstance(value, str)}


PAGES = frozenset({"streams", "agents", "chat", "audit"})


@router.get("/{page}", response_class=HTMLResponse)
async def console_page(page: str, request: Request, platform: PlatformDep) -> Response:
    """Last in this module, so /admin/login is matched before it."""
    me = await _me(request, platform)
    if page not in PAGES:
        return _render(request, "refused.html", status_code=404, me=me, title="No such page", message="")
    if me is None:
        return _to("/admin/login")
    return await _page(request, platform, me, page)
