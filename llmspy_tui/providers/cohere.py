"""Cohere chat: v2 (`/v2/chat`, typed SSE events) and v1 (`/v1/chat`, NDJSON stream)."""

from __future__ import annotations

from .base import Api, error_message, model_of, params_of, text_of, tool_names
from .builder import ResponseBuilder, as_int, as_list, as_text, reported
from .intern import message
from .model import LlmRequest, Usage
from .openai_chat import messages_of

_V1_ROLES = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}


def _billed(b: ResponseBuilder, usage) -> None:
    """Billed units are what costs money; `tokens` (with the prompt template) is the fallback."""
    if not isinstance(usage, dict):
        return
    for key in ("tokens", "billed_units"):  # billed units last: they win
        u = usage.get(key)
        if isinstance(u, dict):
            b.usage(input=u.get("input_tokens"), output=u.get("output_tokens"))
    if as_int(usage.get("cached_tokens")):
        b.usage(cache_read=usage["cached_tokens"])


class CohereChat(Api):
    name = "cohere.chat"
    owner = "cohere"

    def request(self, obj: dict, path: str) -> LlmRequest:
        system, msgs = messages_of(obj.get("messages"))
        return LlmRequest(model_of(obj), obj.get("stream") is True, system, msgs,
                          tool_names(obj.get("tools")), params_of(obj))

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        if not isinstance(obj, dict):
            return
        kind = obj.get("type") or event
        delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
        msg = delta.get("message") if isinstance(delta.get("message"), dict) else {}
        if kind == "content-delta":
            content = msg.get("content")
            b.text(content.get("text") if isinstance(content, dict) else None)
        elif kind == "tool-plan-delta":
            b.reasoning(msg.get("tool_plan"))
        elif kind in ("tool-call-start", "tool-call-delta"):
            tc = msg.get("tool_calls") if isinstance(msg.get("tool_calls"), dict) else {}
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
            b.tool(obj.get("index", 0), tc.get("id"), fn.get("name"), fn.get("arguments"))
        elif kind == "message-start":
            if isinstance(obj.get("id"), str):
                b.response_id = obj["id"]
        elif kind == "message-end":
            b.done = True
            if delta.get("finish_reason"):
                b.finish_reason = as_text(delta["finish_reason"])
            if isinstance(delta.get("error"), str):
                b.error = delta["error"]
            _billed(b, delta.get("usage"))

    def body(self, b: ResponseBuilder, obj) -> None:
        if not isinstance(obj, dict):
            return
        msg = obj.get("message")
        if not isinstance(msg, dict):
            b.error = error_message(obj)
            return
        b.text(text_of(msg.get("content")) or None)
        b.reasoning(msg.get("tool_plan"))
        for i, tc in enumerate(as_list(msg.get("tool_calls"))):
            if isinstance(tc, dict):
                fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                b.tool(i, tc.get("id"), fn.get("name"), arguments=as_text(fn.get("arguments") or ""))
        if isinstance(obj.get("id"), str):
            b.response_id = obj["id"]
        if obj.get("finish_reason"):
            b.finish_reason = as_text(obj["finish_reason"])
        _billed(b, obj.get("usage"))

    def usage(self, u: dict) -> Usage:
        return reported(u.get("input"), u.get("output"), u.get("cache_read"), None, None)


class CohereChatV1(Api):
    name = "cohere.chat_v1"
    owner = "cohere"

    def request(self, obj: dict, path: str) -> LlmRequest:
        msgs = []
        for m in as_list(obj.get("chat_history")):
            if isinstance(m, dict):
                msgs.append(message(_V1_ROLES.get(as_text(m.get("role")).upper(), "user"), text_of(m.get("message"))))
        if isinstance(obj.get("message"), str):
            msgs.append(message("user", obj["message"]))
        preamble = obj.get("preamble")
        return LlmRequest(model_of(obj), obj.get("stream") is True, preamble if isinstance(preamble, str) else "",
                          tuple(msgs), tool_names(obj.get("tools")), params_of(obj))

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        if not isinstance(obj, dict):
            return
        kind = obj.get("event_type")
        if kind == "text-generation":
            b.text(obj.get("text"))
        elif kind == "stream-start" and isinstance(obj.get("generation_id"), str):
            b.response_id = obj["generation_id"]
        elif kind == "stream-end":
            b.done = True
            if obj.get("finish_reason"):
                b.finish_reason = as_text(obj["finish_reason"])
            resp = obj.get("response")
            if isinstance(resp, dict):
                self._meta(b, resp)

    def body(self, b: ResponseBuilder, obj) -> None:
        if not isinstance(obj, dict):
            return
        if "text" not in obj:
            b.error = error_message(obj)
            return
        b.text(obj.get("text"))
        for i, tc in enumerate(as_list(obj.get("tool_calls"))):
            if isinstance(tc, dict):
                b.tool(i, None, tc.get("name"), arguments=tc.get("parameters", {}))
        if obj.get("finish_reason"):
            b.finish_reason = as_text(obj["finish_reason"])
        self._meta(b, obj)

    @staticmethod
    def _meta(b: ResponseBuilder, resp: dict) -> None:
        if isinstance(resp.get("generation_id"), str):
            b.response_id = resp["generation_id"]
        meta = resp.get("meta")
        if isinstance(meta, dict):
            _billed(b, meta)

    def usage(self, u: dict) -> Usage:
        return reported(u.get("input"), u.get("output"), u.get("cache_read"), None, None)

