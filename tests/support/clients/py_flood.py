"""Real client for loss tests: pushes plaintext through OpenSSL as fast as it can.

`py_flood.py CERT KEY SIZE COUNT`: COUNT calls of SSL_write with SIZE bytes each (Python's
sendall hands the whole buffer to one call), to a TLS sink in a thread of this same process
over a socketpair. The sink is the TLS server of its connection, so the monitor skips its side
in the kernel. With LLMSPY_TEST_START_WHEN set, the client waits for that file to exist first
(the test starts the monitor for this pid in between). Prints the bytes written.
"""

import os
import socket
import ssl
import sys
import threading
import time

cert, key, size, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
go = os.environ.get("LLMSPY_TEST_START_WHEN")
if go:
    print("waiting", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit(f"no {go} after 60 s")
        time.sleep(0.01)

a, b = socket.socketpair()
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname = False
cctx.verify_mode = ssl.CERT_NONE
received = 0


def sink() -> None:
    global received
    s = sctx.wrap_socket(b, server_side=True)
    while True:
        data = s.recv(1 << 20)
        if not data:
            break
        received += len(data)


t = threading.Thread(target=sink)
t.start()
c = cctx.wrap_socket(a, server_hostname="localhost")
block = (b"flood of plaintext for the ring buffer " * (size // 39 + 1))[:size]
for _ in range(count):
    c.sendall(block)
c.close()
t.join(timeout=60)
print(size * count, received, flush=True)
