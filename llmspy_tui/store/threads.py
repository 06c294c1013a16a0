"""Which conversation a chat call continues.

A chat request carries its whole history. A call continues an earlier one of the same process
when its messages start with that call's messages followed by that call's reply; the Responses
API says so outright with `previous_response_id`. Each history prefix is reduced to a chain of
hashes, so a lookup costs one dict probe per message, whatever the conversation's length.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import orjson

from ..providers.model import LlmRequest, LlmResponse, Message

_MAX_KEYS = 100_000


def _canon_args(args: str) -> str:
    """Tool arguments compared by meaning: clients re-serialise them when they echo them back."""
    try:
        return orjson.dumps(orjson.loads(args), option=orjson.OPT_SORT_KEYS).decode()
    except (orjson.JSONDecodeError, TypeError):
        return args.strip()


def _message_key(m: Message) -> bytes:
    calls = [(c.name, _canon_args(c.arguments)) for c in m.tool_calls]
    return orjson.dumps([m.role, m.text.strip(), calls, m.tool_call_id if m.role == "tool" else ""])


def chain(req: LlmRequest) -> list[bytes]:
    """chain[k]: digest of the system text and the first k messages."""
    h = hashlib.blake2b(req.system.strip().encode(), digest_size=16).digest()
    out = [h]
    for m in req.messages:
        h = hashlib.blake2b(h + _message_key(m), digest_size=16).digest()
        out.append(h)
    return out


def _extend(h: bytes, m: Message) -> bytes:
    return hashlib.blake2b(h + _message_key(m), digest_size=16).digest()


class Threader:
    """Conversation ids for calls, in the order calls are seen. Bounded: old keys are forgotten."""

    def __init__(self) -> None:
        self._after_reply: OrderedDict = OrderedDict()  # (pid, digest of history + reply) -> conv
        self._after_request: OrderedDict = OrderedDict()  # (pid, digest of history) -> conv
        self._responses: OrderedDict = OrderedDict()  # response id -> conv
        self._next = 1

    def assign(self, pid: int, req: LlmRequest | None) -> str:
        """The conversation of a call that is starting: an earlier one it continues, or a new one."""
        if req is not None:
            if req.previous_response_id and req.previous_response_id in self._responses:
                return self._responses[req.previous_response_id]
            links = chain(req)
            for k in range(len(req.messages), 0, -1):
                conv = self._after_reply.get((pid, links[k]))
                if conv is not None:
                    return conv
                # the reply was not seen whole (or the client rewrote it): the history before
                # it, then an assistant turn, still continues that call
                if req.messages[k - 1].role == "assistant":
                    conv = self._after_request.get((pid, links[k - 1]))
                    if conv is not None:
                        return conv
        conv = f"c{self._next}"
        self._next += 1
        return conv

    def finished(self, pid: int, conv: str, req: LlmRequest | None, resp: LlmResponse | None) -> None:
        """Remember a finished call, so that the next turn of its conversation finds it."""
        if resp is not None and resp.response_id:
            _put(self._responses, resp.response_id, conv)
        if req is None or resp is None or resp.error:
            return
        links = chain(req)
        _put(self._after_request, (pid, links[-1]), conv)
        if resp.text or resp.tool_calls:
            reply = Message("assistant", resp.text, resp.tool_calls)
            _put(self._after_reply, (pid, _extend(links[-1], reply)), conv)


def _put(d: OrderedDict, key, value) -> None:
    d[key] = value
    d.move_to_end(key)
    if len(d) > _MAX_KEYS:
        d.popitem(last=False)
