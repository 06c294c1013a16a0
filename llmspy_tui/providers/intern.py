"""One object for equal messages and tool calls.

A chat request carries the whole conversation so far, so an agent's tenth call repeats the
messages of the nine before it: without this, each request's history would be a new set of
objects, kept for as long as the store keeps the call (memory, and a cyclic GC walking them all
again and again). Message and ToolCall are frozen, so equal ones can be one object. Looking one
up costs hashing its text, which the conversation threading does anyway (the hash is kept on
the string), and the store then finds work it did for the same object before (see threads.py).

Bounded (by count, and by the text it keeps alive): past a limit everything is forgotten and
the next requests start over.
"""

from __future__ import annotations

from .model import Message, ToolCall

_MAX = 1 << 14
_MAX_TEXT = 16 << 20  # characters of message text held by the table (kept alive after eviction)
_messages: dict[tuple, Message] = {}
_calls: dict[tuple[str, str, str], ToolCall] = {}
_text = 0


def message(role: str, text: str, tool_calls: tuple[ToolCall, ...] = (), tool_call_id: str = "",
            thinking: str = "") -> Message:
    """Message(role, text, tool_calls, tool_call_id, thinking), or an equal one made before."""
    if tool_calls:
        key = (role, text, tool_call_id, thinking, *[(c.id, c.name, c.arguments) for c in tool_calls])
    else:
        key = (role, text, tool_call_id, thinking)
    m = _messages.get(key)
    if m is None:
        global _text
        if len(_messages) >= _MAX or _text > _MAX_TEXT:
            _messages.clear()
            _text = 0
        m = _messages[key] = Message(role, text, tool_calls, tool_call_id, thinking)
        _text += len(text)
    return m


def tool_call(id: str, name: str, arguments: str) -> ToolCall:
    """ToolCall(id, name, arguments), or an equal one made before."""
    key = (id, name, arguments)
    c = _calls.get(key)
    if c is None:
        if len(_calls) >= _MAX:
            _calls.clear()
        c = _calls[key] = ToolCall(id, name, arguments)
    return c
