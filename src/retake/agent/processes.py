"""Child processes of the go-live runtime (Xvfb, xterm, ffmpeg), each ended by the PID we started.

Children run in their own session, so a Ctrl-C in the terminal reaches only the runtime, which then stops
them in order (stream first, encoder, window, display). On Linux each child also gets ``PR_SET_PDEATHSIG``:
if the runtime itself is killed with SIGKILL, the kernel ends its children instead of leaving an encoder
pushing to the platform forever. The death signal follows the *thread* that forked, so children are always
started from the event loop's thread, never from a worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from retake.agent.commands import Size, xvfb_command

PR_SET_PDEATHSIG = 1


def _death_signal_hook() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl  # resolved here, before any fork

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


_PDEATHSIG = _death_signal_hook()


class ProcessError(RuntimeError):
    """A child could not be started, or did not come up."""


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path | None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def log_tail(self, lines: int = 8) -> str:
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM to our PID, then SIGKILL after ``timeout``; reaps the child. Safe to call twice."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode


def spawn(
    name: str,
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Child:
    log = log_path.open("ab") if log_path else None
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            pass_fds=pass_fds,
            start_new_session=True,
            preexec_fn=_PDEATHSIG,  # only prctl(2), resolved before the fork
        )
    except OSError as exc:
        raise ProcessError(f"cannot start {name} ({argv[0]}): {exc.strerror}") from exc
    finally:
        if log:
            log.close()
    return Child(name, argv, process, log_path)


def start_xvfb(size: Size, log_path: Path | None = None, timeout: float = 10.0) -> tuple[Child, str]:
    """Xvfb on a free display (``-displayfd``); returns the child and ``":<n>"`` once it accepts clients."""
    read_fd, write_fd = os.pipe()
    try:
        child = spawn("Xvfb", xvfb_command(size, write_fd), log_path=log_path, pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    try:
        number = _read_display(read_fd, timeout)
    except ProcessError:
        child.stop()
        raise
    finally:
        os.close(read_fd)
    if not number.isdigit():
        child.stop()
        raise ProcessError(f"Xvfb did not report a display number: {child.log_tail()}")
    return child, f":{number}"


def _read_display(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProcessError(f"Xvfb did not start within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 64)
        if not chunk:  # Xvfb exited without writing its number
            break
        data += chunk
    return data.decode("ascii", "replace").strip()


def child_env(display: str | None = None, drop: tuple[str, ...] = ("RETAKE_ACCESS_TOKEN",)) -> dict[str, str]:
    """Our environment for a child, with ``DISPLAY`` set and the access token left out: no child needs it."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if display is not None:
        env["DISPLAY"] = display
    return env
