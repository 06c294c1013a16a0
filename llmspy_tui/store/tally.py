"""Running totals: calls, in-flight calls, errors, tokens and cost."""

from __future__ import annotations

from dataclasses import dataclass

from ..providers.model import Usage

FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one call adds to the totals; replaced as its usage grows while it streams."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: int = 0  # 1 when the call has tokens but no known price

    @classmethod
    def of(cls, usage: Usage, cost: float | None) -> Contribution:
        i, o = usage.input_tokens or 0, usage.output_tokens or 0
        unknown = 1 if cost is None and (i or o) else 0
        return cls(i, o, usage.cache_read_tokens or 0, usage.cache_write_tokens or 0,
                   usage.reasoning_tokens or 0, cost or 0.0, unknown)


ZERO = Contribution()


@dataclass(slots=True)
class Tally:
    calls: int = 0
    in_flight: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: int = 0  # calls whose cost could not be priced: the total is a lower bound

    def swap(self, old: Contribution, new: Contribution) -> None:
        """Take `old` out of the totals and put `new` in (a streaming call's usage grows)."""
        self.input_tokens += new.input_tokens - old.input_tokens
        self.output_tokens += new.output_tokens - old.output_tokens
        self.cache_read_tokens += new.cache_read_tokens - old.cache_read_tokens
        self.cache_write_tokens += new.cache_write_tokens - old.cache_write_tokens
        self.reasoning_tokens += new.reasoning_tokens - old.reasoning_tokens
        self.cost_usd += new.cost_usd - old.cost_usd
        self.cost_unknown += new.cost_unknown - old.cost_unknown

    def copy(self) -> Tally:
        return Tally(self.calls, self.in_flight, self.errors, self.input_tokens, self.output_tokens,
                     self.cache_read_tokens, self.cache_write_tokens, self.reasoning_tokens,
                     round(self.cost_usd, 10), self.cost_unknown)

    def to_json(self) -> dict:
        return {"calls": self.calls, "in_flight": self.in_flight, "errors": self.errors,
                **{f: getattr(self, f) for f in FIELDS}, "cost_usd": round(self.cost_usd, 10),
                "cost_unknown_calls": self.cost_unknown}
