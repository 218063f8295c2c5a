"""Fault modes and robustness at the byte and TCP level, seen through raw sockets."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time

import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi there"}]}


def _raw_request(
    server: LocalProtocolServer, path: str, body: dict[str, object], **headers: str
) -> bytes:
    """Send one HTTP/1.1 request and read until the server closes the connection."""
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + payload)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _reads(server: LocalProtocolServer, body: dict[str, object], **headers: str) -> list[bytes]:
    """Like `_raw_request`, but keep each recv() separately."""
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n"
        + "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
        + "\r\n"
    )
    reads: list[bytes] = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head.encode() + payload)
        while chunk := sock.recv(65536):
            reads.append(chunk)
    return reads


def test_truncated_stream_lacks_the_chunked_terminator(local_server: LocalProtocolServer) -> None:
    raw = _raw_request(
        local_server, "/v1/chat/completions", {**CHAT, "stream": True}, X_Fault="truncate"
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"chunked" in head.lower()
    assert b"Echo: " in body
    assert b"[DONE]" not in body
    assert not body.endswith(b"0\r\n\r\n")


def test_truncated_body_is_shorter_than_its_content_length(
    local_server: LocalProtocolServer,
) -> None:
    raw = _raw_request(local_server, "/v1/chat/completions", CHAT, X_Fault="truncate")
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(
        next(
            line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        ).split(b":")[1]
    )
    assert 0 < len(body) < length


def test_bad_utf8_bytes_are_raw_inside_the_text(local_server: LocalProtocolServer) -> None:
    raw = _raw_request(local_server, "/v1/chat/completions", CHAT, X_Fault="bad_utf8")
    body = raw.partition(b"\r\n\r\n")[2]
    assert b'"content":"Echo: \xff\xfehi there"' in body
    streamed = _raw_request(
        local_server,
        "/api/chat",
        {"model": "llama3.2", "messages": CHAT["messages"]},
        X_Fault="bad_utf8",
    )
    assert b'"content":"\xff\xfehi "' in streamed


def test_split_utf8_cuts_characters_between_writes(local_server: LocalProtocolServer) -> None:
    reads = _reads(local_server, CHAT, X_Fault="split_utf8")
    body = b"".join(reads).partition(b"\r\n\r\n")[2]
    assert json.loads(body)["choices"][0]["message"]["content"] == "héllo → 日本"

    def broken(data: bytes) -> bool:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    assert len(reads) > 2
    assert any(broken(read) for read in reads)


def test_empty_body_and_malformed_are_200_json(local_server: LocalProtocolServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=5)
    try:
        for mode in ("empty_body", "malformed"):
            conn.request("POST", "/v1/chat/completions", json.dumps(CHAT), {"X-Fault": mode})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200
            assert response.getheader("Content-Type", "").startswith("application/json")
            if mode == "empty_body":
                assert body == b"" and response.getheader("Content-Length") == "0"
            else:
                assert body.startswith(b'{"id":"chatcmpl-')
                with pytest.raises(json.JSONDecodeError):
                    json.loads(body)
    finally:
        conn.close()


def test_malformed_stream_line_comes_after_the_first_content(
    local_server: LocalProtocolServer,
) -> None:
    raw = _raw_request(
        local_server, "/v1/chat/completions", {**CHAT, "stream": True}, X_Fault="malformed"
    )
    data_lines = [line for line in raw.split(b"\n") if line.startswith(b"data: ")]
    payloads = [line[6:] for line in data_lines]
    bad = [
        index
        for index, payload in enumerate(payloads)
        if payload != b"[DONE]" and not _is_json(payload)
    ]
    assert bad == [2]  # role chunk, first content chunk, then the broken one
    assert payloads[-1] == b"[DONE]"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def test_drip_and_latency_delay_the_answer(local_server: LocalProtocolServer) -> None:
    started = time.monotonic()
    raw = _raw_request(
        local_server,
        "/v1/chat/completions",
        {**CHAT, "stream": True},
        X_Fault="drip",
        X_Drip_Ms="100",
    )
    dripped = time.monotonic() - started
    assert raw.count(b"data: ") == 6  # role, 3 pieces, finish, [DONE]: 5 pauses
    assert dripped >= 0.45
    started = time.monotonic()
    _raw_request(local_server, "/v1/chat/completions", CHAT, X_Latency_Ms="300")
    assert time.monotonic() - started >= 0.3


def test_server_wide_latency() -> None:
    with run_local_server(latency_ms=250) as server:
        started = time.monotonic()
        raw = _raw_request(server, "/v1/chat/completions", CHAT)
        assert time.monotonic() - started >= 0.25
        assert b"Echo: hi there" in raw


@pytest.mark.parametrize(
    "headers",
    [{"X-Fault": "hang"}, {"X-Fault": "drip", "X-Drip-Ms": "1000", "X-Stream-Chunks": "50"}],
    ids=["hang", "drip"],
)
def test_stop_returns_quickly_with_requests_open(headers: dict[str, str]) -> None:
    outcome: list[BaseException | bytes] = []
    server = LocalProtocolServer().start()

    def client() -> None:
        try:
            outcome.append(
                _raw_request(
                    server,
                    "/v1/chat/completions",
                    {**CHAT, "stream": True},
                    **{k.replace("-", "_"): v for k, v in headers.items()},
                )
            )
        except BaseException as exc:  # reported below
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    thread.join(2.0)
    assert not thread.is_alive()
    assert outcome
    if isinstance(outcome[0], bytes):
        assert b"[DONE]" not in outcome[0]  # cut off, not finished


def test_client_disconnect_mid_stream_logs_no_traceback(
    fresh_server: LocalProtocolServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = json.dumps({**CHAT, "stream": True}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nX-Stream-Chunks: 20000\r\n{{fault}}\r\n"
    )
    # A fast stream fails on write; a dripping one notices the close while pausing.
    for fault in ("", "X-Fault: drip\r\nX-Drip-Ms: 20\r\n", ""):
        sock = socket.create_connection(("127.0.0.1", fresh_server.port), timeout=5)
        sock.sendall(head.format(fault=fault).encode() + payload)
        received = b""
        while b"data: " not in received:
            received += sock.recv(4096)
        sock.close()
    time.sleep(0.3)
    conn = http.client.HTTPConnection("127.0.0.1", fresh_server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", json.dumps(CHAT))
    assert conn.getresponse().status == 200
    conn.close()
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []
