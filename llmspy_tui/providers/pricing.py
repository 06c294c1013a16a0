"""Dollar cost from genai-prices' bundled price data (no price table of our own, no network).

A model genai-prices does not know has no cost (None, shown as unknown), never a guess. On a
known provider's host the price is that provider's; on other hosts (gateways, self-hosted) the
model name alone decides, which genai-prices resolves to the model's maker.
"""

from __future__ import annotations

import threading
import warnings
from datetime import datetime, timezone
from decimal import Decimal
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
    values = (usage.input_tokens or 0, usage.output_tokens or 0, usage.cache_read_tokens or 0,
              usage.cache_write_tokens or 0)
    if ts_ns:
        cost = _fast_cost(lib, model, price_provider, values, ts_ns)
        if cost is not _SLOW:
            return cost
    kw = {"input_tokens": values[0], "output_tokens": values[1]}
    if usage.cache_read_tokens:
        kw["cache_read_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        kw["cache_write_tokens"] = usage.cache_write_tokens
    when = datetime.fromtimestamp(ts_ns / 1e9, timezone.utc) if ts_ns else None
    return _price(model, price_provider, tuple(sorted(kw.items())), when)


# -- the same prices, faster ------------------------------------------------------------------
#
# genai-prices works out every call's price from its general unit registry: usage decomposed
# into leaf counts, coverage validated, prices resolved; ~100 us a call, more than parsing a
# large request takes. For one model price table and one shape of usage (which of our four
# counts are there and non-zero), each unit's leaf count is an affine function of the counts
# (the library only ever subtracts counts), so it is worked out once, from the library itself,
# and the price is then the library's own sum of calc_unit_price() terms over those counts:
# the same Decimal arithmetic, so the same result. Anything unusual goes the library's way.

_SLOW = object()
_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_models: dict[tuple[str, str | None], tuple] = {}  # (model, provider id) -> (snapshot, provider, model info)
_forms: dict[tuple, _Form | None] = {}  # (id(model price), shape) -> form (None: the library's way)
_failed: dict[tuple, int] = {}  # attempts at a form that did not work out
_MAX_CACHED = 4096


class _Form:
    """A model price table's price for usages of one shape."""

    __slots__ = ("price", "terms", "tiered", "calc")

    def __init__(self, price, terms: list, tiered: bool, calc) -> None:
        self.price = price  # the ModelPrice it is for (kept so that its id stays its own)
        self.terms = terms  # (unit price, plain, unit per, constant, coefficients aligned with _KEYS)
        self.tiered = tiered
        self.calc = calc  # genai_prices.types.calc_unit_price

    def total(self, values: tuple[int, int, int, int]):
        """The Decimal total, or _SLOW when a count would be negative (the library refuses)."""
        tin = values[0] if self.tiered else 0
        total = Decimal(0)
        for price, plain, per, const, coefs in self.terms:
            count = const
            for c, v in zip(coefs, values):
                if c:
                    count += c * v
            if count < 0:
                return _SLOW
            if plain:  # calc_unit_price's own steps for a Decimal price
                total += price * Decimal(count) / per
            else:
                total += self.calc(price, count, tin, per)
        return total


def _fast_cost(lib, model: str, provider_id: str | None, values: tuple, ts_ns: int):
    if any(type(v) is not int or v < 0 for v in values):
        return _SLOW
    try:
        snapshot = lib.data_snapshot.get_snapshot()
        found = _models.get((model, provider_id))
        if found is None or found[0] is not snapshot:
            found = _find(lib, snapshot, model, provider_id)
        _, info, fixed = found
        if info is None:
            return None
        if fixed is not None:  # one price whatever the time
            price = fixed
        else:
            price = info.get_prices(datetime.fromtimestamp(ts_ns / 1e9, timezone.utc))
        shape = (values[0] > 0, values[1] > 0, values[2] > 0, values[3] > 0)
        key = (id(price), shape)
        form = _forms.get(key, _SLOW)
        if form is _SLOW or (form is not None and form.price is not price):
            form = _make_form(lib, price, values)
            if len(_forms) >= _MAX_CACHED:
                _forms.clear()
                _failed.clear()
            if form is not None:
                _forms[key] = form
            else:  # maybe these counts (a cache count over the input): tried again with others
                _failed[key] = _failed.get(key, 0) + 1
                if _failed[key] >= 3:
                    _forms[key] = None
                return _SLOW
        if form is None:
            return _SLOW
        total = form.total(values)
    except Exception:
        return _SLOW
    if total is _SLOW:
        return _SLOW
    return round(float(total), 10)


def _find(lib, snapshot, model: str, provider_id: str | None) -> tuple:
    """(snapshot, model info or None, its one price when it has no time-bound ones or None)."""
    from genai_prices import types

    try:
        provider, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:  # an unknown model: no cost, as the library says
        info = fixed = None
    else:
        fixed = info.prices if isinstance(info.prices, types.ModelPrice) else None
        if provider.id == "groq" and info.id.startswith("whisper"):  # billed by audio seconds
            raise ValueError("not this way")
    if len(_models) >= _MAX_CACHED:  # model names come from the traffic: bounded
        _models.clear()
    found = _models[(model, provider_id)] = (snapshot, info, fixed)
    return found


def _make_form(lib, price, values: tuple) -> _Form | None:
    """The form of `price` for usages shaped like `values`, derived from the library's own leaf
    counts at `values` and at `values` with each non-zero count one higher; None if anything
    about it is not plain (then every call of this shape goes the library's way)."""
    from genai_prices import types, units, validation

    kw = {"input_tokens": values[0], "output_tokens": values[1]}
    for k, v in zip(_KEYS[2:], values[2:]):
        if v:
            kw[k] = v
    with _lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            registry = units._get_registry()
            resolved = types._collect_resolved_model_prices(price, registry)
            validation.validate_priced_units(tuple(unit for unit, _ in resolved), registry)

            def leaves(vals: dict) -> list:
                usage = types.Usage.from_raw(lib.Usage(**vals))
                counts = types._compute_registry_priced_counts(resolved, usage)
                return [counts[unit.usage_key] for unit, _ in resolved]

            base = leaves(kw)
            slopes = []
            for i, k in enumerate(_KEYS):
                if not values[i]:
                    slopes.append([0] * len(resolved))  # zero throughout this shape
                    continue
                up = leaves({**kw, k: kw[k] + 1})
                slopes.append([u - b for u, b in zip(up, base)])
            terms = []
            for j, (unit, unit_price) in enumerate(resolved):
                coefs = tuple(slopes[i][j] for i in range(len(_KEYS)))
                if type(base[j]) is not int or any(type(c) is not int for c in coefs):
                    return None
                const = base[j] - sum(c * v for c, v in zip(coefs, values))
                plain = type(unit_price) is Decimal
                terms.append((unit_price, plain, unit.per, const, coefs))
            tiered = any(isinstance(p, types.TieredPrices) for _, p in resolved)
            form = _Form(price, terms, tiered, types.calc_unit_price)
            # it must give what the library gives, here
            if form.total(values) != price.calc_price(lib.Usage(**kw))["total_price"]:
                return None
            return form
        except Exception:
            return None


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
