"""The service keeps an idle connection open longer than its clients do (httpx drops one
after 5 s idle): when both gave up at 5 s, a client could send on a connection the service
was closing, and the request died with "connection reset by peer" (a live test's flake)."""

from __future__ import annotations

import socket
import time

import httpx

from scheduler.service.run import KEEP_ALIVE_S
from tests.unit.service.live import InProcessService

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _answer(conn: socket.socket) -> bytes:
    """One whole HTTP answer read off `conn`, or what came before the service closed it."""
    data = b""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                return data
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk


def test_an_idle_connection_outlives_the_clients_own_expiry(tmp_path):
    expiry = httpx.Limits().keepalive_expiry
    assert expiry is not None and KEEP_ALIVE_S > 2 * expiry
    svc = InProcessService(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as conn:
            conn.sendall(REQUEST)
            assert _answer(conn).startswith(b"HTTP/1.1 200")
            time.sleep(expiry + 1.0)  # idle past the point where httpx would let it go
            conn.sendall(REQUEST)
            assert _answer(conn).startswith(b"HTTP/1.1 200")  # the same connection answers
    finally:
        svc.stop()
