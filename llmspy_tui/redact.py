"""Secret masking shared by every output (screen, JSONL, exports).

Masking keeps lengths: raw chunk output keeps its offsets meaningful, and a reader can still
see that a credential was sent and how long it was.
"""

from __future__ import annotations

import re

SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
)

_HEADER_LINE = re.compile(
    rb"(?im)^(" + b"|".join(re.escape(h.encode()) for h in SECRET_HEADERS) + rb")([ \t]*:[ \t]*)([^\r\n]*)"
)
# key=... in a request target (Gemini's ?key=, and friends)
_QUERY_KEY = re.compile(rb"([?&](?:key|api_key|apikey|access_token)=)([^&\s#\"']+)", re.I)
_BEARER_KEEP = re.compile(rb"(?i)^(bearer|basic|token)\s+")


def _stars(n: int) -> bytes:
    return b"*" * n


def _mask_value(value: bytes) -> bytes:
    m = _BEARER_KEEP.match(value)
    keep = m.end() if m else 0
    return value[:keep] + _stars(len(value) - keep)


def mask_http1_secrets(data: bytes) -> bytes:
    """Mask secret header values and key= query parameters in HTTP/1-style text, same length."""
    if not data:
        return data
    out = _HEADER_LINE.sub(lambda m: m.group(1) + m.group(2) + _mask_value(m.group(3)), data)
    return _QUERY_KEY.sub(lambda m: m.group(1) + _stars(len(m.group(2))), out)


# Long random-looking tokens with a known key prefix (sk-..., sk-ant-..., AIza..., xai-..., gsk_...)
_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_-]{3,}|AIza[0-9A-Za-z_-]{10,}|xai-[A-Za-z0-9]{10,}|gsk_[A-Za-z0-9]{10,})")


def mask_cmdline_arg(arg: str) -> str:
    """Mask API-key-looking tokens in a command-line argument (`--api-key sk-...` is common)."""
    return _KEYLIKE.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 3), arg)


_SECRET_SET = frozenset(SECRET_HEADERS)
_QUERY_KEY_TEXT = re.compile(r"([?&](?:key|api_key|apikey|access_token)=)([^&\s#\"']+)", re.I)


def redact_headers(headers, show_secrets: bool = False) -> list[list[str]]:
    """Decoded headers as [name, value] pairs with secret values masked (same length)."""
    if show_secrets:
        return [[k, v] for k, v in headers]
    return [[k, _mask_value(v.encode()).decode("utf-8", "replace") if k in _SECRET_SET else v]
            for k, v in headers]


def redact_target(target: str, show_secrets: bool = False) -> str:
    """A request target with key= style query parameters masked."""
    if show_secrets:
        return target
    return _QUERY_KEY_TEXT.sub(lambda m: m.group(1) + "*" * len(m.group(2)), target)
