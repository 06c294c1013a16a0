"""The screen scaffolding: a totals bar, a breadcrumb, a body, the footer; lists diffed by key.

Screens never read the store: the app hands each one a Snapshot on its timer (`show`), and a
list screen turns it into Rows, then changes only the cells that differ. A list is rebuilt
only when its membership or order changes, and the cursor stays on the same key.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ..store import Snapshot
from .widgets import FilterInput, TotalsBar, matches

if TYPE_CHECKING:
    from .app import MonitorApp


MAX_ROWS = 500  # a list shows at most about this many rows, the most recent ones (/ finds others)


class Column(NamedTuple):
    key: str
    label: str
    width: int | None = None  # None: sized to content
    numeric: bool = False  # right-aligned
    flex: bool = False  # takes the width left over (at most one per list)
    hide_below: int = 0  # left out when the screen is narrower than this


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    cells: tuple  # str or rich Text, one per column
    sort: tuple  # one comparable value per column
    search: str  # lower-case text the filter looks in
    ts: int  # recency: what "follow newest" follows


class ListTable(DataTable):
    """A DataTable whose Enter is labelled for what it does here: open the row."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),
        Binding("home,g", "first_row", "First", show=False),
        Binding("end,G", "last_row", "Last", show=False),
    ]

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)


class MonitorScreen(Screen):
    """A screen the app feeds snapshots to."""

    app: MonitorApp

    def compose(self) -> ComposeResult:
        yield TotalsBar()
        yield Static(id="crumb")
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def crumb(self) -> str:
        return ""

    ready = False  # set once composed and mounted: the timer may fire between push and mount

    def on_mount(self) -> None:
        self.ready = True
        self.refresh_from_app()

    def on_screen_resume(self) -> None:
        self.refresh_from_app()

    def refresh_from_app(self) -> None:
        if self.app.snapshot is not None:
            self.show(self.app.snapshot)

    def show(self, snap: Snapshot) -> None:
        if not self.ready:
            return
        self.query_one(TotalsBar).show(*self.app.header())
        self.show_body(snap)  # first: the crumb says what the body now shows
        self.query_one("#crumb", Static).update(Text(self.crumb(), no_wrap=True, overflow="ellipsis"))

    def show_body(self, snap: Snapshot) -> None:
        """Subclasses: update the body from a snapshot."""


class ListScreen(MonitorScreen):
    COLUMNS: ClassVar[tuple[Column, ...]] = ()
    DEFAULT_SORT: ClassVar[tuple[int, bool]] = (0, False)  # column index, descending
    KEY_IS_PID: ClassVar[bool] = False  # rows are processes: a numeric filter matches the pid
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_col, self.sort_desc = self.DEFAULT_SORT
        self.filter_text = ""
        self._keys: list[str] = []
        self._cells: dict[str, tuple] = {}
        self._flex_width = 30
        self._visible: list[int] = list(range(len(self.COLUMNS)))
        self._row_cache: dict[str, tuple[object, tuple, Row]] = {}
        self.total_rows = 0  # rows matching the filter, before the MAX_ROWS cut
        self.shown_rows = 0
        self._cut_ts: int | None = None  # rows older than this are not listed (None: no cut)
        self._next_cache: dict[str, tuple[object, tuple, Row]] = {}

    def compose_body(self) -> ComposeResult:
        table = ListTable(cursor_type="row", zebra_stripes=True, id="list")
        yield table
        yield FilterInput()

    @property
    def table(self) -> DataTable:
        return self.query_one("#list", DataTable)

    def on_mount(self) -> None:
        self._build_columns()
        super().on_mount()
        self.table.focus()

    def on_resize(self) -> None:
        if self._layout() != (self._visible, self._flex_width):
            self._build_columns()
            self.refresh_from_app()

    def _layout(self) -> tuple[list[int], int]:
        """Which columns fit this width, and what is left for the flexible one."""
        width = self.size.width or self.app.size.width
        visible = [i for i, c in enumerate(self.COLUMNS) if width >= c.hide_below]
        fixed = sum((self.COLUMNS[i].width or len(self.COLUMNS[i].label)) + 2 for i in visible
                    if not self.COLUMNS[i].flex)
        return visible, max(12, width - fixed - 4)

    def _build_columns(self) -> None:
        self._visible, self._flex_width = self._layout()
        if self.sort_col not in self._visible:
            self.sort_col, self.sort_desc = self.DEFAULT_SORT
        table = self.table
        table.clear(columns=True)
        for i in self._visible:
            c = self.COLUMNS[i]
            label = c.label + (" ▼" if self.sort_desc else " ▲") * (i == self.sort_col)
            table.add_column(Text(label, justify="right" if c.numeric else "left"), key=c.key,
                             width=self._flex_width if c.flex else c.width)
        self._keys, self._cells = [], {}

    # -- content --------------------------------------------------------------------------------
    def rows(self, snap: Snapshot) -> list[Row]:
        raise NotImplementedError

    def cached_row(self, key: str, view: object, extras: tuple, build) -> Row:
        """The row built from this very view object (store views are reused until they change)
        and these extras (relative times, widths, theme), built again only when one differs:
        a list of thousands of conversations costs a lookup per row per tick, not a rebuild."""
        hit = self._row_cache.get(key)
        if hit is not None and hit[0] is view and hit[1] == extras:
            row = hit[2]
        else:
            row = build()
        self._next_cache[key] = (view, extras, row)
        return row

    def show_body(self, snap: Snapshot) -> None:
        vis = self._visible
        all_rows = self.rows(snap)  # fills _next_cache through cached_row
        self._row_cache, self._next_cache = self._next_cache, {}  # rows of keys gone are dropped
        query = self.filter_text.strip().lstrip("!").strip()
        if self.KEY_IS_PID and query.isdigit():
            # a number is a pid (or its start), not any digits found in a command line
            invert = self.filter_text.strip().startswith("!")
            rows = [r for r in all_rows if r.key.startswith(query) != invert]
        else:
            rows = [r for r in all_rows if matches(self.filter_text, r.search)]
        self.total_rows = len(rows)
        if len(rows) > MAX_ROWS:
            # Only the most recent rows are listed: every later step costs per row, every tick.
            # The cut is redone only when what passed it has doubled, so between cuts rows are
            # only appended (cheap) rather than dropped from the front on every tick (not).
            if self._cut_ts is None or sum(r.ts >= self._cut_ts for r in rows) > 2 * MAX_ROWS:
                self._cut_ts = min(r.ts for r in heapq.nlargest(MAX_ROWS, rows, key=lambda r: r.ts))
            rows = [r for r in rows if r.ts >= self._cut_ts]
        else:
            self._cut_ts = None
        self.shown_rows = len(rows)
        i = self.sort_col
        rows.sort(key=lambda r: r.sort[i], reverse=self.sort_desc)
        if len(vis) < len(self.COLUMNS):
            rows = [Row(r.key, tuple(r.cells[j] for j in vis), r.sort, r.search, r.ts) for r in rows]
        columns = [self.COLUMNS[j] for j in vis]
        keys = [r.key for r in rows]
        table = self.table
        cursor = self.cursor_key()
        new_keys = set(keys)
        kept = [k for k in self._keys if k in new_keys]
        n = len(kept)
        # same order, and few rows left (each removal costs the whole table): update in place
        if keys[:n] == kept and len(self._keys) - n <= 20:
            if n < len(self._keys):
                for k in self._keys:
                    if k not in new_keys:
                        table.remove_row(k)
            for r in rows[:n]:
                old = self._cells[r.key]
                if old != r.cells:
                    for c, a, b in zip(columns, old, r.cells, strict=True):
                        if a != b:
                            table.update_cell(r.key, c.key, b)
            for r in rows[n:]:
                table.add_row(*r.cells, key=r.key)
        else:
            table.clear()
            for r in rows:
                table.add_row(*r.cells, key=r.key)
        if cursor in new_keys and table.cursor_row != keys.index(cursor):
            table.move_cursor(row=keys.index(cursor), animate=False)  # the cursor stays on its row
        self._keys = keys
        self._cells = {r.key: r.cells for r in rows}
        if self.app.follow and rows:
            newest = max(rows, key=lambda r: r.ts)
            table.move_cursor(row=keys.index(newest.key), animate=False)
        self.on_list_shown(rows)

    def on_list_shown(self, rows: list[Row]) -> None:
        """Subclasses: e.g. say why a list is empty."""

    def cursor_key(self) -> str | None:
        table = self.table
        if not self._keys or table.cursor_row < 0 or table.cursor_row >= len(self._keys):
            return None
        return self._keys[table.cursor_row]

    # -- actions --------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.open(event.row_key.value)

    def action_open(self) -> None:
        key = self.cursor_key()
        if key is not None:
            self.open(key)

    def open(self, key: str) -> None:
        """Subclasses: drill down into the row with this key."""

    def action_back(self) -> None:
        if self.query_one(FilterInput).has_focus or self.filter_text:
            self._close_filter(clear=True)
        elif len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def action_filter(self) -> None:
        f = self.query_one(FilterInput)
        f.add_class("-shown")
        f.focus()

    def _close_filter(self, clear: bool) -> None:
        f = self.query_one(FilterInput)
        if clear:
            f.value = ""
            self.filter_text = ""
            self._cut_ts = None
            f.remove_class("-shown")
        self.table.focus()
        self.refresh_from_app()

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FilterInput):
            self.filter_text = event.value
            self._cut_ts = None
            self.refresh_from_app()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if isinstance(event.input, FilterInput):
            if not event.value.strip():
                self._close_filter(clear=True)
            else:
                self.table.focus()

    def action_sort(self) -> None:
        """Next column; a second press on the same one flips the direction."""
        vis = self._visible
        nxt = vis[(vis.index(self.sort_col) + 1) % len(vis)] if self.sort_col in vis else vis[0]
        self.set_sort(nxt)

    def set_sort(self, col: int) -> None:
        if col == self.sort_col:
            self.sort_desc = not self.sort_desc
        else:
            self.sort_col, self.sort_desc = col, self.COLUMNS[col].numeric
        self._build_columns()
        self.refresh_from_app()
        c = self.COLUMNS[self.sort_col]
        self.notify(f"Sorted by {c.label.strip().lower()}, {'descending' if self.sort_desc else 'ascending'}",
                    timeout=2)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.set_sort(self._visible[event.column_index])
