"""Tell "the database cannot take this request now" apart from every other database error.

Under overload a request waits for a pooled connection (``Settings.db_pool_timeout_seconds``) and then fails
with ``sqlalchemy.exc.TimeoutError``; PostgreSQL may refuse new connections (``too many clients``) or be
restarting; SQLite may stay locked past its busy timeout. None of these is the client's fault or a bug: the
HTTP edge answers them 503 with ``Retry-After`` and logs one line, instead of a 500 with a traceback.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import exc as sa_exc

Availability = Literal["overloaded", "unavailable"]

# SQLSTATE classes and codes (PostgreSQL manual, Appendix A): 08 connection exception, 53 insufficient
# resources (53300 too_many_connections), 57P01-57P03 admin/crash shutdown and cannot_connect_now.
_OVERLOADED_CLASSES = ("53",)
_UNAVAILABLE_CLASSES = ("08",)
_UNAVAILABLE_CODES = frozenset({"57P01", "57P02", "57P03"})


def _sqlstate(error: BaseException | None) -> str | None:
    """asyncpg errors carry ``sqlstate``; SQLAlchemy's asyncpg adapter copies it onto the DBAPI error."""
    seen = 0
    while error is not None and seen < 4:  # the adapter's error, then asyncpg's as its __cause__
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
        error, seen = error.__cause__, seen + 1
    return None


def _by_sqlstate(state: str | None) -> Availability | None:
    if state is None:
        return None
    if state.startswith(_OVERLOADED_CLASSES):
        return "overloaded"
    if state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_CODES:
        return "unavailable"
    return None


def availability_problem(error: BaseException) -> Availability | None:
    """``overloaded`` (no connection free in time, too many connections, SQLite locked), ``unavailable``
    (the database cannot be reached or is restarting), or None for every other error (a bug, a constraint)."""
    if isinstance(error, sa_exc.TimeoutError):  # the pool: no connection free within the pool timeout
        return "overloaded"
    if isinstance(error, sa_exc.DBAPIError):
        found = _by_sqlstate(_sqlstate(error.orig))
        if found is not None:
            return found
        if isinstance(error, sa_exc.OperationalError) and "database is locked" in str(error.orig):
            return "overloaded"  # SQLite: another writer held the lock past busy_timeout
        # No statement: the error came from opening a connection (SQLAlchemy wraps DBAPI connect errors
        # without one), e.g. SQLite cannot open its file or the server refused us.
        if error.connection_invalidated or (error.statement is None and isinstance(error, sa_exc.OperationalError)):
            return "unavailable"
        return None
    found = _by_sqlstate(_sqlstate(error))  # asyncpg raises its own errors unwrapped while connecting
    if found is not None:
        return found
    if isinstance(error, ConnectionRefusedError | ConnectionResetError):  # nothing listens at the database port
        return "unavailable"
    return None
