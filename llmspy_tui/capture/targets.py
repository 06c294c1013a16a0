"""Find the files to hook: every OpenSSL-compatible libssl and every executable exporting SSL_write.

Uprobes bind to an inode, so one attachment covers every process, current and future, that maps
the file. Files are therefore deduplicated by (st_dev, st_ino), whatever path they were seen under
(symlinks, bind mounts, /proc/PID/root of a container).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import dataclass

from .elf import is_ssl_target
from .procinfo import list_pids

_LIBSSL_RE = re.compile(r"libssl[^/]*\.so")
# Mapped objects worth an ELF check: libssl and anything else with "ssl" in its name (e.g. a
# Python _ssl module that statically links OpenSSL and exports its symbols). The check decides.
_SSLISH_RE = re.compile(r"ssl[^/]*\.so", re.I)


@dataclass(frozen=True, slots=True)
class Target:
    path: str  # a path that opens the file from the monitor's mount namespace
    dev: int
    ino: int
    functions: frozenset[str]
    origin: str  # "ldconfig", "bin", "maps:PID", "exe:PID", "exec:PID"

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.ino)


def ldconfig_libssl() -> list[str]:
    """libssl paths known to the dynamic linker cache."""
    try:
        out = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    paths = []
    for line in out.splitlines():
        if "=>" not in line:
            continue
        name, _, path = line.partition("=>")
        if _LIBSSL_RE.search(name.strip().split()[0] if name.strip() else ""):
            paths.append(path.strip())
    return paths


# Executables that carry OpenSSL themselves (Node, for one) are found at start in the usual
# program directories, so that their processes are hooked from their first byte rather than
# tens of milliseconds after their exec. OpenSSL alone is megabytes: smaller files are skipped
# without opening them, which keeps this scan to a few tens of milliseconds.
BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
            "/opt/bin", "/snap/bin")
MIN_STATIC_SSL_SIZE = 1 << 20


def program_files(dirs: tuple[str, ...] | list[str]) -> list[str]:
    """Regular files large enough to hold OpenSSL, in `dirs` (each inode once)."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat()  # follows symlinks: /usr/bin/node -> ../lib/node/bin/node
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if not stat.S_ISREG(st.st_mode) or st.st_size < MIN_STATIC_SSL_SIZE or key in seen:
                continue
            seen.add(key)
            found.append(e.path)
    return found


def default_bin_dirs() -> list[str]:
    """The standard program directories plus the monitor's own PATH."""
    dirs = list(BIN_DIRS)
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d.startswith("/") and d not in dirs:
            dirs.append(d)
    return dirs


def mapped_ssl_objects(pid: int, proc: str = "/proc") -> list[str]:
    """Mapped files with "ssl" in their name (libssl and the like), as paths reachable through its root."""
    try:
        with open(f"{proc}/{pid}/maps", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    if b"ssl" not in raw.lower():
        return []  # the common case, decided without splitting thousands of lines
    found: list[str] = []
    seen: set[str] = set()
    for line in raw.decode("utf-8", "replace").splitlines():
        if "ssl" not in line.lower():
            continue
        parts = line.split(maxsplit=5)
        if len(parts) < 6:
            continue
        path = parts[5].strip()
        if not path.startswith("/") or path.endswith("(deleted)") or path in seen:
            continue
        seen.add(path)
        if _SSLISH_RE.search(os.path.basename(path)):
            found.append(f"{proc}/{pid}/root{path}")
    return found


def process_exe(pid: int, proc: str = "/proc") -> str | None:
    """The executable of a process, as a path reachable from here."""
    try:
        os.readlink(f"{proc}/{pid}/exe")
    except OSError:
        return None
    return f"{proc}/{pid}/exe"


class TargetIndex:
    """Every file examined, by inode, with its verdict: so each file is checked once."""

    def __init__(self) -> None:
        self.verdicts: dict[tuple[int, int], Target | None] = {}

    def examine(self, path: str, origin: str) -> Target | None:
        """Return a *new* target for `path` (first time its inode is seen and it qualifies)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_dev, st.st_ino)
        if key in self.verdicts:
            return None
        funcs = is_ssl_target(path)
        if not funcs:
            self.verdicts[key] = None
            return None
        real = _stable_path(path)
        target = Target(real, st.st_dev, st.st_ino, frozenset(funcs), origin)
        self.verdicts[key] = target
        return target

    @property
    def targets(self) -> list[Target]:
        return [t for t in self.verdicts.values() if t is not None]

    def scan_process(self, pid: int, proc: str = "/proc") -> list[Target]:
        new = []
        exe = process_exe(pid, proc)
        if exe:
            t = self.examine(exe, f"exe:{pid}")
            if t:
                new.append(t)
        for path in mapped_ssl_objects(pid, proc):
            t = self.examine(path, f"maps:{pid}")
            if t:
                new.append(t)
        return new

    def scan_host(self, proc: str = "/proc", pids: list[int] | None = None,
                  linker_cache: bool = True, bin_dirs: list[str] | None = None) -> list[Target]:
        """Linker cache and program directories (at start only) plus every process's exe and maps."""
        new = []
        for path in ldconfig_libssl() if linker_cache else ():
            t = self.examine(path, "ldconfig")
            if t:
                new.append(t)
        for path in program_files(bin_dirs) if bin_dirs else ():
            t = self.examine(path, "bin")
            if t:
                new.append(t)
        for pid in pids if pids is not None else list_pids(proc):
            new.extend(self.scan_process(pid, proc))
        return new


def _stable_path(path: str) -> str:
    """Prefer a path that outlives the process it was found through.

    /proc/PID/exe and /proc/PID/root/... vanish with the process; bcc needs a path only at
    attach time, but keeping a real path makes logs and the record header meaningful.
    """
    m = re.match(r"^/proc/(\d+)/(exe|root(/.*))$", path)
    if not m:
        return path
    try:
        if m.group(2) == "exe":
            real = os.readlink(path)
            root_real = f"/proc/{m.group(1)}/root{real}"
        else:
            real = m.group(3)
            root_real = path
        # Same file from our mount namespace? Then the plain path is usable.
        a, b = os.stat(real), os.stat(root_real)
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
            return real
    except OSError:
        pass
    return path
