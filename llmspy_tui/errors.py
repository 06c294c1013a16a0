"""Errors meant for the user: one clear line and an exit code, never a traceback."""


class UserError(Exception):
    """A problem the user can act on. str(e) is the whole message."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
