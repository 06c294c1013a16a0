"""Themes from the TOML files in themes/, turned into Textual Theme objects.

Files rather than code so users can add their own (drop a .toml next to the others, or point
LLMSPY_THEMES at a folder). Each theme must also define the role and streaming variables the
stylesheet uses; missing ones fall back to the defaults below, so a terse file still works.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path

from textual.theme import Theme

from ..errors import UserError

DEFAULT_THEME = "llmspy-dark"

# CSS variables the stylesheet relies on, with neutral fallbacks
ROLE_VARIABLES = {
    "role-system": "#B48EAD",
    "role-user": "#5FA8D3",
    "role-assistant": "#7FC77F",
    "role-tool": "#F2A65A",
    "streaming": "#E8C35A",
}

_FIELDS = {f.name for f in fields(Theme)} - {"name", "variables"}


def theme_dirs() -> list[Path]:
    """Where theme files are looked for: $LLMSPY_THEMES, the installed package, the repository."""
    out = []
    if os.environ.get("LLMSPY_THEMES"):
        out.append(Path(os.environ["LLMSPY_THEMES"]))
    packaged = Path(str(resources.files("llmspy_tui").joinpath("themes")))
    out.append(packaged)
    out.append(Path(__file__).resolve().parents[2] / "themes")
    return [d for d in out if d.is_dir()]


def theme_from_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"llmspy-tui: theme file {path}: {e}") from None
    name = data.pop("name", path.stem)
    variables = {**ROLE_VARIABLES, **{str(k): str(v) for k, v in data.pop("variables", {}).items()}}
    unknown = set(data) - _FIELDS
    if unknown:
        raise UserError(f"llmspy-tui: theme file {path}: unknown keys {', '.join(sorted(unknown))}")
    if "primary" not in data:
        raise UserError(f"llmspy-tui: theme file {path}: 'primary' is required")
    try:
        return Theme(name=name, variables=variables, **data)
    except Exception as e:  # a bad colour string, mostly
        raise UserError(f"llmspy-tui: theme file {path}: {e}") from None


def load_themes() -> list[Theme]:
    """All themes, the default first; a later folder does not override an earlier one's name."""
    seen: dict[str, Theme] = {}
    for d in theme_dirs():
        for path in sorted(d.glob("*.toml")):
            theme = theme_from_file(path)
            seen.setdefault(theme.name, theme)
    if not seen:
        raise UserError("llmspy-tui: no theme files found (expected themes/*.toml)")
    names = sorted(seen, key=lambda n: (n != DEFAULT_THEME, n))
    return [seen[n] for n in names]
