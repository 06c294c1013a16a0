"""Ollama's native chat API (`/api/chat`): NDJSON stream by default, counts in the last line."""

from __future__ import annotations

from .base import Api, error_message, model_of, params_of, tool_names
from .builder import ResponseBuilder, as_list, as_text, json_text, reported
from .model import LlmRequest, Usage
from .openai_chat import messages_of


class OllamaChat(Api):
    name = "ollama.chat"
    owner = "ollama"

    def request(self, obj: dict, path: str) -> LlmRequest:
        system, msgs = messages_of(obj.get("messages"))
        # Ollama streams unless told not to
        return LlmRequest(model_of(obj), obj.get("stream") is not False, system, msgs,
                          tool_names(obj.get("tools")), params_of(obj))

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        self.body(b, obj)

    def body(self, b: ResponseBuilder, obj) -> None:
        if not isinstance(obj, dict):
            return
        if "error" in obj:
            b.error = error_message(obj)
            return
        if isinstance(obj.get("model"), str):
            b.model = obj["model"]
        msg = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        b.text(msg.get("content"))
        b.reasoning(msg.get("thinking"))
        for tc in as_list(msg.get("tool_calls")):
            fn = tc.get("function") if isinstance(tc, dict) and isinstance(tc.get("function"), dict) else {}
            key = len(b.scratch)
            b.scratch[key] = True
            b.tool(key, None, fn.get("name"), arguments=json_text(fn.get("arguments", {})))
        if obj.get("done") is True:
            b.done = True
            b.finish_reason = as_text(obj.get("done_reason") or "stop")
            b.usage(input=obj.get("prompt_eval_count"), output=obj.get("eval_count"))

    def usage(self, u: dict) -> Usage:
        return reported(u.get("input"), u.get("output"), None, None, None)
