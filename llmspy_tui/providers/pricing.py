"""Dollar cost from genai-prices' bundled price data (no price table of our own, no network).

A model genai-prices does not know has no cost (None, shown as unknown), never a guess. On a
known provider's host the price is that provider's; on other hosts (gateways, self-hosted) the
model name alone decides, which genai-prices resolves to the model's maker.
"""

from __future__ import annotations

import threading
import warnings
from datetime import datetime, timezone
from functools import lru_cache

from .model import Usage

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _library():
    try:
        import genai_prices
    except Exception:
        return None
    return genai_prices


def cost_usd(usage: Usage, model: str | None, price_provider: str | None, ts_ns: int) -> float | None:
    """Cost of one call, priced as of its own time (prices change; replays must agree)."""
    if not model or usage.input_tokens is None and usage.output_tokens is None:
        return None
    lib = _library()
    if lib is None:
        return None
    kw = {"input_tokens": usage.input_tokens or 0, "output_tokens": usage.output_tokens or 0}
    if usage.cache_read_tokens:
        kw["cache_read_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        kw["cache_write_tokens"] = usage.cache_write_tokens
    when = datetime.fromtimestamp(ts_ns / 1e9, timezone.utc) if ts_ns else None
    return _price(model, price_provider, tuple(sorted(kw.items())), when)


def _price(model: str, provider: str | None, usage_items: tuple, when) -> float | None:
    lib = _library()
    try:
        with _lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc = lib.calc_price(lib.Usage(**dict(usage_items)), model, provider_id=provider,
                                  genai_request_timestamp=when)
    except (LookupError, ValueError, TypeError):
        return None
    except Exception:  # the library's own failure must not cost the exchange
        return None
    return round(float(calc.total_price), 10)


_UNIT = 1000  # tokens per probe: small enough to stay in every model's first price tier


@lru_cache(maxsize=4096)
def _rates(model: str, provider: str | None, day: int) -> tuple[float, float, float, float] | None:
    """Per-token prices (input, output, and the change a cached read or a cache write makes to
    an input token), probed from genai-prices once per model and day."""
    when = datetime.fromtimestamp(day * 86400, timezone.utc) if day else None
    base = _price(model, provider, (("input_tokens", _UNIT), ("output_tokens", 0)), when)
    if base is None:
        return None
    out = _price(model, provider, (("input_tokens", 0), ("output_tokens", _UNIT)), when) or 0.0
    read = _price(model, provider, (("cache_read_tokens", _UNIT), ("input_tokens", _UNIT), ("output_tokens", 0)), when)
    write = _price(model, provider, (("cache_write_tokens", _UNIT), ("input_tokens", _UNIT), ("output_tokens", 0)), when)
    return (base / _UNIT, out / _UNIT, ((read if read is not None else base) - base) / _UNIT,
            ((write if write is not None else base) - base) / _UNIT)


def running_cost(usage: Usage, model: str | None, price_provider: str | None, ts_ns: int) -> float | None:
    """A streaming call's cost so far, from first-tier per-token rates: cheap enough to run on
    every progress update. The finished call is priced exactly by cost_usd()."""
    if not model or usage.input_tokens is None and usage.output_tokens is None:
        return None
    r = _rates(model, price_provider, ts_ns // 86_400_000_000_000 if ts_ns else 0)
    if r is None:
        return None
    return round((usage.input_tokens or 0) * r[0] + (usage.output_tokens or 0) * r[1]
                 + (usage.cache_read_tokens or 0) * r[2] + (usage.cache_write_tokens or 0) * r[3], 10)
