"""OpenAI Chat Completions, and the many servers that speak it (Azure, Mistral, Groq, Together,
DeepSeek, OpenRouter, xAI, vLLM, llama.cpp, Ollama's /v1 route, ...)."""

from __future__ import annotations

from .base import Api, error_message, model_of, params_of, text_of, tool_names
from .builder import ResponseBuilder, as_list, as_text, first_int, reported
from .intern import message, tool_call
from .model import LlmRequest, Message, ToolCall, Usage

_SYSTEM_ROLES = ("system", "developer")


def _tool_calls(raw) -> tuple[ToolCall, ...]:
    out = []
    for tc in raw if isinstance(raw, list) else ():
        if not isinstance(tc, dict):
            continue
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        args = fn.get("arguments")
        out.append(tool_call(as_text(tc.get("id") or ""), as_text(fn.get("name") or ""),
                             args if isinstance(args, str) else text_of(args)))
    return tuple(out)


def messages_of(raw) -> tuple[str, tuple[Message, ...]]:
    """(system, messages): leading system/developer messages become the system text."""
    system: list[str] = []
    msgs: list[Message] = []
    for m in raw if isinstance(raw, list) else ():
        if not isinstance(m, dict):
            continue
        role = as_text(m.get("role") or "")
        text = text_of(m.get("content"))
        if role in _SYSTEM_ROLES and not msgs:
            system.append(text)
            continue
        if role in _SYSTEM_ROLES:
            role = "system"
        elif role == "function":  # the legacy function-calling shape
            role = "tool"
        calls = _tool_calls(m.get("tool_calls"))
        fc = m.get("function_call")
        if isinstance(fc, dict):
            calls += (tool_call("", as_text(fc.get("name") or ""), as_text(fc.get("arguments") or "")),)
        thinking = m.get("reasoning_content")
        msgs.append(message(role, text, calls, as_text(m.get("tool_call_id") or m.get("name") or "")
                            if role == "tool" else "", thinking if isinstance(thinking, str) else ""))
    return "\n\n".join(system), tuple(msgs)


class OpenAIChat(Api):
    name = "openai.chat"
    owner = "openai"

    def request(self, obj: dict, path: str) -> LlmRequest:
        system, msgs = messages_of(obj.get("messages"))
        tools = tool_names(obj.get("tools")) or tool_names(obj.get("functions"))
        return LlmRequest(model_of(obj), obj.get("stream") is True, system, msgs, tools, params_of(obj))

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        # Once per streamed chunk, so written out flat: the same steps as body() and _meta()
        # take, without their calls.
        if not isinstance(obj, dict):
            return
        if "error" in obj:
            b.error = error_message(obj)
            return
        get = obj.get
        v = get("model")
        if isinstance(v, str):
            b.model = v
        v = get("id")
        if isinstance(v, str):
            b.response_id = v
        v = get("usage")
        if isinstance(v, dict):
            self._usage(b, v)
        for choice in as_list(get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1: the first choice is the one shown
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if len(delta) == 1 and "content" in delta:  # the usual: a piece of text
                    b.text(delta["content"])
                else:
                    b.text(delta.get("content"))
                    # DeepSeek, vLLM and llama.cpp say reasoning_content; OpenRouter says reasoning
                    b.reasoning(delta.get("reasoning_content") or delta.get("reasoning"))
                    for tc in as_list(delta.get("tool_calls")):
                        if isinstance(tc, dict):
                            fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                            b.tool(tc.get("index", 0), tc.get("id"), fn.get("name"), fn.get("arguments"))
                    fc = delta.get("function_call")
                    if isinstance(fc, dict):
                        b.tool("function_call", None, fc.get("name"), fc.get("arguments"))
            if choice.get("finish_reason"):
                b.finish_reason = as_text(choice["finish_reason"])
        groq = get("x_groq")
        if isinstance(groq, dict) and isinstance(groq.get("usage"), dict):
            self._usage(b, groq["usage"])

    def body(self, b: ResponseBuilder, obj) -> None:
        if not isinstance(obj, dict):
            return
        if "error" in obj and not obj.get("choices"):
            b.error = error_message(obj)
            return
        self._meta(b, obj)
        choices = as_list(obj.get("choices"))
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        b.text(text_of(msg.get("content")) if msg.get("content") is not None else None)
        b.reasoning(msg.get("reasoning_content") or msg.get("reasoning"))
        for i, tc in enumerate(_tool_calls(msg.get("tool_calls"))):
            b.tool(i, tc.id, tc.name, arguments=tc.arguments)
        fc = msg.get("function_call")
        if isinstance(fc, dict):
            b.tool("function_call", None, fc.get("name"), arguments=as_text(fc.get("arguments") or ""))
        if choice.get("finish_reason"):
            b.finish_reason = as_text(choice["finish_reason"])

    def _meta(self, b: ResponseBuilder, obj: dict) -> None:
        b.identity(obj)
        if isinstance(obj.get("usage"), dict):
            self._usage(b, obj["usage"])

    @staticmethod
    def _usage(b: ResponseBuilder, u: dict) -> None:
        pd = u.get("prompt_tokens_details") if isinstance(u.get("prompt_tokens_details"), dict) else {}
        cd = u.get("completion_tokens_details") if isinstance(u.get("completion_tokens_details"), dict) else {}
        b.usage(input=u.get("prompt_tokens"), output=u.get("completion_tokens"),
                cache_read=first_int(pd.get("cached_tokens"), u.get("prompt_cache_hit_tokens")),
                reasoning=cd.get("reasoning_tokens"))

    def usage(self, u: dict) -> Usage:
        return reported(u.get("input"), u.get("output"), u.get("cache_read"), None, u.get("reasoning"))

