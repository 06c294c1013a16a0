"""SVG snapshots of the main views (pytest-textual-snapshot), from the bundled demo capture.

After an intended change of the UI: `.venv/bin/pytest tests/test_tui_snapshots.py
--snapshot-update`, look at the report, and regenerate screenshots/ with screenshots/generate.py.
"""

from __future__ import annotations

import pytest

from support.tui_views import SNAPSHOT_VIEWS, VIEWS

BY_NAME = {v.name: v for v in VIEWS}


@pytest.mark.parametrize("name", SNAPSHOT_VIEWS)
def test_view(name, snap_compare):
    view = BY_NAME[name]
    assert snap_compare(view.app(), terminal_size=view.size, run_before=view.run_before)
