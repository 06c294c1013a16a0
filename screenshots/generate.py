"""Regenerate the SVG screenshots in this folder from the bundled demo capture.

    .venv/bin/python screenshots/generate.py

Every view of tests/support/tui_views.py (the same ones the snapshot tests check), in each
theme and at 160x45 and 100x30, written as <view>.svg next to this script.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests" / "support")]

from tui_views import VIEWS  # noqa: E402


async def shoot(view) -> Path:
    app = view.app()
    async with app.run_test(size=view.size) as pilot:
        await view.run_before(pilot)
        out = HERE / f"{view.name}.svg"
        app.save_screenshot(filename=out.name, path=str(HERE))
    return out


def main() -> int:
    for view in VIEWS:
        path = asyncio.run(shoot(view))
        print(f"{path.relative_to(HERE.parent)}  {view.size[0]}x{view.size[1]}  {view.theme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
