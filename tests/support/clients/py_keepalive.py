"""Real client: several requests on one keep-alive connection with Python's http.client."""

import http.client
import json
import ssl
import sys

cafile, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=cafile)
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
requests = [
    ("/v1/chat/completions", {"Accept-Encoding": "identity"},
     {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
      "messages": [{"role": "user", "content": "Stream a short answer."}]}),
    ("/v1/chat/completions", {"Accept-Encoding": "gzip"},
     {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "A compressed answer."}]}),
    ("/v1/messages", {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test-keepalive-0123456789"},
     {"model": "claude-3-5-haiku-20241022", "max_tokens": 64, "stream": True,
      "messages": [{"role": "user", "content": "Stream from Anthropic."}]}),
]
sizes = []
for path, headers, body in requests:
    conn.request("POST", path, body=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", "Authorization": "Bearer sk-test-keepalive-abcdef", **headers})
    resp = conn.getresponse()
    sizes.append(len(resp.read()))
conn.close()
print(" ".join(map(str, sizes)))
