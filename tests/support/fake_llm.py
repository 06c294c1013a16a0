"""Responses in the providers' real wire formats, for the loopback test server.

Deterministic: the same request gives the same bytes, so recordings are reproducible.
"""

from __future__ import annotations

import hashlib
import json

WORDS = (
    "the monitor sees plaintext before encryption and after decryption so every prompt "
    "and every streamed token is visible without a proxy or a certificate"
).split()


def _text(seed: bytes, n_words: int) -> str:
    h = hashlib.sha256(seed).digest()
    return " ".join(WORDS[(h[i % len(h)] + i) % len(WORDS)] for i in range(n_words))


def bulk_body(size: int, seed: bytes = b"") -> bytes:
    """A JSON document of exactly `size` bytes (size >= 32) with varied content."""
    prefix = b'{"object":"bulk","data":"'
    suffix = b'"}'
    fill = size - len(prefix) - len(suffix)
    block = hashlib.sha256(seed).hexdigest().encode() * 2
    out = bytearray()
    i = 0
    while len(out) < fill:
        out += hashlib.sha256(block + i.to_bytes(4, "little")).hexdigest().encode()
        i += 1
    return prefix + bytes(out[:fill]) + suffix


def openai_chat(req: dict) -> tuple[str, list[bytes]]:
    """(content-type, body parts). Streaming replies are SSE `data:` events ending with [DONE]."""
    model = req.get("model", "gpt-4o-mini")
    seed = json.dumps(req.get("messages", []), sort_keys=True).encode()
    text = _text(seed, 24)
    usage = {"prompt_tokens": 17 + len(seed) // 4, "completion_tokens": 24, "total_tokens": 41 + len(seed) // 4}
    cid = "chatcmpl-" + hashlib.sha1(seed).hexdigest()[:24]
    if not req.get("stream"):
        body = {
            "id": cid, "object": "chat.completion", "created": 1763769600, "model": model + "-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage, "system_fingerprint": "fp_loopback",
        }
        return "application/json", [json.dumps(body).encode()]
    parts = []
    base = {"id": cid, "object": "chat.completion.chunk", "created": 1763769600,
            "model": model + "-2024-07-18", "system_fingerprint": "fp_loopback"}
    first = dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                                 "logprobs": None, "finish_reason": None}])
    parts.append(b"data: " + json.dumps(first).encode() + b"\n\n")
    for i, word in enumerate(text.split(" ")):
        piece = word if i == 0 else " " + word
        ev = dict(base, choices=[{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
        parts.append(b"data: " + json.dumps(ev).encode() + b"\n\n")
    last = dict(base, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}])
    parts.append(b"data: " + json.dumps(last).encode() + b"\n\n")
    if (req.get("stream_options") or {}).get("include_usage"):
        parts.append(b"data: " + json.dumps(dict(base, choices=[], usage=usage)).encode() + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return "text/event-stream; charset=utf-8", parts


def anthropic_messages(req: dict) -> tuple[str, list[bytes]]:
    model = req.get("model", "claude-3-5-haiku-20241022")
    seed = json.dumps(req.get("messages", []), sort_keys=True).encode()
    text = _text(seed, 20)
    mid = "msg_" + hashlib.sha1(seed).hexdigest()[:24]
    in_tok = 21 + len(seed) // 4
    if not req.get("stream"):
        body = {"id": mid, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": in_tok, "output_tokens": 20,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        return "application/json", [json.dumps(body).encode()]

    def ev(name: str, data: dict) -> bytes:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    parts = [
        ev("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": in_tok, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
        ev("ping", {"type": "ping"}),
    ]
    for i, word in enumerate(text.split(" ")):
        piece = word if i == 0 else " " + word
        parts.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": piece}}))
    parts += [
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": 20}}),
        ev("message_stop", {"type": "message_stop"}),
    ]
    return "text/event-stream; charset=utf-8", parts


def respond(method: str, path: str, body: bytes) -> tuple[int, str, list[bytes]]:
    """Route a request: (status, content-type, body parts)."""
    route, _, query = path.partition("?")
    if route == "/bulk":
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        size = max(32, int(params.get("size", "65536")))
        return 200, "application/json", [bulk_body(size, body[:4096])]
    if route.endswith("/v1/models"):
        models = [{"id": m, "object": "model", "created": 1763769600, "owned_by": "loopback"}
                  for m in ("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-20241022")]
        return 200, "application/json", [json.dumps({"object": "list", "data": models}).encode()]
    try:
        req = json.loads(body or b"{}")
    except ValueError:
        return 400, "application/json", [b'{"error":{"message":"invalid JSON body","type":"invalid_request_error"}}']
    if not isinstance(req, dict):
        req = {}
    if route.endswith("/chat/completions"):
        ctype, parts = openai_chat(req)
        return 200, ctype, parts
    if route.endswith("/v1/messages"):
        ctype, parts = anthropic_messages(req)
        return 200, ctype, parts
    return 404, "application/json", [b'{"error":{"message":"unknown route","type":"not_found"}}']
