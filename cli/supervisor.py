"""`shouwang up`: run the service's processes in the foreground and stop them all on Ctrl-C.

Children run in their own sessions (so a terminal's Ctrl-C reaches only us and we stop them
in order) and get SIGTERM from the kernel if this process dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # Not Linux (no libc.so.6): children are still stopped on a normal exit.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Supervisor:
    """Starts children, watches them, stops them in reverse order."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)
    stop_timeout: float = 20.0
    signals_seen: int = 0

    def spawn(self, name: str, argv: Sequence[str]) -> Child:
        child = Child(name, argv)
        child.process = subprocess.Popen(list(argv), env=self.env, start_new_session=True, preexec_fn=_die_with_parent)
        self.children.append(child)
        log.info("started %s (pid %d)", name, child.process.pid)
        return child

    def trap_signals(self) -> None:
        """From now on SIGINT/SIGTERM ask for a stop instead of raising: a second Ctrl-C during
        the shutdown must not abort it half-way and leave the broker running."""

        def on_signal(_signum: int, _frame: object) -> None:
            self.signals_seen += 1
            if self.signals_seen > 1:
                log.warning("already stopping; the remaining processes get less time")

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)

    def wait(self) -> int:
        """Block until a child exits or we are told to stop; return the exit status."""
        self.trap_signals()
        while not self.signals_seen:
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    log.error("%s exited with code %d; stopping the others", child.name, code)
                    return code or 1
            time.sleep(0.2)
        return 0

    def stop_all(self) -> None:
        for child in reversed(self.children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + self.stop_timeout
            while process.poll() is None and time.monotonic() < deadline and self.signals_seen < 2:
                time.sleep(0.1)
            if process.poll() is None:
                log.warning("%s did not stop in time; killing it", child.name)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.info("stopped %s", child.name)


def shouwang_command(*args: str) -> list[str]:
    """argv that runs a ``shouwang`` subcommand with this interpreter."""
    return [sys.executable, "-m", "cli", *args]
