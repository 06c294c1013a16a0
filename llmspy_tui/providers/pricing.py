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
