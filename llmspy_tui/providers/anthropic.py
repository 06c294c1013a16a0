"""Anthropic Messages (`/v1/messages`, also on Vertex AI): content blocks, typed SSE events."""

from __future__ import annotations

from .base import Api, error_message, model_of, params_of, text_of, tool_names
from .builder import (
    ResponseBuilder,
    as_list,
    as_text,
    json_text,
    plus,
    reported,
    tool_key,
)
from .intern import message, tool_call
from .model import LlmRequest, Message, Usage


def _messages(raw) -> tuple[Message, ...]:
    """Blocks to messages; tool_result blocks become "tool" messages of their own."""
    msgs: list[Message] = []
    for m in raw if isinstance(raw, list) else ():
        if not isinstance(m, dict):
            continue
        role = as_text(m.get("role") or "")
        content = m.get("content")
        if isinstance(content, str):
            msgs.append(message(role, content))
            continue
        texts, calls, thinking = [], [], []
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                texts.append(as_text(block.get("text") or ""))
            elif kind in ("tool_use", "server_tool_use"):
                calls.append(tool_call(as_text(block.get("id") or ""), as_text(block.get("name") or ""),
                                       json_text(block.get("input", {}))))
            elif kind == "tool_result":
                msgs.append(message("tool", text_of(block.get("content")),
                                    tool_call_id=as_text(block.get("tool_use_id") or "")))
            elif kind == "thinking":
                thinking.append(as_text(block.get("thinking") or ""))
            elif kind != "redacted_thinking":
                texts.append(f"[{as_text(kind)}]")
        if texts or calls or thinking:
            msgs.append(message(role, "\n".join(texts), tuple(calls), thinking="".join(thinking)))
    return tuple(msgs)


class AnthropicMessages(Api):
    name = "anthropic.messages"
    owner = "anthropic"

    def request(self, obj: dict, path: str) -> LlmRequest:
        model = model_of(obj)
        if not model and "/models/" in path:  # Vertex AI: the model is in the path
            model = path.split("/models/", 1)[1].split(":", 1)[0].split("?", 1)[0]
        return LlmRequest(model, obj.get("stream") is True, text_of(obj.get("system")),
                          _messages(obj.get("messages")), tool_names(obj.get("tools")), params_of(obj))

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        if not isinstance(obj, dict):
            return
        kind = obj.get("type") or event
        if kind == "content_block_delta":
            d = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            dk = d.get("type")
            if dk == "text_delta":
                b.text(d.get("text"))
            elif dk == "thinking_delta":
                b.reasoning(d.get("thinking"))
            elif dk == "input_json_delta":
                b.tool(obj.get("index"), args_piece=d.get("partial_json"))
        elif kind == "content_block_start":
            block = obj.get("content_block") if isinstance(obj.get("content_block"), dict) else {}
            bk = block.get("type")
            if bk in ("tool_use", "server_tool_use"):
                b.tool(obj.get("index"), block.get("id"), block.get("name"))
                b.scratch[tool_key(obj.get("index"))] = block.get("input", {})
            elif bk == "text":
                b.text(block.get("text"))
            elif bk == "thinking":
                b.reasoning(block.get("thinking"))
        elif kind == "content_block_stop":
            # a tool_use whose input came whole in content_block_start (no deltas) keeps it
            index = tool_key(obj.get("index"))
            if index in b.scratch and not b.has_arguments(index):
                b.tool(index, arguments=b.scratch.pop(index))
        elif kind == "message_start":
            msg = obj.get("message") if isinstance(obj.get("message"), dict) else {}
            self._meta(b, msg)
        elif kind == "message_delta":
            d = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            if d.get("stop_reason"):
                b.finish_reason = as_text(d["stop_reason"])
            if isinstance(obj.get("usage"), dict):
                self._usage(b, obj["usage"])
        elif kind == "message_stop":
            b.done = True
        elif kind == "error":
            b.error = error_message(obj)

    def body(self, b: ResponseBuilder, obj) -> None:
        if not isinstance(obj, dict):
            return
        if obj.get("type") == "error" or ("error" in obj and "content" not in obj):
            b.error = error_message(obj)
            return
        for i, block in enumerate(as_list(obj.get("content"))):
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                b.text(block.get("text"))
            elif kind == "thinking":
                b.reasoning(block.get("thinking"))
            elif kind in ("tool_use", "server_tool_use"):
                b.tool(i, block.get("id"), block.get("name"), arguments=block.get("input", {}))
        self._meta(b, obj)
        if obj.get("stop_reason"):
            b.finish_reason = as_text(obj["stop_reason"])

    def _meta(self, b: ResponseBuilder, msg: dict) -> None:
        b.identity(msg)
        if isinstance(msg.get("usage"), dict):
            self._usage(b, msg["usage"])

    @staticmethod
    def _usage(b: ResponseBuilder, u: dict) -> None:
        b.usage(input=u.get("input_tokens"), output=u.get("output_tokens"),
                cache_read=u.get("cache_read_input_tokens"),
                cache_write=u.get("cache_creation_input_tokens"))

    def usage(self, u: dict) -> Usage:
        # Anthropic's input_tokens leaves out cached tokens: add them back (see model.py)
        total_in = plus(u.get("input"), u.get("cache_read"), u.get("cache_write"))
        return reported(total_in, u.get("output"), u.get("cache_read"), u.get("cache_write"), None)
