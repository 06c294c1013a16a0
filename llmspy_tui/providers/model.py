"""The normalised view of an LLM call, the same for every provider.

Token counts follow one convention whatever the provider reports, so that tallies add up:
`input_tokens` counts every prompt token, cached or not (Anthropic reports uncached ones only;
its cache read and write counts are added back), and `output_tokens` counts every generated
token including reasoning (Gemini reports thoughts apart; they are added back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

REPORTED = "reported"
ESTIMATED = "estimated"


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # as the model produced it: usually JSON text


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system", "user", "assistant" or "tool"
    text: str  # text parts joined with "\n"; other parts are summarised as "[image]" and the like
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""  # a tool result answers this call
    thinking: str = ""  # reasoning the client sent back (Anthropic thinking blocks)


@dataclass(frozen=True, slots=True)
class LlmRequest:
    model: str = ""
    stream: bool = False
    system: str = ""
    messages: tuple[Message, ...] = ()
    tools: tuple[str, ...] = ()  # names
    params: dict = field(default_factory=dict)  # temperature, max_tokens, ...: as sent
    previous_response_id: str = ""  # Responses API: links this call to an earlier one


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    source: str | None = None  # REPORTED, ESTIMATED, or None when unknown

    def to_json(self) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cache_read_tokens": self.cache_read_tokens, "cache_write_tokens": self.cache_write_tokens,
                "reasoning_tokens": self.reasoning_tokens, "source": self.source}


NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class LlmResponse:
    text: str = ""
    reasoning: str = ""  # thinking / reasoning summary text, when the provider sends it
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    error: str | None = None  # the provider's error message (4xx/5xx body), or why parsing failed
    response_model: str | None = None
    response_id: str | None = None
    usage: Usage = NO_USAGE  # as reported; estimation happens later


@dataclass(frozen=True, slots=True)
class Timing:
    ts_start: int  # request's first byte, ns since the epoch (capture clock)
    ts_end: int  # response's last byte (or when the exchange was given up)
    ts_first_token: int | None = None  # first response byte carrying output
    ts_request_end: int | None = None  # request's last byte: the wait for the model starts here
    ts_response_start: int | None = None  # response head (status line or HEADERS frame)

    @property
    def ttft_ms(self) -> float | None:
        return None if self.ts_first_token is None else round((self.ts_first_token - self.ts_start) / 1e6, 3)

    @property
    def duration_ms(self) -> float:
        return round((self.ts_end - self.ts_start) / 1e6, 3)
