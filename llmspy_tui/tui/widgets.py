"""Small widgets every screen shares: the totals bar and the live filter."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Sparkline, Static


class TotalsBar(Horizontal):
    """One line: mode, totals, badges (paused, follow, lost events) and a tokens/s sparkline."""

    DEFAULT_CSS = """
    TotalsBar { height: 1; dock: top; background: $panel; }
    TotalsBar > #totals { width: 1fr; height: 1; padding: 0 1; }
    TotalsBar > #rate-label { width: auto; height: 1; padding: 0 1 0 0; color: $text-muted; }
    TotalsBar > Sparkline { width: 24; height: 1; margin: 0 1 0 0; }
    """

    def on_resize(self) -> None:
        self.query_one(Sparkline).styles.width = 24 if self.size.width >= 130 else 10

    def compose(self) -> ComposeResult:
        yield Static(id="totals")
        yield Static(id="rate-label")
        yield Sparkline([0], id="rate")

    def show(self, line: Text, rate: list[float], rate_label: str) -> None:
        self.query_one("#totals", Static).update(line)
        self.query_one("#rate-label", Static).update(rate_label)
        spark = self.query_one(Sparkline)
        if list(spark.data or ()) != rate:
            spark.data = rate


class FilterInput(Input):
    """The `/` filter: hidden until asked for; Escape clears it, Enter keeps it and returns to the list."""

    DEFAULT_CSS = """
    FilterInput { display: none; border: none; height: 1; padding: 0 1; width: 1fr; background: $boost; }
    FilterInput:focus { border: none; background: $accent 25%; }
    FilterInput.-shown { display: block; }
    """

    def __init__(self) -> None:
        super().__init__(placeholder="filter: process, pid, model, text…  (leading ! inverts; Enter keeps, Esc clears)",
                         id="filter")


def matches(query: str, haystack: str) -> bool:
    """Case-insensitive substring match of every word; a leading '!' inverts the whole filter."""
    q = query.strip()
    invert = q.startswith("!")
    if invert:
        q = q[1:].strip()
    if not q:
        return True
    hit = all(word in haystack for word in q.lower().split())
    return hit != invert
