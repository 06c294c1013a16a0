"""LLM API semantics: which API an HTTP exchange speaks, what was asked and answered, tokens
and cost. Pure Python, sans-IO: see tracker.ExchangeTracker."""

from .events import Exchange, ExchangeFinished, ExchangeProgress, ExchangeStarted
from .tracker import ExchangeTracker, Options

__all__ = ["Exchange", "ExchangeFinished", "ExchangeProgress", "ExchangeStarted", "ExchangeTracker", "Options"]
