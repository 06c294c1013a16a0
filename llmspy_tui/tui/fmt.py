"""Short, fixed-width renderings of numbers, times and text for table cells."""

from __future__ import annotations

import time


def tokens(n: int | None) -> str:
    if not n:
        return "0" if n == 0 else "—"
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def cost(usd: float | None, unknown: int = 0) -> str:
    """Dollars with enough digits to see a single cheap call; '+' when some calls had no price."""
    if usd is None:
        return "?"
    suffix = "+" if unknown else ""
    if usd == 0:
        return ("$0" + suffix) if not unknown else "?"
    if usd < 0.01:
        return f"${usd:.4f}{suffix}"
    if usd < 100:
        return f"${usd:.2f}{suffix}"
    return f"${usd:,.0f}{suffix}"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60_000:.1f} min"


def clock(ts_ns: int) -> str:
    """Local wall-clock time of a capture timestamp."""
    if not ts_ns:
        return "—"
    return time.strftime("%H:%M:%S", time.localtime(ts_ns / 1e9))


def age(ts_ns: int, now_ns: int) -> str:
    """How long ago, against the capture's clock (a replay's 'now' is its last event)."""
    if not ts_ns:
        return "—"
    s = max(0, (now_ns - ts_ns) / 1e9)
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f}m ago"
    if s < 86400:
        return f"{s / 3600:.1f}h ago"
    return f"{s / 86400:.0f}d ago"


def one_line(text: str, width: int) -> str:
    """Whitespace collapsed, cut to width with an ellipsis."""
    t = " ".join(text.split())
    if width <= 1:
        return t[:width]
    return t if len(t) <= width else t[: width - 1] + "…"
