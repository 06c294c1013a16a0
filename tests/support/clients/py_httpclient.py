"""Real client: Python's http.client over ssl (OpenSSL's SSL_write_ex/SSL_read_ex)."""

import http.client
import ssl
import sys

cafile, port, path, body_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
body = open(body_file, "rb").read()
ctx = ssl.create_default_context(cafile=cafile)
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
conn.request("POST", path, body=body, headers={
    "Content-Type": "application/json",
    "Authorization": "Bearer sk-test-0123456789abcdefghijklmnopqrstuv",
})
resp = conn.getresponse()
data = resp.read()
conn.close()
sys.stdout.write(f"{resp.status} {len(data)}\n")
