"""OpenAI Responses API (`/v1/responses`): items in, items out, typed SSE events."""

from __future__ import annotations

from .base import Api, error_message, model_of, params_of, text_of, tool_names
from .builder import ResponseBuilder, as_list, as_text, reported
from .intern import message, tool_call
from .model import LlmRequest, Message, Usage

_TEXT_KEYS = ("text",)  # input_text, output_text and summary parts all carry "text"


def _items(raw) -> tuple[Message, ...]:
    if isinstance(raw, str):
        return (message("user", raw),)
    msgs: list[Message] = []
    for it in raw if isinstance(raw, list) else ():
        if not isinstance(it, dict):
            continue
        kind = it.get("type") or "message"
        if kind == "message" or ("role" in it and kind not in ("function_call", "function_call_output")):
            role = as_text(it.get("role") or "user")
            msgs.append(message("system" if role == "developer" else role, text_of(it.get("content"), _TEXT_KEYS)))
        elif kind == "function_call":
            call = tool_call(as_text(it.get("call_id") or it.get("id") or ""), as_text(it.get("name") or ""),
                             as_text(it.get("arguments") or ""))
            if msgs and msgs[-1].role == "assistant" and not msgs[-1].text:
                last = msgs.pop()  # parallel calls: one assistant turn
                msgs.append(message("assistant", "", last.tool_calls + (call,)))
            else:
                msgs.append(message("assistant", "", (call,)))
        elif kind == "function_call_output":
            out = it.get("output")
            msgs.append(message("tool", out if isinstance(out, str) else text_of(out),
                                tool_call_id=as_text(it.get("call_id") or "")))
        elif kind == "reasoning":
            continue  # opaque to the reader; it is the model's own earlier reasoning
        else:
            msgs.append(message("user", f"[{as_text(kind)}]"))
    return tuple(msgs)


class OpenAIResponses(Api):
    name = "openai.responses"
    owner = "openai"

    def request(self, obj: dict, path: str) -> LlmRequest:
        instructions = obj.get("instructions")
        prev = obj.get("previous_response_id")
        return LlmRequest(model_of(obj), obj.get("stream") is True,
                          instructions if isinstance(instructions, str) else "",
                          _items(obj.get("input")), tool_names(obj.get("tools")), params_of(obj),
                          prev if isinstance(prev, str) else "")

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        if not isinstance(obj, dict):
            return
        kind = obj.get("type") or event
        if kind == "response.output_text.delta":
            b.text(obj.get("delta"))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            b.reasoning(obj.get("delta"))
        elif kind == "response.output_item.added":
            item = obj.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                b.tool(item.get("id") or obj.get("output_index"), item.get("call_id"), item.get("name"))
        elif kind == "response.function_call_arguments.delta":
            b.tool(obj.get("item_id") or obj.get("output_index"), args_piece=obj.get("delta"))
        elif kind == "response.output_item.done":
            item = obj.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                b.tool(item.get("id") or obj.get("output_index"), item.get("call_id"), item.get("name"),
                       arguments=as_text(item.get("arguments") or ""))
        elif kind in ("response.created", "response.in_progress", "response.completed",
                      "response.incomplete", "response.failed"):
            resp = obj.get("response")
            if isinstance(resp, dict):
                self._meta(b, resp)
            b.done = kind in ("response.completed", "response.incomplete", "response.failed")
        elif kind == "error":
            b.error = error_message({"error": obj}) or error_message(obj)

    def body(self, b: ResponseBuilder, obj) -> None:
        if not isinstance(obj, dict):
            return
        if isinstance(obj.get("error"), dict) and "output" not in obj:
            b.error = error_message(obj)
            return
        for i, item in enumerate(as_list(obj.get("output"))):
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "message":
                for part in as_list(item.get("content")):
                    if isinstance(part, dict) and part.get("type") == "output_text":
                        b.text(part.get("text"))
                    elif isinstance(part, dict) and part.get("type") == "refusal":
                        b.text(part.get("refusal"))
            elif kind == "function_call":
                b.tool(item.get("id") or i, item.get("call_id"), item.get("name"),
                       arguments=as_text(item.get("arguments") or ""))
            elif kind == "reasoning":
                for s in as_list(item.get("summary")):
                    if isinstance(s, dict):
                        b.reasoning(s.get("text"))
        self._meta(b, obj)

    @staticmethod
    def _meta(b: ResponseBuilder, resp: dict) -> None:
        b.identity(resp)
        status = resp.get("status")
        if status in ("completed", "incomplete", "failed", "cancelled"):
            detail = resp.get("incomplete_details")
            reason = detail.get("reason") if isinstance(detail, dict) else None
            b.finish_reason = f"{status}: {as_text(reason)}" if reason else status
        if isinstance(resp.get("error"), dict):
            b.error = error_message(resp)
        u = resp.get("usage")
        if isinstance(u, dict):
            it = u.get("input_tokens_details") if isinstance(u.get("input_tokens_details"), dict) else {}
            ot = u.get("output_tokens_details") if isinstance(u.get("output_tokens_details"), dict) else {}
            b.usage(input=u.get("input_tokens"), output=u.get("output_tokens"),
                    cache_read=it.get("cached_tokens"), reasoning=ot.get("reasoning_tokens"))

    def usage(self, u: dict) -> Usage:
        return reported(u.get("input"), u.get("output"), u.get("cache_read"), None, u.get("reasoning"))
