"""What the provider layer tells the store: exchanges starting, growing and finishing."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.events import Headers
from .model import NO_USAGE, LlmRequest, LlmResponse, Timing, ToolCall, Usage


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its response, with the LLM call it carries (if it is one)."""

    id: str  # "x1", "x2", ... in order of first sight: the same for a live run and its replay
    conn: str
    stream: int
    pid: int
    host: str
    method: str
    path: str  # with credentials in the query masked unless --show-secrets
    http_version: str  # "1.1" or "2"
    status: int | None
    provider: str | None  # None: not an LLM API call
    api: str | None
    request: LlmRequest | None
    response: LlmResponse | None  # None until the response's end (and for non-LLM exchanges)
    usage: Usage = NO_USAGE  # reported, else estimated
    cost_usd: float | None = None
    timing: Timing = Timing(0, 0)
    complete: bool = False  # both messages seen whole
    problem: str = ""  # why not complete, or why the call could not be understood
    request_headers: Headers = ()
    response_headers: Headers = ()
    request_body: bytes = b""  # as decoded, up to the layer's keep limit
    response_body: bytes = b""
    body_truncated: bool = False  # a kept body was cut at the limit
    price_provider: str | None = None  # genai-prices provider id used for the cost
    role: str = "client"  # the traced process's side: "server" when it answered the call

    @property
    def is_llm(self) -> bool:
        return self.provider is not None

    @property
    def model(self) -> str:
        return self.request.model if self.request is not None else ""

    @property
    def error(self) -> str | None:
        return self.response.error if self.response is not None else None


@dataclass(frozen=True, slots=True)
class ExchangeStarted:
    ts: int
    exchange: Exchange  # request known; response not yet


@dataclass(frozen=True, slots=True)
class ExchangeProgress:
    """A response is streaming: what arrived since the last progress event of this exchange."""

    ts: int
    id: str
    text: str  # new text
    reasoning: str  # new reasoning text
    tool_calls: tuple[ToolCall, ...] | None  # all calls so far when they changed, else None
    usage: Usage  # best count so far: reported, or estimated from what has streamed
    cost_usd: float | None
    status: int | None
    first_token_ts: int | None


@dataclass(frozen=True, slots=True)
class ExchangeFinished:
    ts: int
    exchange: Exchange


ExchangeEvent = ExchangeStarted | ExchangeProgress | ExchangeFinished

