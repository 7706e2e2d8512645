"""Errors a user can cause and fix, and the signals that stop a command."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class UserError(Exception):
    """A problem with the user's input; its message is one line that names the problem and the fix.

    The command line prints it without a traceback and exits with a non-zero status.
    """


class Interrupted(Exception):
    """Training stopped by a signal (Ctrl-C, or SIGTERM from a job scheduler); the message says what was
    kept and how to continue. The command line exits as a shell does for that signal: 128 + its number."""

    def __init__(self, message: str, status: int = 130) -> None:
        super().__init__(message)
        self.status = status


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C (the last finished epoch saved)."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's time limit, `kill`) raises Terminated, so it stops what runs as Ctrl-C
    does; in the main thread only (elsewhere a signal handler cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def command_name() -> str:
    """How the user called the command line (`bcl-dali`, `cli.py`, `python -m bcl_dali`), for the
    commands a message tells them to run; `bcl-dali` when no command is running."""
    import click

    context = click.get_current_context(silent=True)
    return context.find_root().info_name if context is not None else "bcl-dali"
