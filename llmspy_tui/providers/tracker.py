"""From HTTP events to LLM exchanges: one entry point for the whole provider layer.

ExchangeTracker pairs each request with its response (by connection and stream), recognises the
API once the request body is whole, follows a streamed response item by item, and hands on
ExchangeStarted / ExchangeProgress / ExchangeFinished. Sans-IO like the protocol layer: no clock
(times come from events), no threads, and it never raises: a call it cannot understand is still
an exchange, with the reason in `problem`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import orjson

from ..protocol import events as pe
from ..protocol.events import BodyFlush
from ..protocol.framing import SseFramer
from ..redact import mask_keys, mask_keys_bytes, redact_target
from . import estimate, pricing
from .base import Api, error_message
from .builder import ResponseBuilder
from .detect import api_for, api_from_response, provider_of
from .events import Exchange, ExchangeFinished, ExchangeProgress, ExchangeStarted
from .model import ESTIMATED, NO_USAGE, LlmRequest, LlmResponse, Timing, Usage

ESTIMATE_EVERY = 500_000_000  # ns of capture time a stream goes on before its prompt is estimated (live)


@dataclass(frozen=True, slots=True)
class Options:
    keep_body: int = 4 << 20  # raw body bytes kept per message for display and export
    parse_body: int = 64 << 20  # largest body parsed as JSON (the protocol layer caps at 64 MiB)
    live: bool = True  # ExchangeProgress while responses stream (the UI wants it, JSONL not)
    show_secrets: bool = False


class _Buf:
    """Body bytes held for parsing and display: the pieces as they came, joined once when read
    (a request body often comes whole in one piece: then it is never copied)."""

    __slots__ = ("masked", "parts", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.masked = 0  # how many bytes from the start have had credentials masked

    def add(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    def bytes(self) -> bytes:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return b""
        joined = b"".join(parts)
        self.parts = [joined]
        return joined

    def __len__(self) -> int:
        return self.size


_SPACE = re.compile(rb"[ \t\n\r\x0b\x0c]*")  # what bytes.lstrip() strips


def _head(data: bytes, n: int) -> bytes:
    """data.lstrip()[:n], without copying the rest."""
    if data[:1].isspace():
        start = _SPACE.match(data).end()
        return data[start : start + n]
    return data[:n]


class _Names:
    """Header names, looked up only if the API's path did not say enough."""

    __slots__ = ("headers",)

    def __init__(self, headers) -> None:
        self.headers = headers

    def __contains__(self, name: str) -> bool:
        return any(k == name for k, _ in self.headers)


class _Pending:
    """An exchange in flight: what is known so far."""

    __slots__ = ("id", "conn", "stream", "pid", "ts", "head", "resp_head", "req_body", "resp_body",
                 "req_len", "resp_len", "req_end", "resp_end", "api", "provider", "price_id", "request",
                 "builder", "items", "started", "first_token_ts", "problems", "live_out", "live_in", "item_ts", "est_due",
                 "truncated", "parse_problems", "role")

    def __init__(self, xid: str, conn: str, stream: int, pid: int, ts: int, role: str = "client") -> None:
        self.id, self.conn, self.stream, self.pid, self.ts = xid, conn, stream, pid, ts
        self.role = role  # the traced process's side, as known when the exchange began
        self.head: pe.RequestHead | None = None
        self.resp_head: pe.ResponseHead | None = None
        self.req_body = _Buf()
        self.resp_body = _Buf()
        self.req_len = self.resp_len = 0
        self.req_end: pe.MessageEnd | None = None
        self.resp_end: pe.MessageEnd | None = None
        self.api: Api | None = None
        self.provider: str | None = None
        self.price_id: str | None = None
        self.request: LlmRequest | None = None
        self.builder = ResponseBuilder()
        self.items = 0  # streamed items seen in the response
        self.started = False
        self.first_token_ts: int | None = None
        self.item_ts = 0  # capture time of the latest streamed item: how far the response has got
        self.problems: list[str] = []
        self.live_out = 0  # output tokens estimated from what has streamed
        self.live_in: int | None = None
        self.est_due: int | None = None  # capture time from which the prompt is estimated (live)
        self.truncated = False
        self.parse_problems: list[str] = []  # request's and response's, each said


class ExchangeTracker:
    """Sans-IO: feed() protocol events, get exchange events back."""

    def __init__(self, options: Options | None = None) -> None:
        self.opt = options or Options()
        self._open: dict[tuple[str, int], _Pending] = {}
        self._next_id = 1
        self._dirty: dict[str, _Pending] = {}
        self._roles: dict[str, str] = {}  # conn -> the traced process's side
        self._tokenizer_ready = False
        self.internal_errors = 0

    # -- input -----------------------------------------------------------------------------
    def feed_many(self, events) -> list:
        out: list = []
        for ev in events:
            try:
                self._feed(ev, out)
            except Exception as e:  # a bug here must cost one exchange, never the monitor
                self.internal_errors += 1
                self._drop(ev, out, e)
        if self._dirty:
            for p in self._dirty.values():
                try:
                    out.append(self._progress(p))
                except Exception as e:  # no update shown this time; the exchange goes on, and says so
                    self.internal_errors += 1
                    p.problems.append(f"internal error: {type(e).__name__}: {e}")
            self._dirty.clear()
        return out

    def feed(self, ev) -> list:
        return self.feed_many((ev,))

    def finish(self, ts: int) -> list:
        """End of capture: whatever is still open ends here, incomplete."""
        out: list = []
        for key in list(self._open):
            self._finish(self._open.pop(key), ts, out, "capture ended before the exchange did")
        self._dirty.clear()
        return out

    @property
    def open_exchanges(self) -> int:
        return len(self._open)

    # -- events ----------------------------------------------------------------------------
    def _feed(self, ev, out: list) -> None:
        t = type(ev)
        if t is BodyFlush:
            self._flush(ev, out)
        elif t is pe.SseEvent:
            self._item(ev, ev.event, ev.data, out)
        elif t is pe.BodyData:
            p = self._get(ev, ev.ts)
            if ev.side == pe.REQUEST:
                p.req_len += len(ev.data)
                self._keep(p, p.req_body, ev.data)
            else:
                p.resp_len += len(ev.data)
                self._keep(p, p.resp_body, ev.data, streamed=p.items > 0)
        elif t is pe.JsonItem:
            self._item(ev, "", ev.text, out)
        elif t is pe.RequestHead:
            p = self._get(ev, ev.ts)
            p.head = ev
        elif t is pe.ResponseHead:
            if not ev.interim:
                p = self._get(ev, ev.ts)
                p.resp_head = ev
                if p.head is None or p.req_end is not None:
                    self._start(p, out)  # else the request body is still coming: wait for all of it
        elif t is pe.MessageEnd:
            p = self._get(ev, ev.ts)
            if ev.side == pe.REQUEST:
                p.req_end = ev
                self._start(p, out)
            else:
                p.resp_end = ev
                self._open.pop((p.conn, p.stream), None)
                self._dirty.pop(p.id, None)
                self._finish(p, ev.ts, out)
        elif t is pe.ConnectionDetected:
            self._roles[ev.conn] = ev.role
        elif t is pe.ConnectionEnd:
            for key in [k for k in self._open if k[0] == ev.conn]:
                p = self._open.pop(key)
                self._dirty.pop(p.id, None)
                self._finish(p, ev.ts, out, f"connection ended ({ev.reason}) before the response did")
            self._roles.pop(ev.conn, None)

    def _get(self, ev, ts: int) -> _Pending:
        key = (ev.conn, ev.stream)
        p = self._open.get(key)
        if p is None:
            p = self._open[key] = _Pending(f"x{self._next_id}", ev.conn, ev.stream, ev.pid, ts,
                                           self._roles.get(ev.conn, "client"))
            self._next_id += 1
        return p

    def _keep(self, p: _Pending, buf: _Buf, data: bytes, streamed: bool = False) -> None:
        """Bodies are held whole for parsing; a streamed one is parsed item by item, so only
        what is kept for display is held."""
        limit = self.opt.keep_body if streamed else max(self.opt.keep_body, self.opt.parse_body)
        room = limit - buf.size
        if room >= len(data):
            buf.add(data)
        else:
            if room > 0:
                buf.add(data[:room])
            p.truncated = True

    # -- request ---------------------------------------------------------------------------
    def _start(self, p: _Pending, out: list) -> None:
        """The request is whole (or the response began first): recognise the call, announce it."""
        if p.started:
            return
        p.started = True
        head = p.head
        if head is not None:
            obj = self._json(p, p.req_body, p.req_len, "request")
            api = api_for(head.method, head.target, _Names(head.headers), obj)
            if api is not None:
                self._set_api(p, api, head.authority)
                if not isinstance(obj, dict):  # an LLM route with a body we could not read: shown
                    out.append(ExchangeStarted(p.ts, self._exchange(p, p.ts, None, False)))  # as such
                    return
                try:
                    p.request = api.request(obj, head.target)
                except Exception as e:  # a body we misread: keep the exchange, say so
                    self.internal_errors += 1
                    p.problems.append(f"request not understood: {type(e).__name__}: {e}")
        out.append(ExchangeStarted(p.ts, self._exchange(p, p.ts, None, False)))

    def _set_api(self, p: _Pending, api: Api, host: str) -> None:
        p.api = api
        p.provider, p.price_id = provider_of(host, api)

    def _read(self, buf: _Buf) -> bytes:
        """A body as kept, with API keys in it masked unless the user asked to see secrets: done
        before parsing, so prompt text, tool arguments and raw views all come out masked."""
        data = buf.bytes()
        if self.opt.show_secrets or buf.masked == buf.size:
            return data
        data = mask_keys_bytes(data)
        buf.parts, buf.masked = [data], buf.size
        return data

    def _json(self, p: _Pending, buf: _Buf, length: int, side: str):
        if not buf.size:
            return None
        if buf.size < length:
            p.parse_problems.append(
                f"{side} body of {length} bytes not parsed (over the {self.opt.parse_body}-byte limit); "
                f"its first {min(length, self.opt.keep_body)} bytes are kept")
            return None
        data = self._read(buf)
        if _head(data, 1) not in (b"{", b"["):
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            # JSON whose only fault is bytes that are not UTF-8: read with replacement characters
            text = data.decode("utf-8", "replace")
            if text.encode() != data:
                try:
                    obj = orjson.loads(text)
                except orjson.JSONDecodeError:
                    pass
                else:
                    p.parse_problems.append(f"{side} body has bytes that are not UTF-8 (shown as \ufffd)")
                    return obj
            p.parse_problems.append(f"{side} body is not valid JSON ({e.msg})")
            return None

    # -- response --------------------------------------------------------------------------
    def _flush(self, f: BodyFlush, out: list) -> None:
        """A body's bytes and stream items of one batch (the pipeline's bulk form of BodyData,
        SseEvent and JsonItem): the same outcome as those events one by one."""
        p = self._get(f, f.ts)
        items = f.items
        if f.pieces:
            data = f.data()
            if f.side == pe.REQUEST:
                p.req_len += len(data)
                self._keep(p, p.req_body, data)
            else:
                p.resp_len += len(data)
                self._keep(p, p.resp_body, data, streamed=p.items > 0 or bool(items))
        if not items or f.side != pe.RESPONSE:
            return
        sse = f.framing == "sse"
        loads = orjson.loads
        mask = None if self.opt.show_secrets else mask_keys_bytes
        b = p.builder
        stream_item = p.api.stream_item if p.api is not None else None
        first = p.first_token_ts
        last = None
        p.items += len(items)
        for ts, event, data, _, _, _, _ in items:
            if mask is not None:
                data = mask(data)
            try:
                obj = loads(data)
            except orjson.JSONDecodeError:
                if not sse:
                    continue
                # as text: "[DONE]", or JSON made valid by decoding bad UTF-8 with replacements
                text = data.decode("utf-8", "replace")
                if text.strip() == "[DONE]":
                    b.done = True  # OpenAI's end of stream
                    continue
                try:
                    obj = loads(text)
                except orjson.JSONDecodeError:
                    continue  # keep-alive comments, non-JSON events: nothing of the call's content
            if stream_item is None:
                if p.head is not None and p.started:
                    continue  # a request we know is not an LLM call
                api = api_from_response(event, obj)
                if api is None:
                    continue
                self._set_api(p, api, p.head.authority if p.head else "")
                if not p.started:
                    self._start(p, out)  # which may recognise the API from the request instead
                stream_item = p.api.stream_item
            if first is None:
                before = b.outputs
                stream_item(b, event, obj)
                if b.outputs > before:
                    first = p.first_token_ts = ts
            else:
                stream_item(b, event, obj)
            last = ts
        if last is not None:
            p.item_ts = last
        if self.opt.live and (b.new_text or b.new_reasoning or b.tools_changed or b.usage_changed):
            self._dirty[p.id] = p

    def _item(self, ev, event: str, data, out: list) -> None:
        p = self._get(ev, ev.ts)
        if ev.side != pe.RESPONSE:
            return
        p.items += 1
        if isinstance(data, str) and data.strip() == "[DONE]":
            p.builder.done = True  # OpenAI's end of stream
            return
        if not self.opt.show_secrets:
            data = mask_keys_bytes(data) if isinstance(data, bytes) else mask_keys(data)
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return  # keep-alive comments, non-JSON events: nothing of the call's content
        if p.api is None:
            if p.head is not None and p.started:
                return  # a request we know is not an LLM call
            api = api_from_response(event, obj)
            if api is None:
                return
            self._set_api(p, api, p.head.authority if p.head else "")
            if not p.started:
                self._start(p, out)
        b = p.builder
        before = b.outputs
        p.api.stream_item(b, event, obj)
        if b.outputs > before and p.first_token_ts is None:
            p.first_token_ts = ev.ts
        p.item_ts = ev.ts
        if self.opt.live and (b.new_text or b.new_reasoning or b.tools_changed or b.usage_changed):
            self._dirty[p.id] = p

    def _progress(self, p: _Pending) -> ExchangeProgress:
        if not self._tokenizer_ready:
            # Streams that report usage need no estimate, but the next one may: the tokenizer
            # is loaded with the first stream shown, not in the middle of a later one.
            self._tokenizer_ready = True
            estimate.load(p.request.model if p.request else "")
        b = p.builder
        text, reasoning = b.take()
        tools = b.tool_calls() if b.tools_changed else None
        b.tools_changed = b.usage_changed = False
        ts = max(p.item_ts, p.resp_head.ts if p.resp_head else p.ts)
        usage = p.api.usage(b.reported_usage) if p.api else Usage()
        if usage.input_tokens is None or usage.output_tokens is None:
            self._estimate(p, text + reasoning, ts)
            usage = Usage(usage.input_tokens if usage.input_tokens is not None else p.live_in,
                          usage.output_tokens if usage.output_tokens is not None else p.live_out,
                          usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens, ESTIMATED)
        cost = self._cost(p, usage, b.model, running=True)
        status = p.resp_head.status if p.resp_head else None
        return ExchangeProgress(ts, p.id, text, reasoning, tools, usage, cost, status, p.first_token_ts)

    @staticmethod
    def _estimate(p: _Pending, new_text: str, ts: int) -> None:
        """The running token estimate of a stream without reported usage. Output: the new text
        counted at each progress update (a few tokens). Input: the whole prompt, tens of KB for
        an agent, which tiktoken takes milliseconds over, so only once the stream has gone on
        for ESTIMATE_EVERY of capture time: a stream that ends sooner gets it at its end."""
        if new_text:
            model = p.request.model if p.request else (p.builder.model or "")
            p.live_out += estimate.count(new_text, model) or 0
        if p.live_in is not None or p.request is None:
            return
        if p.est_due is None:
            p.est_due = ts + ESTIMATE_EVERY
        elif ts >= p.est_due:
            p.live_in = estimate.request_tokens(p.request)

    def _finish(self, p: _Pending, ts: int, out: list, problem: str = "") -> None:
        """The exchange ends. Never raises (it is called outside feed_many's guard too, and its
        pending state is gone by then): a bug met here costs the response, never the exchange."""
        try:
            self._finish_now(p, ts, out, problem)
        except Exception as e:
            self.internal_errors += 1
            self._give_up(p, ts, out, e)

    def _finish_now(self, p: _Pending, ts: int, out: list, problem: str) -> None:
        if not p.started:
            self._start(p, out)
        if problem:
            p.problems.append(problem)
        response = None
        status = p.resp_head.status if p.resp_head else None
        if p.api is not None:
            response = self._response(p, status)
        usage = response.usage if response else Usage()
        if p.api is not None and response is not None:
            model = response.response_model or (p.request.model if p.request else "")
            tool_args = [c.arguments for c in response.tool_calls]
            if status is None or status < 400:
                usage = estimate.fill_in(usage, p.request, response.text, response.reasoning, tool_args, model,
                                         request_estimate=p.live_in)
            elif usage.source is None:
                usage = Usage(0, 0, source=None)  # a refused call uses no tokens unless it says so
        x = self._exchange(p, ts, response, True, usage)
        out.append(ExchangeFinished(ts, x))

    def _response(self, p: _Pending, status: int | None) -> LlmResponse:
        b = p.builder
        if p.items == 0 and p.resp_body.size:
            obj = self._json(p, p.resp_body, p.resp_len, "response")
            if obj is not None:
                p.api.body(b, obj)
            elif _head(p.resp_body.bytes(), 6) in (b"data: ", b"data:", b"event:"):  # SSE sent as another type
                for e in SseFramer().feed(self._read(p.resp_body)):
                    try:
                        p.api.stream_item(b, e.event, orjson.loads(e.data))
                    except orjson.JSONDecodeError:
                        pass
        if status is not None and status >= 400:
            if not b.error:  # the API module found no error in the body: any shape, or its text
                try:
                    b.error = error_message(orjson.loads(self._read(p.resp_body))) if p.resp_body.size else None
                except orjson.JSONDecodeError:
                    pass
                b.error = b.error or _short(self._read(p.resp_body))
            b.error = f"HTTP {status}: {b.error}" if b.error else f"HTTP {status}"
        if p.resp_head is None and p.resp_end is None and not b.error:
            b.error = "no response"
        return b.result(p.api.usage(b.reported_usage))

    def _exchange(self, p: _Pending, ts: int, response: LlmResponse | None, final: bool,
                  usage: Usage | None = None) -> Exchange:
        head, rh = p.head, p.resp_head
        problems = list(p.problems)
        problems += p.parse_problems
        if final:
            problems += p.builder.problems
        complete = False
        if final:
            for side, end in (("request", p.req_end), ("response", p.resp_end)):
                if end is not None and not end.complete and not (side == "response" and self._whole_stream(p)):
                    problems.append(f"{side}: {end.problem or 'incomplete'}")
            if head is None:
                problems.append("request not seen (the monitor joined mid-exchange)")
            elif p.req_end is None:
                problems.append("request body not seen whole")
            if p.resp_end is None and rh is None and not problems:
                problems.append("no response seen")
            complete = bool(p.req_end and p.resp_end and p.req_end.complete
                            and (p.resp_end.complete or self._whole_stream(p)))
        usage = usage or NO_USAGE
        cost = self._cost(p, usage, response.response_model if response else None) if final and p.api else None
        keep = self.opt.keep_body
        end_ts = ts
        if p.resp_end is not None:
            end_ts = max(p.resp_end.last_byte_ts, p.resp_end.ts) if p.resp_end.last_byte_ts else p.resp_end.ts
        first = p.first_token_ts
        if first is None and final and p.resp_end is not None and p.resp_len:
            first = p.resp_end.first_byte_ts  # a whole-body response: its first byte
        return Exchange(
            id=p.id, conn=p.conn, stream=p.stream, pid=p.pid,
            host=head.authority if head else "", method=head.method if head else "",
            path=redact_target(head.target, self.opt.show_secrets) if head else "",
            http_version=(head.http_version if head else (rh.http_version if rh else "")),
            status=rh.status if rh else None, provider=p.provider, api=p.api.name if p.api else None,
            request=p.request, response=response, usage=usage, cost_usd=cost,
            timing=Timing(p.ts, end_ts if final else p.ts, first, (p.req_end.last_byte_ts or p.req_end.ts) if p.req_end else None,
                          rh.ts if rh else None),
            complete=complete, problem="; ".join(x for x in problems if x),
            request_headers=head.headers if head else (), response_headers=rh.headers if rh else (),
            request_body=self._read(p.req_body)[:keep], response_body=self._read(p.resp_body)[:keep] if final else b"",
            body_truncated=p.truncated or p.req_body.size > keep or p.resp_body.size > keep,
            price_provider=p.price_id, role=p.role,
        )

    @staticmethod
    def _whole_stream(p: _Pending) -> bool:
        """A stream that reached the API's own end event is whole even if the client hung up
        before reading the HTTP framing's end (SDKs stop at [DONE] and close the connection)."""
        end = p.resp_end
        return (p.builder.done and end is not None and not end.complete and "; " not in end.problem
                and end.problem.startswith("connection ") and " before the " in end.problem)

    @staticmethod
    def _cost(p: _Pending, usage: Usage, response_model: str | None, running: bool = False) -> float | None:
        """Priced by the model that answered, else by the one asked for (aliases like
        `gpt-4o` answer as a dated snapshot; either may be the one genai-prices knows)."""
        requested = p.request.model if p.request else ""
        price = pricing.running_cost if running else pricing.cost_usd
        for model in dict.fromkeys(m for m in (response_model, requested) if m):
            cost = price(usage, model, p.price_id, p.ts)
            if cost is not None:
                return cost
        return None

    def _drop(self, ev, out: list, e: Exception) -> None:
        key = (getattr(ev, "conn", None), getattr(ev, "stream", None))
        p = self._open.pop(key, None)
        if p is not None:
            self._give_up(p, getattr(ev, "ts", p.ts), out, e)

    def _give_up(self, p: _Pending, ts: int, out: list, e: Exception) -> None:
        """A bug met while handling this exchange: it ends here, with the reason as its problem."""
        self._dirty.pop(p.id, None)
        p.problems.append(f"internal error: {type(e).__name__}: {e}")
        try:
            x = self._exchange(p, ts, None, True)
        except Exception:  # even its summary failed: the bare call, so that it still ends
            x = Exchange(id=p.id, conn=p.conn, stream=p.stream, pid=p.pid, host="", method="", path="",
                         http_version="", status=None, provider=p.provider, api=None, request=None, response=None,
                         timing=Timing(p.ts, max(ts, p.ts)), problem="; ".join(p.problems))
        out.append(ExchangeFinished(x.timing.ts_end, replace(x, api=None) if p.api is None else x))


def _short(body: bytes, n: int = 300) -> str:
    text = bytes(body[:n]).decode("utf-8", "replace").strip()
    return text + ("…" if len(body) > n else "")
