"""Which database errors mean "retry later" (503) and which stay bugs (500)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from retake.server.overload import ThrottledWarning
from retake.store.availability import availability_problem


class _AdaptedError(Exception):
    """What SQLAlchemy's asyncpg adapter raises: the asyncpg error's SQLSTATE copied onto it."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__("adapted")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"), "overloaded"),
        (sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")), "overloaded"),
        (sa_exc.OperationalError(None, None, sqlite3.OperationalError("unable to open database file")), "unavailable"),
        (sa_exc.DBAPIError("SELECT 1", {}, _AdaptedError("53300"), connection_invalidated=False), "overloaded"),
        (sa_exc.DBAPIError("SELECT 1", {}, _AdaptedError("57P01")), "unavailable"),
        (sa_exc.DBAPIError("SELECT 1", {}, _AdaptedError("08006")), "unavailable"),
        (sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True), "unavailable"),
        (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"), "overloaded"),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), "unavailable"),
        (ConnectionRefusedError(111, "Connection refused"), "unavailable"),
        # Bugs and bad data stay what they are.
        (sa_exc.IntegrityError("INSERT", {}, _AdaptedError("23505")), None),
        (sa_exc.ProgrammingError("SELEC", {}, _AdaptedError("42601")), None),
        (sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: x")), None),
        (ValueError("x"), None),
        (OSError(28, "No space left on device"), None),
    ],
)
def test_availability_problem(error: BaseException, expected: str | None) -> None:
    assert availability_problem(error) == expected


def test_throttled_warning_says_how_many_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    now = [100.0]
    warning = ThrottledWarning(logging.getLogger("test.throttle"), every=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.throttle"):
        for step in range(25):
            now[0] = 100.0 + step
            warning.warn("overloaded %d", step)
    assert [r.getMessage() for r in caplog.records] == [
        "overloaded 0",
        "overloaded 10 (and 9 more in the last 10 s)",
        "overloaded 20 (and 9 more in the last 10 s)",
    ]
