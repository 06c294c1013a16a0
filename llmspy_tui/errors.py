"""Errors meant for the user: one clear line and an exit code, never a traceback."""


class UserError(Exception):
    """A problem the user can act on. str(e) is the whole message."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_guarded(func, *args) -> int:
    """Run a command's body and turn whatever escapes it into one line on stderr and an exit
    code: the last line of defence of every entry point."""
    import os
    import sys

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        return func(*args)
    except UserError as e:
        log(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except Exception as e:
        log(f"llmspy-tui: internal error: {type(e).__name__}: {e} "
            "(please report it; set LLMSPY_DEBUG=1 for a traceback)")
        if os.environ.get("LLMSPY_DEBUG"):
            raise
        return 70
