"""Real client for tests of targets that change under the monitor: Python's http.client over
ssl, one POST to /bulk per connection, again every 0.1 s until STOPFILE exists (a library found
by a rescan of the process's maps is hooked some time after the process started; the test stops
the client once it has seen a call captured). Prints the libssl it mapped and the call count."""

import http.client
import os
import ssl
import sys
import time

cafile, port, stopfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
libssl = sorted({line.split()[-1] for line in open("/proc/self/maps") if "libssl" in line})
calls = 0
deadline = time.monotonic() + 60
while True:
    conn = http.client.HTTPSConnection("localhost", port, context=ctx)
    conn.request("POST", "/bulk?size=3000&plain=1", body=b'{"call": %d, "pid": %d}' % (calls, os.getpid()),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    calls += 1
    if os.path.exists(stopfile) or time.monotonic() > deadline:
        break
    time.sleep(0.1)
print(" ".join(libssl), calls, flush=True)
