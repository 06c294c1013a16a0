"""What every API module provides, and helpers for the content shapes they share."""

from __future__ import annotations

import orjson

from .builder import ResponseBuilder, as_text, json_text
from .model import LlmRequest, Usage

# Request keys that hold content, not parameters: kept out of `params`.
CONTENT_KEYS = frozenset({
    "messages", "input", "contents", "system", "instructions", "systemInstruction", "system_instruction",
    "tools", "functions", "model", "stream", "message", "chat_history", "preamble", "prompt", "documents",
    "previous_response_id", "stream_options",
})
_PARAM_TEXT_MAX = 200


class Api:
    """One API family (wire format), whoever serves it."""

    name = ""
    owner = ""  # provider that defined the format: the provider name on hosts we do not know

    def request(self, obj: dict, path: str) -> LlmRequest:
        raise NotImplementedError

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        """One streamed item: an SSE event (name, parsed data) or a JSON element (name "")."""
        raise NotImplementedError

    def body(self, b: ResponseBuilder, obj) -> None:
        """The whole body of a non-streamed response."""
        raise NotImplementedError

    def usage(self, u: dict) -> Usage:
        """Normalised usage from the builder's reported counts."""
        raise NotImplementedError


def params_of(obj: dict) -> dict:
    """Generation parameters as sent (temperature, max_tokens, ...); long values shortened."""
    out = {}
    for k, v in obj.items():
        if k in CONTENT_KEYS:
            continue
        if isinstance(v, (dict, list)):
            try:
                text = orjson.dumps(v).decode()
            except TypeError:  # nested deeper than JSON exports go: kept as text, never as the value
                text = v = json_text(v)
            if len(text) > _PARAM_TEXT_MAX:
                v = text[:_PARAM_TEXT_MAX] + "…"
        elif isinstance(v, str) and len(v) > _PARAM_TEXT_MAX:
            v = v[:_PARAM_TEXT_MAX] + "…"
        out[k] = v
    return out


def text_of(content, text_keys=("text",)) -> str:
    """Text of a content value: a string, or a list of parts of which the text ones count and
    the others are named in brackets ("[image]"), so a reader knows something was there."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return json_text(content)
    out = []
    for part in content:
        if isinstance(part, str):
            out.append(part)
            continue
        if not isinstance(part, dict):
            continue
        for key in text_keys:
            t = part.get(key)
            if isinstance(t, str):
                out.append(t)
                break
        else:
            kind = part.get("type") or next(iter(part), "part")
            out.append(f"[{as_text(kind)}]")
    return "\n".join(out)


def tool_names(tools) -> tuple[str, ...]:
    """Names of declared tools in the OpenAI/Anthropic/Cohere shapes; built-in tools by type."""
    names = []
    for t in tools if isinstance(tools, list) else ():
        if not isinstance(t, dict):
            continue
        fn = t.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.append(fn["name"])
        elif isinstance(t.get("name"), str):
            names.append(t["name"])
        elif isinstance(t.get("type"), str):
            names.append(t["type"])
    return tuple(names)


def model_of(obj: dict) -> str:
    m = obj.get("model")
    return m if isinstance(m, str) else ""


def error_message(obj) -> str | None:
    """The message in a provider's error body, whichever of the usual shapes it has."""
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        msg = err.get("message") or err.get("msg")
        kind = err.get("type") or err.get("status") or err.get("code")
        if isinstance(msg, str):
            return f"{kind}: {msg}" if isinstance(kind, str) and kind not in msg else msg
        return json_text(err)[:500]
    if isinstance(err, str):
        return err
    for key in ("message", "detail", "error_message"):
        if isinstance(obj.get(key), str):
            return obj[key]
    return None
