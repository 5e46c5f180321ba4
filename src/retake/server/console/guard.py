"""The console's doors: the session cookie, the CSRF form token and the Origin check.

The cookie (``retake_console``) is HttpOnly, SameSite=Strict, limited to ``/admin``, and Secure whenever the
console is reached over https (or the public URL is https, i.e. TLS ends at a proxy). Every POST must come from
this site (``Origin``, or ``Referer`` when a browser leaves Origin out, names this origin or the public URL's)
and carry the form token of its session in the hidden ``csrf`` field. The sign-in form has no session yet, so it
carries a random value that must equal a short-lived cookie set with the form (double submit).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from retake.accounts.operators import SESSION_LIFETIME
from retake.server.platform import Platform

SESSION_COOKIE = "retake_console"
LOGIN_COOKIE = "retake_console_login"
COOKIE_PATH = "/admin"
MAX_FORM_BYTES = 16 * 1024


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def secure_cookies(request: Request, platform: Platform) -> bool:
    return request.url.scheme == "https" or platform.settings.public_url.startswith("https://")


def same_origin(request: Request, platform: Platform) -> bool:
    """True when the POST comes from a page of this site."""
    claimed = request.headers.get("origin") or ""
    if not claimed or claimed == "null":
        referer = request.headers.get("referer") or ""
        claimed = _origin(referer) if referer else ""
    if not claimed:
        return False
    allowed = {_origin(str(request.base_url)), _origin(platform.settings.public_url)}
    return claimed.lower().rstrip("/") in allowed


def set_session_cookie(response: Response, secret: str, *, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        secure=secure,
        samesite="strict",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, secure=secure, samesite="strict")


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def set_login_nonce(response: Response, nonce: str, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=1800, path=COOKIE_PATH, httponly=True, secure=secure, samesite="strict"
    )


def login_nonce_matches(request: Request, presented: str) -> bool:
    cookie = request.cookies.get(LOGIN_COOKIE) or ""
    return bool(cookie) and hmac.compare_digest(cookie.encode(), presented.encode())
