"""Export files are created private (0600) and new.

An export holds prompts, replies and (with --show-secrets) credentials, and the monitor usually
runs as root: so an export never replaces an existing file, never follows a symbolic link
planted at its path (a classic way to make root overwrite /etc/something), and is readable by
its owner only. Failures become one-line UserErrors saying what to do.
"""

from __future__ import annotations

import errno
import os
from typing import BinaryIO

from ..errors import UserError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _why(path: str, e: OSError) -> str:
    """A message for a failed create, naming what the user can change."""
    if e.errno == errno.EEXIST or e.errno == errno.ELOOP:
        kind = "is a symbolic link" if os.path.islink(path) else "already exists"
        return f"llmspy-tui: {path} {kind}; choose another name (an export never overwrites a file)"
    if e.errno == errno.ENOENT:
        parent = os.path.dirname(os.path.abspath(path))
        return f"llmspy-tui: cannot create {path}: directory {parent} does not exist"
    if e.errno == errno.ENOTDIR:
        return f"llmspy-tui: cannot create {path}: a part of the path is not a directory"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"llmspy-tui: cannot create {path}: permission denied (choose a directory you can write to)"
    if e.errno == errno.EISDIR:
        return f"llmspy-tui: {path} is a directory; choose a file name"
    return f"llmspy-tui: cannot create {path}: {e.strerror or e}"


def create_private(path: str) -> BinaryIO:
    """Create `path` as a new file with mode 0600 and return it open for binary writing."""
    try:
        fd = os.open(path, _FLAGS, 0o600)
    except OSError as e:
        raise UserError(_why(path, e)) from None
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow it; be explicit anyway
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str, data: bytes) -> str:
    """Write `data` to a new private file at `path`; return its absolute path.

    On a write error (disk full, quota) the partial file is removed: a truncated export looks
    complete to whoever opens it later.
    """
    f = create_private(path)
    try:
        with f:
            f.write(data)
    except OSError as e:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise UserError(f"llmspy-tui: cannot write {path}: {e.strerror or e} (nothing was kept)") from None
    return os.path.abspath(path)
