"""Real client: httpx with http2=True, several requests in flight on one connection."""

import asyncio
import ssl
import sys

import httpx

cafile, port = sys.argv[1], int(sys.argv[2])
base = f"https://localhost:{port}"


async def main() -> None:
    ctx = ssl.create_default_context(cafile=cafile)
    async with httpx.AsyncClient(http2=True, verify=ctx, base_url=base,
                                 headers={"Authorization": "Bearer sk-test-httpx-h2-0123456789"}) as c:
        # one request first, so the others share its connection
        first = await c.get("/v1/models")
        calls = [
            c.post("/v1/chat/completions", json={"model": "gpt-4o", "stream": True,
                                                 "messages": [{"role": "user", "content": "h2 stream one"}]}),
            c.post("/v1/messages", json={"model": "claude-3-5-haiku-20241022", "max_tokens": 32, "stream": True,
                                         "messages": [{"role": "user", "content": "h2 stream two"}]},
                   headers={"x-api-key": "sk-ant-test-httpx", "anthropic-version": "2023-06-01"}),
            c.post("/v1/chat/completions", json={"model": "gpt-4o-mini",
                                                 "messages": [{"role": "user", "content": "h2 plain"}]}),
            c.post("/bulk?size=30000", json={"n": 1}),
        ]
        results = await asyncio.gather(*calls)
        print(first.http_version, " ".join(f"{r.status_code}:{len(r.content)}" for r in results))


asyncio.run(main())
