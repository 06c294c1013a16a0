"""Secret masking shared by every output (screen, JSONL, exports).

Masking keeps lengths: raw chunk output keeps its offsets meaningful, and a reader can still
see that a credential was sent and how long it was.
"""

from __future__ import annotations

import re

from .protocol.sync import H2_PREFACE

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
    out = _QUERY_KEY.sub(lambda m: m.group(1) + _stars(len(m.group(2))), out)
    return mask_keys_bytes(out)


# Credentials with a recognisable shape, wherever they appear: prompt text, tool arguments,
# replies, command lines. Each shape is (literal that starts it, kept prefix, masked rest, whether
# it must start a token): the prefix says what kind of key it was, the rest is masked. Lengths
# are kept, and '*' is valid inside a JSON string, so a masked body still parses. Long minimum
# lengths leave ordinary words ("task-list", "risk-free") alone. Each shape is its own pattern
# starting with a literal, which the regex engine finds with a fast substring search; one
# alternation of them all scans ~50x slower, and most text holds none of the literals, so then
# nothing runs at all.
_KEY_SHAPES = (
    ("sk-", r"sk-", r"[A-Za-z0-9_-]{20,}", True),  # OpenAI (sk-proj-, sk-svcacct-), Anthropic (sk-ant-), OpenRouter
    ("AIza", r"AIza", r"[0-9A-Za-z_-]{30,}", True),  # Google API keys (Gemini)
    ("xai-", r"xai-", r"[A-Za-z0-9]{20,}", True),  # xAI
    ("gsk_", r"gsk_", r"[A-Za-z0-9]{20,}", True),  # Groq
    ("pplx-", r"pplx-", r"[A-Za-z0-9]{20,}", True),  # Perplexity
    ("hf_", r"hf_", r"[A-Za-z0-9]{30,}", True),  # Hugging Face
    ("r8_", r"r8_", r"[A-Za-z0-9]{30,}", True),  # Replicate
    ("ghp_", r"ghp_", r"[A-Za-z0-9]{30,}", True),  # GitHub personal access tokens
    ("github_pat_", r"github_pat_", r"[A-Za-z0-9_]{30,}", True),
    ("AKIA", r"AKIA", r"[0-9A-Z]{16}(?![0-9A-Za-z])", True),  # AWS access key ids
    ("xox", r"xox[abprs]-", r"[A-Za-z0-9-]{10,}", True),  # Slack
    ("Bearer", r"Bearer\s+", r"[A-Za-z0-9._~+/=-]{20,}", True),  # a bearer token pasted as text
    ("bearer", r"bearer\s+", r"[A-Za-z0-9._~+/=-]{20,}", True),
    # PEM bodies: the armour line itself says what it is, wherever it starts
    ("PRIVATE KEY", r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----", r"[^-]{1,16384}(?=-----END )", False),
)
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _compile(kind):
    out = []
    for hint, keep, rest, bounded in _KEY_SHAPES:
        text = f"({keep})({rest})"
        if kind is bytes:
            hint, text = hint.encode(), text.encode()
        out.append((hint, re.compile(text), bounded))
    return tuple(out)


_SHAPES = _compile(str)
_SHAPES_B = _compile(bytes)


def _masker(data, bounded: bool):
    star = b"*" if isinstance(data, bytes) else "*"
    backslash = ord("\\")

    def code(i: int) -> int:
        c = data[i]
        return c if isinstance(c, int) else ord(c)

    def mask(m: re.Match):
        start = m.start()
        # The key must start a token (not "task-..." inside a longer word); in JSON text a key
        # at the start of a line follows an escape such as \n, which counts as a boundary.
        if bounded and start and code(start - 1) in _WORD and not (start >= 2 and code(start - 2) == backslash):
            return m.group(0)
        return m.group(1) + star * len(m.group(2))

    return mask


def _mask_shapes(data, shapes):
    for hint, rx, bounded in shapes:
        if hint in data:
            data = rx.sub(_masker(data, bounded), data)
    return data


def mask_keys(text: str) -> str:
    """Mask API keys and similar credentials inside free text (same length, prefix kept)."""
    return _mask_shapes(text, _SHAPES) if text else text


def mask_keys_bytes(data: bytes) -> bytes:
    """mask_keys for raw bytes (bodies as captured, JSON or SSE), same length."""
    return _mask_shapes(data, _SHAPES_B) if data else data


# Command-line arguments are single tokens, not prose: any sk-/AIza/... token is a key there.
_KEYLIKE = re.compile(r"(?<![A-Za-z0-9])(sk-[A-Za-z0-9_-]{3,}|AIza[0-9A-Za-z_-]{10,}|xai-[A-Za-z0-9]{10,}|gsk_[A-Za-z0-9]{10,})")


def mask_cmdline_arg(arg: str) -> str:
    """Mask API-key-looking tokens in a command-line argument (`--api-key sk-...` is common)."""
    arg = _KEYLIKE.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 3), arg)
    return mask_keys(arg)


_SECRET_SET = frozenset(SECRET_HEADERS)
_QUERY_KEY_TEXT = re.compile(r"([?&](?:key|api_key|apikey|access_token)=)([^&\s#\"']+)", re.I)


def redact_headers(headers, show_secrets: bool = False) -> list[list[str]]:
    """Decoded headers as [name, value] pairs with secret values masked (same length)."""
    if show_secrets:
        return [[k, v] for k, v in headers]
    return [[k, _mask_value(v.encode()).decode("utf-8", "replace") if k in _SECRET_SET else mask_keys(v)]
            for k, v in headers]


def redact_target(target: str, show_secrets: bool = False) -> str:
    """A request target with key= style query parameters masked."""
    if show_secrets:
        return target
    return mask_keys(_QUERY_KEY_TEXT.sub(lambda m: m.group(1) + "*" * len(m.group(2)), target))


_HEADER_BLOCK_FRAMES = frozenset((0x1, 0x5, 0x9))  # HEADERS, PUSH_PROMISE, CONTINUATION


class _H2Walk:
    """Where one direction of an HTTP/2 connection is in its frame sequence."""

    __slots__ = ("expected", "head", "left", "masking", "skip")

    def __init__(self, skip: int) -> None:
        self.skip = skip  # the client preface, before the first frame
        self.head = bytearray()  # a frame header cut by a chunk boundary
        self.left = 0  # payload bytes of the current frame still to come
        self.masking = False
        self.expected = 0  # next stream offset; a hole means frame boundaries are lost


def _frames_from_start(data: bytes) -> bool:
    """Whether `data` reads as a run of HTTP/2 frames from its first byte to its end (the last
    one may be cut): lengths within the protocol's bounds, known types, stream ids without the
    reserved bit. Text (HTTP/1) never passes: its bytes make absurd lengths and types."""
    i, n, frames = 0, len(data), 0
    while i + 9 <= n:
        length = int.from_bytes(data[i : i + 3], "big")
        if data[i + 3] > 0x9 or data[i + 5] & 0x80 or length > 1 << 20:
            return False
        frames += 1
        i += 9 + length
    return frames > 0 and (i >= n or n - i < 9)


class RawMasker:
    """Credentials in raw captured chunks (`--raw`), which are printed as they come.

    HTTP/1 heads are plain text: secret header values, key= parameters and API keys are masked
    per chunk. HTTP/2 heads are HPACK-compressed, so a secret can hide in Huffman-coded or
    literal bytes: on a connection seen from its start the masker follows the frame sequence and
    blanks every header-block payload (HEADERS, PUSH_PROMISE, CONTINUATION) — `--http` shows the
    decoded, masked headers. If a stretch of such a connection was lost, frame boundaries are
    unknown from there on and its remaining bytes are blanked whole: better unreadable than
    leaked. Lengths never change.
    """

    def __init__(self) -> None:
        self._h2: dict[tuple[int, int, str], _H2Walk] = {}
        self._h2_conns: set[tuple[int, int]] = set()

    def mask(self, pid: int, conn: int, direction: str, offset: int, data: bytes) -> bytes:
        key = (pid, conn, direction)
        walk = self._h2.get(key)
        if walk is None and data:
            if offset == 0 and direction == "send" and data.startswith(H2_PREFACE[: len(data)]):
                walk = self._h2[key] = _H2Walk(len(H2_PREFACE))
                self._h2_conns.add((pid, conn))
            elif (offset == 0 and (pid, conn) in self._h2_conns) or _frames_from_start(data):
                # the server's side of a known HTTP/2 connection, or a monitor that joined an
                # HTTP/2 connection in the middle: calls write whole frames, so a chunk that is a
                # run of plausible frame headers starts at a frame boundary
                walk = self._h2[key] = _H2Walk(0)
                walk.expected = offset
                self._h2_conns.add((pid, conn))
        if walk is None:
            return mask_http1_secrets(data)
        return mask_keys_bytes(self._walk(walk, offset, data))

    def forget(self, pid: int, conn: int) -> None:
        self._h2_conns.discard((pid, conn))
        self._h2.pop((pid, conn, "send"), None)
        self._h2.pop((pid, conn, "recv"), None)

    def forget_process(self, pid: int) -> None:
        for conn in [c for p, c in self._h2_conns if p == pid]:  # every walk's connection is here
            self.forget(pid, conn)

    @staticmethod
    def _walk(w: _H2Walk, offset: int, data: bytes) -> bytes:
        n = len(data)
        if offset != w.expected:
            w.expected = -1  # lost sync for good
        if w.expected < 0:
            return b"*" * n
        w.expected += n
        out = bytearray(data)
        i = 0
        if w.skip:
            take = min(w.skip, n)
            w.skip -= take
            i = take
        while i < n:
            if w.left == 0:
                take = min(9 - len(w.head), n - i)
                w.head += data[i : i + take]
                i += take
                if len(w.head) == 9:
                    w.left = int.from_bytes(w.head[:3], "big")
                    w.masking = w.head[3] in _HEADER_BLOCK_FRAMES
                    w.head.clear()
                continue
            take = min(w.left, n - i)
            if w.masking:
                out[i : i + take] = b"*" * take
            w.left -= take
            i += take
        return bytes(out)
