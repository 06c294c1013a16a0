"""Which LLM API an HTTP exchange speaks, and who serves it.

The wire format is recognised by path and body shape, so that proxies, gateways, self-hosted
servers and localhost endpoints are understood; the host then names the provider when it is one
we know. An unknown host serving the OpenAI format is "openai-compatible"; the other formats
are each spoken by their own provider only, so they keep its name.
"""

from __future__ import annotations

from .anthropic import AnthropicMessages
from .base import Api
from .cohere import CohereChat, CohereChatV1
from .gemini import GeminiGenerate
from .ollama import OllamaChat
from .openai_chat import OpenAIChat
from .openai_responses import OpenAIResponses

OPENAI_CHAT = OpenAIChat()
OPENAI_RESPONSES = OpenAIResponses()
ANTHROPIC = AnthropicMessages()
GEMINI = GeminiGenerate()
COHERE = CohereChat()
COHERE_V1 = CohereChatV1()
OLLAMA = OllamaChat()
APIS = (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI, COHERE, COHERE_V1, OLLAMA)

# host suffix -> (provider name shown, genai-prices provider id or None)
HOSTS: tuple[tuple[str, str, str | None], ...] = (
    ("api.openai.com", "openai", "openai"),
    ("openai.azure.com", "azure", "azure"),
    ("cognitiveservices.azure.com", "azure", "azure"),
    ("services.ai.azure.com", "azure", "azure"),
    ("api.anthropic.com", "anthropic", "anthropic"),
    ("generativelanguage.googleapis.com", "google", "google"),
    ("aiplatform.googleapis.com", "google", "google"),
    ("api.cohere.com", "cohere", "cohere"),
    ("api.cohere.ai", "cohere", "cohere"),
    ("api.mistral.ai", "mistral", "mistral"),
    ("api.groq.com", "groq", "groq"),
    ("api.together.xyz", "together", "together"),
    ("api.together.ai", "together", "together"),
    ("api.deepseek.com", "deepseek", "deepseek"),
    ("openrouter.ai", "openrouter", "openrouter"),
    ("api.x.ai", "xai", "x-ai"),
    ("api.fireworks.ai", "fireworks", "fireworks"),
    ("api.perplexity.ai", "perplexity", "perplexity"),
    ("api.cerebras.ai", "cerebras", "cerebras"),
    ("api.moonshot.ai", "moonshot", "moonshotai"),
)
_OLLAMA_PORT = ":11434"


_PROVIDERS: dict[tuple[str, str], tuple[str, str | None]] = {}  # (host, api) -> provider_of()


def provider_of(host: str, api: Api) -> tuple[str, str | None]:
    """(provider name, genai-prices provider id) for a host, given the API it speaks."""
    key = (host, api.name)
    got = _PROVIDERS.get(key)
    if got is None:
        got = _provider_of(host, api)
        if len(_PROVIDERS) >= 1024:  # hosts come from the traffic: bounded
            _PROVIDERS.clear()
        _PROVIDERS[key] = got
    return got


def _provider_of(host: str, api: Api) -> tuple[str, str | None]:
    h = host.lower().rsplit("@", 1)[-1]
    name = h.split(":", 1)[0] if not h.startswith("[") else h
    for suffix, provider, price_id in HOSTS:
        if name == suffix or name.endswith("." + suffix):
            if provider == "google" and api is ANTHROPIC:  # Claude on Vertex AI
                return "anthropic", "anthropic"
            return provider, price_id
    if h.endswith(_OLLAMA_PORT) or api is OLLAMA:
        return "ollama", None
    if api.owner == "openai":
        return "openai-compatible", None
    return api.owner, api.owner


def _api_of_route(route: str) -> Api | None:
    """The APIs whose route alone says which they are, whatever the body."""
    if route.endswith("/chat/completions"):
        return OPENAI_CHAT
    if ":generateContent" in route or ":streamGenerateContent" in route:
        return GEMINI
    if "/publishers/anthropic/models/" in route:  # Vertex AI rawPredict / streamRawPredict
        return ANTHROPIC
    if route.endswith("/v2/chat"):
        return COHERE
    return None


def api_for(method: str, path: str, headers, obj) -> Api | None:
    """The API of a request, from its path, then its body's shape; None: not an LLM call.
    `headers`: the request's header names (a container: only `in` is used)."""
    if method != "POST":
        return None
    route = path.split("?", 1)[0].rstrip("/")
    api = _api_of_route(route)
    if api is not None:
        return api
    if not isinstance(obj, dict):
        # a body that is not a JSON object (invalid, cut, not JSON): only a route that says
        # which API it is makes it an LLM call, shown with its body's problem
        return ANTHROPIC if route.endswith("/v1/messages") and "anthropic-version" in headers else None
    if route.endswith("/responses") and ("input" in obj or "model" in obj):
        return OPENAI_RESPONSES
    if route.endswith("/messages") and "messages" in obj:
        return ANTHROPIC
    if route.endswith("/v1/chat") and "message" in obj:
        return COHERE_V1
    if route.endswith("/api/chat") and "messages" in obj:
        return OLLAMA
    # unknown path (a gateway's own route): the body's shape decides
    if "anthropic-version" in headers and "messages" in obj:
        return ANTHROPIC
    if isinstance(obj.get("contents"), list):
        return GEMINI
    if isinstance(obj.get("messages"), list) and isinstance(obj.get("model"), str):
        return OPENAI_CHAT
    if "input" in obj and isinstance(obj.get("model"), str):
        return OPENAI_RESPONSES
    return None


def api_from_response(event: str, obj) -> Api | None:
    """The API of a response whose request was not seen (the monitor joined mid-stream)."""
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type") or event
    if not isinstance(kind, str):
        kind = ""
    if kind.startswith("response.") or obj.get("object") == "response":
        return OPENAI_RESPONSES
    if kind in ("message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop") \
            or obj.get("type") == "message":
        return ANTHROPIC
    what = obj.get("object")
    if isinstance(what, str) and what.startswith("chat.completion"):
        return OPENAI_CHAT
    if "candidates" in obj or "usageMetadata" in obj:
        return GEMINI
    if kind in ("message-start", "content-delta", "message-end"):
        return COHERE
    if "event_type" in obj:
        return COHERE_V1
    if "done" in obj and "message" in obj and "model" in obj:
        return OLLAMA
    return None
