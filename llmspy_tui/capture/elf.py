"""ELF checks with pyelftools: does a file export the OpenSSL functions we hook?

Uses the .gnu.hash/.hash table for O(1) lookups: Node's binary has ~100k dynamic symbols,
and this runs right after every exec of a new binary, while that process is starting up.
"""

from __future__ import annotations

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.hash import ELFHashSection, GNUHashSection
from elftools.elf.sections import SymbolTableSection

SSL_FUNCS = ("SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_free", "SSL_set_accept_state")
ELF_MAGIC = b"\x7fELF"


def _defined_func(sym) -> bool:
    return (
        sym is not None
        and sym["st_shndx"] != "SHN_UNDEF"
        and sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC")
        and sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
    )


def exported_symbols(elf: ELFFile, names: tuple[str, ...]) -> dict[str, int]:
    """st_value of each name among `names` that the file defines and exports as a function."""
    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection):
        return {}
    hashsec = None
    for sec in elf.iter_sections():
        if sec["sh_type"] == "SHT_GNU_HASH":
            hashsec = GNUHashSection(sec.header, sec.name, elf, dynsym)
            break
        if sec["sh_type"] == "SHT_HASH":
            hashsec = ELFHashSection(sec.header, sec.name, elf, dynsym)
    if hashsec is not None:
        found = {n: hashsec.get_symbol(n) for n in names}
    else:
        wanted = set(names)
        found = {s.name: s for s in dynsym.iter_symbols() if s.name in wanted}
    return {n: s["st_value"] for n, s in found.items() if _defined_func(s)}


def exported_functions(path: str, names: tuple[str, ...] = SSL_FUNCS) -> set[str]:
    """Names among `names` that `path` defines and exports in .dynsym. Empty for non-ELF files."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != ELF_MAGIC:
                return set()
            f.seek(0)
            return set(exported_symbols(ELFFile(f), names))
    except (OSError, ELFError, ValueError, KeyError, AttributeError, IndexError):
        return set()  # unreadable or malformed: not a target, never an error


def is_ssl_target(path: str) -> set[str]:
    """The hookable functions of `path` if it is an OpenSSL-compatible TLS library or binary."""
    found = exported_functions(path)
    if "SSL_write" in found or "SSL_write_ex" in found:
        return found
    return set()
