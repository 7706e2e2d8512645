"""The one error type of split/: it imports nothing of the project, so every package can use split/."""


class SplitError(ValueError):
    """A bad split input; the message is one line that names the problem and the fix. The command
    line prints it like any other user error."""
