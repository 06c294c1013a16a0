"""Accumulates one response as its pieces arrive: text, reasoning, tool calls, usage.

Every API module drives one of these; it also remembers what changed since the last `take()`,
so that the store can show a response growing without rebuilding it per event.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from .model import REPORTED, LlmResponse, ToolCall, Usage


@dataclass(slots=True)
class _Tool:
    id: str = ""
    name: str = ""
    parts: list | None = None  # argument fragments
    final: str | None = None  # complete arguments, when the API sends them whole

    def arguments(self) -> str:
        if self.final is not None:
            return self.final
        return "".join(self.parts or ())


class ResponseBuilder:
    __slots__ = ("_text", "_reasoning", "_tools", "finish_reason", "error", "model", "response_id",
                 "_usage", "new_text", "new_reasoning", "tools_changed", "usage_changed", "outputs", "scratch", "done",
                 "problems")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict = {}  # key (index or id) -> _Tool, in arrival order
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self._usage: dict = {}
        self.new_text: list[str] = []
        self.new_reasoning: list[str] = []
        self.tools_changed = False
        self.usage_changed = False
        self.outputs = 0  # pieces of output seen (text, reasoning or tool call): first token time
        self.scratch: dict = {}  # an API module's own notes about this response
        self.done = False  # the API's own end-of-stream event was seen ([DONE], message_stop, ...)
        self.problems: list[str] = []  # what was ignored, and why

    # -- pieces ---------------------------------------------------------------------------
    def text(self, piece) -> None:
        if isinstance(piece, str) and piece:
            self._text.append(piece)
            self.new_text.append(piece)
            self.outputs += 1

    def reasoning(self, piece) -> None:
        if isinstance(piece, str) and piece:
            self._reasoning.append(piece)
            self.new_reasoning.append(piece)
            self.outputs += 1

    def tool(self, key, id=None, name=None, args_piece=None, arguments=None) -> None:
        """Start or extend a tool call. `args_piece` appends; `arguments` sets them whole."""
        key = tool_key(key)
        t = self._tools.get(key)
        if t is None:
            t = self._tools[key] = _Tool()
        if id:
            t.id = as_text(id)
        if name:
            t.name = as_text(name)
        if args_piece:
            if t.parts is None:
                t.parts = []
            t.parts.append(args_piece if isinstance(args_piece, str) else json_text(args_piece))
        if arguments is not None:
            t.final = arguments if isinstance(arguments, str) else json_text(arguments)
        self.tools_changed = True
        self.outputs += 1

    def identity(self, obj: dict, model_key: str = "model", id_key: str = "id") -> None:
        """The answering model and the response's id, where the object carries them."""
        if isinstance(obj.get(model_key), str):
            self.model = obj[model_key]
        if isinstance(obj.get(id_key), str):
            self.response_id = obj[id_key]

    def problem(self, text: str) -> None:
        """Something of the response that could not be taken as sent (shown with the exchange)."""
        if text not in self.problems and len(self.problems) < 8:
            self.problems.append(text)

    def has_arguments(self, key) -> bool:
        t = self._tools.get(tool_key(key))
        return t is not None and (t.final is not None or bool(t.parts))

    def usage(self, **values) -> None:
        """Reported counts; a later report of a field replaces an earlier one (streams repeat
        or grow usage, and the final report is the one that counts). A value that is not a
        token count (a string, a float, a negative or absurd number) is ignored, and said so."""
        for k, v in values.items():
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT:
                self.problem(f"reported {k} token count ignored: {short_repr(v)} is not a count")
                continue
            if self._usage.get(k) != v:
                self._usage[k] = v
                self.usage_changed = True

    # -- results --------------------------------------------------------------------------
    @property
    def reported_usage(self) -> dict:
        return self._usage

    def result(self, usage: Usage | None = None) -> LlmResponse:
        return LlmResponse(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            error=self.error,
            response_model=self.model,
            response_id=self.response_id,
            usage=usage if usage is not None else Usage(),
        )

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(t.id, t.name, t.arguments()) for t in self._tools.values())

    def take(self) -> tuple[str, str]:
        """Text and reasoning added since the last take()."""
        text = "".join(self.new_text)
        reasoning = "".join(self.new_reasoning)
        self.new_text.clear()
        self.new_reasoning.clear()
        return text, reasoning


def json_text(value) -> str:
    """JSON text of a parsed value (tool arguments that arrived as an object)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # nested deeper than orjson writes, or an integer beyond 64 bits
        pass
    try:
        return str(value)
    except RecursionError:  # orjson reads 1024 levels; Python's repr stops sooner
        return f"[a JSON {'array' if isinstance(value, list) else 'object'} nested too deep to show]"


def as_text(value) -> str:
    """A value the wire should have given as a string, as one (anything else as its JSON text)."""
    return value if isinstance(value, str) else json_text(value)


MAX_COUNT = 1 << 40  # a reported token count beyond this is not one (and would overflow the totals' JSON)


def short_repr(value, n: int = 40) -> str:
    text = json_text(value) if isinstance(value, (list, dict)) else repr(value)
    return text if len(text) <= n else text[:n] + "…"


def as_list(value) -> list | tuple:
    """A JSON array, or nothing to iterate (a number, object or string where a list belongs)."""
    return value if isinstance(value, list) else ()


def tool_key(key):
    """A tool call's key as the wire gave it (an index or an id); a list or an object where it
    belongs (malformed) as its JSON text, since it must be hashable."""
    return json_text(key) if isinstance(key, (list, dict)) else key


def as_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def first_int(*values) -> int | None:
    """The first value that is a count (0 included)."""
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def plus(*values) -> int | None:
    """Sum of the counts that are present; None when none is."""
    present = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    return sum(present) if present else None


def reported(input_tokens=None, output_tokens=None, cache_read=None, cache_write=None,
             reasoning=None) -> Usage:
    if input_tokens is None and output_tokens is None:
        return Usage()
    return Usage(input_tokens, output_tokens, cache_read, cache_write, reasoning, REPORTED)
