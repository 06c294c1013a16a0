"""Google Gemini `generateContent` / `streamGenerateContent` (AI Studio and Vertex AI).

Streams come as SSE with `alt=sse`, otherwise as one JSON array whose elements arrive in turn;
either way each item is a whole GenerateContentResponse, with usage growing to its final value.
"""

from __future__ import annotations

from .base import Api, error_message, json_text, params_of, text_of
from .builder import ResponseBuilder, as_list, as_text, plus, reported
from .intern import message, tool_call
from .model import LlmRequest, Message, ToolCall, Usage


def model_from_path(path: str) -> str:
    """`.../models/gemini-2.5-flash:streamGenerateContent?alt=sse` -> gemini-2.5-flash"""
    tail = path.split("?", 1)[0].rsplit("/models/", 1)
    return tail[1].split(":", 1)[0] if len(tail) == 2 else ""


def _parts(parts) -> tuple[str, tuple[ToolCall, ...], list[tuple[str, str]], str]:
    """(text, function calls, function responses as (name, text), thought text) of a parts list."""
    texts, calls, results, thoughts = [], [], [], []
    for p in parts if isinstance(parts, list) else ():
        if not isinstance(p, dict):
            continue
        if isinstance(p.get("text"), str):
            (thoughts if p.get("thought") is True else texts).append(p["text"])
        elif isinstance(p.get("functionCall"), dict):
            fc = p["functionCall"]
            calls.append(tool_call(as_text(fc.get("id") or ""), as_text(fc.get("name") or ""), json_text(fc.get("args", {}))))
        elif isinstance(p.get("functionResponse"), dict):
            fr = p["functionResponse"]
            results.append((as_text(fr.get("id") or fr.get("name") or ""), json_text(fr.get("response"))))
        else:
            texts.append(f"[{next(iter(p), 'part')}]")
    return "".join(texts), tuple(calls), results, "".join(thoughts)


def _contents(raw) -> tuple[Message, ...]:
    msgs: list[Message] = []
    for c in raw if isinstance(raw, list) else ():
        if not isinstance(c, dict):
            continue
        role = "assistant" if c.get("role") == "model" else as_text(c.get("role") or "user")
        text, calls, results, thought = _parts(c.get("parts"))
        for name, out in results:
            msgs.append(message("tool", out, tool_call_id=name))
        if text or calls or not results:
            msgs.append(message(role, text, calls, thinking=thought))
    return tuple(msgs)


def _tool_names(tools) -> tuple[str, ...]:
    names = []
    for t in tools if isinstance(tools, list) else ():
        if not isinstance(t, dict):
            continue
        decls = t.get("functionDeclarations") or t.get("function_declarations")
        if isinstance(decls, list):
            names += [as_text(d.get("name")) for d in decls if isinstance(d, dict)]
        else:
            names += list(t)  # built-in tools: googleSearch, codeExecution, ...
    return tuple(names)


class GeminiGenerate(Api):
    name = "google.generate_content"
    owner = "google"

    def request(self, obj: dict, path: str) -> LlmRequest:
        system = obj.get("systemInstruction") or obj.get("system_instruction")
        if isinstance(system, dict):
            system = text_of(system.get("parts"))
        params = params_of(obj)
        params.pop("contents", None)
        gen = obj.get("generationConfig") or obj.get("generation_config")
        if isinstance(gen, dict):
            params.pop("generationConfig", None)
            params.pop("generation_config", None)
            params.update(params_of(gen))  # shortened like the others: values come from the wire
        return LlmRequest(model_from_path(path), ":streamGenerateContent" in path,
                          system if isinstance(system, str) else "", _contents(obj.get("contents")),
                          _tool_names(obj.get("tools")), params)

    def stream_item(self, b: ResponseBuilder, event: str, obj) -> None:
        self.body(b, obj)

    def body(self, b: ResponseBuilder, obj) -> None:
        if isinstance(obj, list):  # a non-streamed JSON array body: all elements in turn
            for item in obj:
                if isinstance(item, dict):  # (one level: a nested list is no response)
                    self.body(b, item)
            return
        if not isinstance(obj, dict):
            return
        if "error" in obj and "candidates" not in obj:
            b.error = error_message(obj)
            return
        for cand in as_list(obj.get("candidates")):
            if not isinstance(cand, dict) or cand.get("index", 0) != 0:
                continue
            content = cand.get("content") if isinstance(cand.get("content"), dict) else {}
            text, calls, _results, thought = _parts(content.get("parts"))
            b.text(text)
            b.reasoning(thought)
            for call in calls:
                b.tool(len(b.scratch), call.id, call.name, arguments=call.arguments)
                b.scratch[len(b.scratch)] = call.name
            if cand.get("finishReason"):
                b.finish_reason = as_text(cand["finishReason"])
        feedback = obj.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            b.finish_reason = f"blocked: {as_text(feedback['blockReason'])}"
        b.identity(obj, "modelVersion", "responseId")
        u = obj.get("usageMetadata")
        if isinstance(u, dict):
            b.usage(input=u.get("promptTokenCount"), candidates=u.get("candidatesTokenCount"),
                    cache_read=u.get("cachedContentTokenCount"),
                    reasoning=u.get("thoughtsTokenCount"),
                    tool_prompt=u.get("toolUsePromptTokenCount"))

    def usage(self, u: dict) -> Usage:
        # Gemini counts thoughts and tool-use prompt tokens apart: add them back (see model.py)
        output = plus(u.get("candidates"), u.get("reasoning"))
        total_in = plus(u.get("input"), u.get("tool_prompt"))
        if total_in is not None and output is None:
            output = 0  # a prompt-only report (blocked, or nothing generated)
        return reported(total_in, output, u.get("cache_read"), None, u.get("reasoning"))
