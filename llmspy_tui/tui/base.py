"""The screen scaffolding: a totals bar, a breadcrumb, a body, the footer; lists diffed by key.

Screens never read the store: the app hands each one a Snapshot on its timer (`show`), and a
list screen turns it into Rows, then changes only the cells that differ. A list is rebuilt
only when its membership or order changes, and the cursor stays on the same key.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowKey

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
    """A DataTable whose Enter is labelled for what it does here (open the row), and where a
    changed cell redraws its own row only.

    DataTable.update_cell bumps one counter that is part of every cached rendering, so a single
    changed cell makes every visible cell render again (about 0.4 ms each, on the UI thread):
    with rows changing on every tick, a key press then waited behind a whole-table redraw.
    Here only the changed rows' cached renderings are dropped, just before the next draw.
    """

    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),
        Binding("home,g", "first_row", "First", show=False),
        Binding("end,G", "last_row", "Last", show=False),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stale_rows: set[RowKey] = set()

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: object, *,
                    update_width: bool = False) -> None:
        if update_width:  # column widths may change: DataTable's own way
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        self._stale_rows.add(row_key)
        self.refresh()

    def _drop_stale_rows(self) -> None:
        stale, self._stale_rows = self._stale_rows, set()
        for cache in (self._cell_render_cache, self._row_render_cache):
            for k in [k for k in cache.keys() if k[0] in stale]:
                cache.discard(k)
        indexes = {self._row_locations.get(k) for k in stale}
        for k in [k for k in self._row_renderable_cache.keys() if k[1] in indexes]:
            self._row_renderable_cache.discard(k)
        self._line_cache.clear()  # keyed by screen line: cheap to rebuild from the row cache

    def render_line(self, y: int):
        if self._stale_rows:
            self._drop_stale_rows()
        return super().render_line(y)

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)


class MonitorScreen(Screen):
    """A screen the app feeds snapshots to."""

    app: MonitorApp
    # Share of the UI thread that timer-driven body updates may take (0: every tick). The
    # header follows every tick; a list's body is redrawn as often as its last redraw allows:
    # a few ms when little changed (every tick), up to ~100 ms once many rows change on every
    # tick (then about once a second). That keeps the thread free for keys; what the user does
    # shows at once whatever the pace.
    BODY_DUTY: ClassVar[float] = 0.0
    BODY_EVERY_MAX: ClassVar[float] = 1.0
    _body_at = 0.0
    _body_every = 0.0
    _body_timer = None

    def compose(self) -> ComposeResult:
        yield TotalsBar()
        with Horizontal(id="crumbline"):
            yield Static(id="crumb")
            yield from self.compose_crumbline()
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose_crumbline(self) -> ComposeResult:
        """Widgets that may take the crumb's line (one line: showing them moves nothing else)."""
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
            self.show(self.app.snapshot, force=True)

    def show(self, snap: Snapshot, force: bool = False) -> None:
        if not self.ready:
            return
        self.query_one(TotalsBar).show(*self.app.header())
        now = time.monotonic()
        wait = self._body_at + self._body_every - now
        if wait > 0 and not force:
            if self._body_timer is None:  # the latest snapshot still shows, a little later
                self._body_timer = self.set_timer(wait, self._deferred_body)
            return
        self._body_at = now
        self.show_body(snap)  # first: the crumb says what the body now shows
        self.query_one("#crumb", Static).update(Text(self.crumb(), no_wrap=True, overflow="ellipsis"))
        if self.BODY_DUTY:
            self.call_after_refresh(self._body_drawn, now)

    def _body_drawn(self, started: float) -> None:
        """The body's update and the frame that drew it took this long: pace the next one."""
        cost = time.monotonic() - started
        self._body_every = min(self.BODY_EVERY_MAX, cost / self.BODY_DUTY)

    def _deferred_body(self) -> None:
        self._body_timer = None
        if self.is_attached and self.app.snapshot is not None:
            self.show(self.app.snapshot)

    def show_body(self, snap: Snapshot) -> None:
        """Subclasses: update the body from a snapshot."""


def _slot(i: int) -> str:
    """The table's row key for position i (rows are positions: see ListScreen.show_body)."""
    return f"#{i}"


class ListScreen(MonitorScreen):
    BODY_DUTY = 0.1
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
        self._cells: list[tuple] = []  # what each slot (table row) shows, in order
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

    def compose_crumbline(self) -> ComposeResult:
        # The filter takes the crumb's line rather than a line of its own: the list keeps its
        # size, so opening and closing the filter does not make it redraw from scratch.
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
        self._keys, self._cells = [], []

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
        # The table's rows are positions ("slots"), not records: when the order changes (a sort
        # by activity or cost reorders on every tick) only the cells that differ at each
        # position are updated, and ListTable redraws just those rows. Re-adding every row
        # would redraw the whole table on each tick and keep key presses waiting.
        old_cells = self._cells
        if len(old_cells) - len(rows) > 20:  # each removal costs the whole table: start afresh
            table.clear()
            old_cells = []
        for i in range(min(len(old_cells), len(rows))):
            old, new = old_cells[i], rows[i].cells
            if old != new:
                slot = _slot(i)
                for c, a, b in zip(columns, old, new, strict=True):
                    if a != b:
                        table.update_cell(slot, c.key, b)
        for i in range(len(old_cells), len(rows)):
            table.add_row(*rows[i].cells, key=_slot(i))
        for i in range(len(old_cells) - 1, len(rows) - 1, -1):
            table.remove_row(_slot(i))
        if cursor in keys and table.cursor_row != keys.index(cursor):
            table.move_cursor(row=keys.index(cursor), animate=False)  # the cursor stays on its record
        self._keys = keys
        self._cells = [r.cells for r in rows]
        if self.app.follow and rows:
            newest = max(rows, key=lambda r: r.ts)
            table.move_cursor(row=keys.index(newest.key), animate=False)
        self.on_list_shown(rows)

    def on_list_shown(self, rows: list[Row]) -> None:
        """Subclasses: e.g. say why a list is empty."""

    _refresh_queued = False

    def _refresh_soon(self) -> None:
        """Re-list right after the next frame: the keystroke shows first (redrawing a list that
        changed takes tens of ms), and a burst of keystrokes re-lists once."""
        if not self._refresh_queued:
            self._refresh_queued = True
            self.call_after_refresh(self._refresh_now)

    def _refresh_now(self) -> None:
        self._refresh_queued = False
        self.refresh_from_app()

    def cursor_key(self) -> str | None:
        table = self.table
        if not self._keys or table.cursor_row < 0 or table.cursor_row >= len(self._keys):
            return None
        return self._keys[table.cursor_row]

    # -- actions --------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self._keys):
            self.open(self._keys[event.cursor_row])

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
        self.query_one("#crumbline").add_class("-filtering")
        f.focus()

    def _close_filter(self, clear: bool) -> None:
        f = self.query_one(FilterInput)
        if clear:
            f.value = ""
            self.filter_text = ""
            self._cut_ts = None
            f.remove_class("-shown")
            self.query_one("#crumbline").remove_class("-filtering")
        self.table.focus()
        self._refresh_soon()

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FilterInput):
            self.filter_text = event.value
            self._cut_ts = None
            self._refresh_soon()

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
