"""Protocol layer: captured TLS plaintext -> HTTP/1.1 and HTTP/2 messages, sans-IO.

Bytes in, events out: no IO, no clock, no threads. `ProtocolTracker` is the entry point.
"""

from .body import Limits
from .tracker import ProtocolTracker

__all__ = ["Limits", "ProtocolTracker"]
