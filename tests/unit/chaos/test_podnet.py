"""The pod network partitions a live pod: real sockets, a real origin, httpx clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from chaos.cluster.podnet import PodNetwork


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # with Content-Length: keep-alive, so reuse is observable

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _answer(self, body: bytes) -> None:
        server: _Origin = self.server  # type: ignore[assignment]
        server.seen.append((self.command, self.path, body))
        if self.path.startswith("/slow"):
            server.slow_started.set()
            time.sleep(0.5)
        reply = f"{self.command} {self.path} ".encode() + body
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.wfile.flush()
        if self.path.startswith("/slow"):
            server.answered.set()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Origin(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.connections = 0
        self.slow_started, self.answered = threading.Event(), threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port = self.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def get_request(self):  # one call per accepted TCP connection
        request = super().get_request()
        self.connections += 1
        return request


class _Gate:
    """The pod's egress policy, flipped by the test; records what it was asked."""

    def __init__(self) -> None:
        self.open = True
        self.asked: list[tuple[str, int]] = []
        self.held = threading.Event()  # set once a byte had to wait

    def __call__(self, host: str, port: int) -> bool:
        self.asked.append((host, port))
        if not self.open:
            self.held.set()
        return self.open


@pytest.fixture
def origin():
    server = _Origin()
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def gate() -> _Gate:
    return _Gate()


@pytest.fixture
def net(gate: _Gate):
    network = PodNetwork(gate, poll_s=0.01).start()
    try:
        yield network
    finally:
        network.close()


def _open_later(gate: _Gate, after_s: float, before: list) -> threading.Thread:
    """Heal the partition from another thread; returns it, `before` gets the heal time."""

    def heal() -> None:
        time.sleep(after_s)
        before.append(time.monotonic())
        gate.open = True

    thread = threading.Thread(target=heal, daemon=True)
    thread.start()
    return thread


def test_requests_go_through_in_origin_form_over_one_upstream_connection(origin, net, gate):
    with httpx.Client(proxy=net.url, timeout=5) as client:
        got = client.get(f"{origin.url}/items?page=2&q=a")
        posted = client.post(f"{origin.url}/submit", content=b"hello body")
    assert got.status_code == 200 and got.text == "GET /items?page=2&q=a "
    assert posted.text == "POST /submit hello body"
    assert origin.seen == [("GET", "/items?page=2&q=a", b""), ("POST", "/submit", b"hello body")]
    assert origin.connections == 1
    assert set(gate.asked) == {("127.0.0.1", origin.port)}


def test_one_client_connection_may_switch_origins(origin, net):
    other = _Origin()
    threading.Thread(target=other.serve_forever, args=(0.02,), daemon=True).start()
    try:
        with httpx.Client(proxy=net.url, timeout=5) as client:
            replies = [client.get(f"{o.url}/{n}").text for n, o in enumerate([origin, other, origin])]
    finally:
        other.shutdown()
        other.server_close()
    assert replies == ["GET /0 ", "GET /1 ", "GET /2 "]
    assert [p for _, p, _ in origin.seen] == ["/0", "/2"] and other.seen == [("GET", "/1", b"")]


def test_a_cut_holds_the_request_and_the_origin_hears_nothing(origin, net, gate):
    gate.open = False
    with httpx.Client(proxy=net.url, timeout=0.5) as client:
        with pytest.raises(httpx.TimeoutException):
            client.get(f"{origin.url}/during-cut")
    assert origin.connections == 0 and origin.seen == []
    gate.open = True
    with httpx.Client(proxy=net.url, timeout=5) as client:
        assert client.get(f"{origin.url}/after").text == "GET /after "
    # The first client gave up during the cut, so its bytes were dropped, not delivered late.
    assert origin.seen == [("GET", "/after", b"")]


def test_a_request_sent_during_a_cut_is_delivered_once_allowed(origin, net, gate):
    gate.open = False
    healed: list[float] = []
    healer = _open_later(gate, 0.3, healed)
    with httpx.Client(proxy=net.url, timeout=5) as client:
        reply = client.post(f"{origin.url}/late", content=b"patience")
    healer.join()
    assert gate.held.is_set()
    assert reply.text == "POST /late patience"
    assert origin.seen == [("POST", "/late", b"patience")]


def test_a_cut_holds_the_response_until_allowed(origin, net, gate):
    healed: list[float] = []

    def cut_then_heal() -> None:
        assert origin.slow_started.wait(5)
        gate.open = False  # the partition falls while the origin computes
        assert origin.answered.wait(5)
        time.sleep(0.1)  # the answer sits in the network for a while
        healed.append(time.monotonic())
        gate.open = True

    thread = threading.Thread(target=cut_then_heal, daemon=True)
    thread.start()
    with httpx.Client(proxy=net.url, timeout=5) as client:
        reply = client.get(f"{origin.url}/slow")
        arrived = time.monotonic()
    thread.join()
    assert reply.text == "GET /slow "
    assert gate.held.is_set()
    assert arrived >= healed[0]


def test_non_http_targets_get_501_and_unreachable_origins_close(net):
    port = int(net.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):  # the proxy closes after answering
            data += chunk
    assert data.startswith(b"HTTP/1.1 501 ")
    assert data.endswith(b"the pod network relays plain http only\n")

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with httpx.Client(proxy=net.url, timeout=5) as client:
        with pytest.raises(httpx.TransportError) as err:
            client.get(f"http://127.0.0.1:{dead}/")
    assert not isinstance(err.value, httpx.TimeoutException)


_ENV_CLIENT = """
import sys, httpx
try:
    print(httpx.get(sys.argv[1], timeout=float(sys.argv[2])).text)
except httpx.TimeoutException:
    print("timeout")
"""


def test_processes_reach_the_network_through_http_proxy(origin, net, gate):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HTTP_PROXY=net.url, NO_PROXY="")

    def run(path: str, timeout_s: float) -> str:
        argv = [sys.executable, "-c", _ENV_CLIENT, f"{origin.url}{path}", str(timeout_s)]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run("/env", 5) == "GET /env"
    gate.open = False  # if the process went around the proxy, the cut would not stop it
    assert run("/env-cut", 0.5) == "timeout"
    assert [path for _, path, _ in origin.seen] == ["/env"]
    assert ("127.0.0.1", origin.port) in gate.asked


def test_close_ends_open_connections(origin, net, gate):
    gate.open = False
    outcome: list[BaseException] = []

    def held_call() -> None:
        with httpx.Client(proxy=net.url, timeout=5) as client:
            try:
                client.get(f"{origin.url}/held")
            except httpx.HTTPError as err:
                outcome.append(err)

    caller = threading.Thread(target=held_call, daemon=True)
    caller.start()
    assert gate.held.wait(5)
    closed_at = time.monotonic()
    net.close()
    caller.join(5)
    assert time.monotonic() - closed_at < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)
    assert not isinstance(outcome[0], httpx.TimeoutException)
    net.close()  # idempotent
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{origin.url}/", proxy=net.url, timeout=2)
