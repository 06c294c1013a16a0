"""Which conversation a chat call continues.

A chat request carries its whole history. A call continues an earlier one of the same process
when its messages start with that call's messages followed by that call's reply; the Responses
API says so outright with `previous_response_id`. Each history prefix is reduced to a chain of
hashes, so a lookup costs one dict probe per message, whatever the conversation's length.

The hashes are Python's own (SipHash for text, keyed per process, cached on each string): they
live only in this process's memory, and hashing a long history this way costs a fraction of
what a cryptographic digest of it would (agent prompts are tens of KB, and every request
carries all of it again). A call's chain is worked out once, at its start, and kept for its end.
"""

from __future__ import annotations

from collections import OrderedDict

import orjson

from ..providers.model import LlmRequest, LlmResponse, Message

_MAX_KEYS = 20_000  # per map: a conversation is found through its latest call, so twice the store's call bound is plenty
_MAX_PENDING = 10_000  # chains of calls in flight


def _canon_args(args: str) -> str:
    """Tool arguments compared by meaning: clients re-serialise them when they echo them back."""
    try:
        return orjson.dumps(orjson.loads(args), option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONDecodeError, TypeError):
        return args.strip()


_parts: dict[int, tuple[Message, int]] = {}  # id(message) -> (message, hash of its part of a link)
_PARTS_MAX = 1 << 13


def _part(m: Message, cache: bool = True) -> int:
    """What a message adds to a link: its role, text, tool calls by name and canonical
    arguments, and the call a tool result answers. Kept per message object: requests repeat
    the history, and the provider layer hands equal messages over as one object."""
    got = _parts.get(id(m))
    if got is not None and got[0] is m:
        return got[1]
    calls = tuple([(c.name, _canon_args(c.arguments)) for c in m.tool_calls]) if m.tool_calls else ()
    h = hash((m.role, m.text.strip(), calls, m.tool_call_id if m.role == "tool" else ""))
    if not cache:
        return h
    if len(_parts) >= _PARTS_MAX:
        _parts.clear()
    _parts[id(m)] = (m, h)
    return h


def _extend(h: int, m: Message, cache: bool = True) -> int:
    """The next link: the history so far, then this message."""
    return hash((h, _part(m, cache)))


def chain(req: LlmRequest) -> list[int]:
    """chain[k]: hash of the system text and the first k messages."""
    h = hash(("system", req.system.strip()))
    out = [h]
    for m in req.messages:
        h = _extend(h, m)
        out.append(h)
    return out


class Threader:
    """Conversation ids for calls, in the order calls are seen. Bounded: old keys are forgotten."""

    def __init__(self) -> None:
        self._after_reply: OrderedDict = OrderedDict()  # (process, chain of history + reply) -> conv
        self._after_request: OrderedDict = OrderedDict()  # (process, chain of history) -> conv
        self._responses: OrderedDict = OrderedDict()  # response id -> conv
        self._next = 1
        self._chains: dict[int, tuple[LlmRequest, list[int]]] = {}  # id(request) -> (request, chain)

    def _chain(self, req: LlmRequest, keep: bool) -> list[int]:
        got = self._chains.pop(id(req), None)
        links = got[1] if got is not None and got[0] is req else chain(req)
        if keep:
            if len(self._chains) >= _MAX_PENDING:
                self._chains.clear()
            self._chains[id(req)] = (req, links)
        return links

    def assign(self, process: int, req: LlmRequest | None) -> str:
        """The conversation of a call that is starting: an earlier one it continues, or a new one.
        `process`: the caller's identity in the store (not its pid: pids are reused)."""
        if req is not None:
            if req.previous_response_id and req.previous_response_id in self._responses:
                return self._responses[req.previous_response_id]
            links = self._chain(req, keep=True)
            for k in range(len(req.messages), 0, -1):
                conv = self._after_reply.get((process, links[k]))
                if conv is not None:
                    return conv
                # the reply was not seen whole (or the client rewrote it): the history before
                # it, then an assistant turn, still continues that call
                if req.messages[k - 1].role == "assistant":
                    conv = self._after_request.get((process, links[k - 1]))
                    if conv is not None:
                        return conv
        conv = f"c{self._next}"
        self._next += 1
        return conv

    def finished(self, process: int, conv: str, req: LlmRequest | None, resp: LlmResponse | None) -> None:
        """Remember a finished call, so that the next turn of its conversation finds it."""
        if resp is not None and resp.response_id:
            _put(self._responses, resp.response_id, conv)
        if req is None:
            return
        links = self._chain(req, keep=False)
        if resp is None or resp.error:
            return
        _put(self._after_request, (process, links[-1]), conv)
        if resp.text or resp.tool_calls:
            reply = Message("assistant", resp.text, resp.tool_calls)
            # a one-off object: caching its part would keep every reply's text alive
            _put(self._after_reply, (process, _extend(links[-1], reply, cache=False)), conv)


def _put(d: OrderedDict, key, value) -> None:
    d[key] = value
    d.move_to_end(key)
    if len(d) > _MAX_KEYS:
        d.popitem(last=False)
