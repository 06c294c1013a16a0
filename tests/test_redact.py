from llmspy_tui.redact import mask_http1_secrets


def test_masks_header_values_keeping_length_and_scheme():
    req = (b"POST /v1/chat/completions?key=AIzaSyD-secret&alt=sse HTTP/1.1\r\n"
           b"Host: api.openai.com\r\nAuthorization: Bearer sk-proj-abc123\r\n"
           b"x-api-key: sk-ant-xyz\r\nX-Goog-Api-Key: AIza987\r\nCookie: session=1\r\n"
           b"Content-Type: application/json\r\n\r\n{}")
    out = mask_http1_secrets(req)
    assert len(out) == len(req)
    for secret in (b"sk-proj-abc123", b"sk-ant-xyz", b"AIza987", b"session=1", b"AIzaSyD-secret"):
        assert secret not in out
    assert b"Authorization: Bearer **************\r\n" in out
    assert b"key=**************&alt=sse" in out
    assert b"Host: api.openai.com" in out and b"Content-Type: application/json" in out


def test_leaves_other_bytes_alone():
    data = bytes(range(256)) * 4
    assert mask_http1_secrets(data) == data
    assert mask_http1_secrets(b"") == b""


def test_cmdline_keys_masked():
    from llmspy_tui.redact import mask_cmdline_arg

    assert mask_cmdline_arg("--api-key=sk-proj-abcdef123") == "--api-key=sk-**************"
    assert mask_cmdline_arg("AIzaSyA1234567890abc") == "AIz" + "*" * 17
    assert mask_cmdline_arg("agent.py") == "agent.py"
