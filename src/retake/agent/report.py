"""How the runtime tells a person what it is doing. The CLI passes a Rich implementation (spinners and
status lines); library users get log records by default."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

log = logging.getLogger("retake.agent")


class Reporter(Protocol):
    def step(self, text: str) -> AbstractContextManager[None]: ...
    def info(self, text: str) -> None: ...
    def ok(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def error(self, text: str) -> None: ...


class LogReporter:
    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        log.info("%s…", text)
        yield

    def info(self, text: str) -> None:
        log.info("%s", text)

    def ok(self, text: str) -> None:
        log.info("%s", text)

    def warn(self, text: str) -> None:
        log.warning("%s", text)

    def error(self, text: str) -> None:
        log.error("%s", text)


class WarnOnce:
    """One warning per topic until the topic recovers: a loop that fails every round must not flood the console."""

    def __init__(self, report: Reporter) -> None:
        self.report = report
        self._warned: set[str] = set()

    def __call__(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            self.report.warn(message)

    def clear(self, topic: str) -> None:
        """The topic works again: its next failure is reported."""
        self._warned.discard(topic)
