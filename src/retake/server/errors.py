"""The one place where exceptions become HTTP answers: ``{"error": "<sentence>", "code": "<snake_case>"}``."""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from retake.errors import RetakeError
from retake.server.overload import RETRY_AFTER_SECONDS, ThrottledWarning
from retake.store.availability import availability_problem

log = logging.getLogger(__name__)


def _connect_errors() -> tuple[type[Exception], ...]:
    """Raised unwrapped while a connection is opened: asyncpg's own errors and refused sockets. Every other
    database error arrives as an SQLAlchemyError."""
    found: list[type[Exception]] = [ConnectionError]
    with contextlib.suppress(ImportError):  # asyncpg ships no type information, hence the dynamic import
        found.append(importlib.import_module("asyncpg").PostgresError)
    return tuple(found)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status, headers=headers)


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    field = ".".join(loc) or "body"
    kind = str(error.get("type", ""))
    if kind == "nul_character":
        field = str((error.get("ctx") or {}).get("field", field))
        return f"{field} must not contain NUL characters", "invalid_" + field
    if kind == "json_invalid":
        return "request body is not valid JSON", "invalid_json"
    if kind == "missing":
        return f"{field} is required", "missing_field"
    if kind in {"model_attributes_type", "dict_type"} and field == "body":
        return "request body must be a JSON object", "invalid_body"
    return f"{field}: {error.get('msg', 'invalid value')}", "validation_error"


def allowed_methods(request: Request) -> str | None:
    """The documented methods of the requested path. Starlette's 405 names only the first route whose path
    matches, so a path served by two routes (PUT and DELETE of ``/sessions/{id}``) would advertise half of them.
    The most specific templates win: ``/sessions/start`` is not also ``/sessions/{session_id}``."""
    schema: dict[str, Any] = request.app.openapi()
    by_params: dict[int, set[str]] = {}
    for template, operations in schema.get("paths", {}).items():
        parts = re.split(r"\{[^/}]+\}", template)
        if re.fullmatch("[^/]+".join(re.escape(part) for part in parts), request.url.path):
            found = by_params.setdefault(len(parts) - 1, set())
            found |= {m.upper() for m in operations if m.upper() in _METHODS}
    methods = by_params[min(by_params)] if by_params else set()
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RetakeError)
    async def _retake_error(_request: Request, exc: RetakeError) -> JSONResponse:
        headers = None
        if exc.retry_after is not None:
            headers = {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
        return error_response(exc.status, exc.message, exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message, code = _describe(errors[0]) if errors else ("invalid request", "validation_error")
        return error_response(400, message, code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif isinstance(exc.detail, str) and exc.detail:
            message = exc.detail
        else:
            message = code.replace("_", " ")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return error_response(exc.status_code, message, code, headers or None)

    database_warning = ThrottledWarning(log)

    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        """Overload and outages are answered 503 with Retry-After and one log line; any other database error
        goes on to ``_unexpected`` below (a 500 with its traceback), as before."""
        problem = availability_problem(exc)
        if problem is None:
            raise exc
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        database_warning.warn("database %s, answering 503: %s: %s", problem, type(exc).__name__, first_line)
        if problem == "overloaded":
            message, retry = "the server is overloaded; retry after the time in Retry-After", RETRY_AFTER_SECONDS
        else:
            message, retry = "the database is unavailable; retry after the time in Retry-After", 5
        return error_response(503, message, problem, {"Retry-After": str(retry)})

    kinds: tuple[type[Exception], ...] = (SQLAlchemyError, *_connect_errors())
    for kind in kinds:
        app.add_exception_handler(kind, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal server error; it has been logged", "internal_error")
