"""In-memory conversation store: processes -> conversations -> exchanges, with tallies."""

from .store import ConversationView, ExchangeView, ProcessView, Snapshot, Store
from .tally import Tally

__all__ = ["ConversationView", "ExchangeView", "ProcessView", "Snapshot", "Store", "Tally"]
