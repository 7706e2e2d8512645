"""Errors a user can cause and fix."""


class UserError(Exception):
    """A problem with the user's input; its message is one line that names the problem and the fix.

    The command line prints it without a traceback and exits with a non-zero status.
    """


class Interrupted(Exception):
    """Training stopped by the user (Ctrl-C); the message says what was kept and how to continue.
    The command line exits with 130, as a shell does for SIGINT."""
