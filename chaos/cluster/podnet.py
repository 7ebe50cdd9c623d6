"""Each pod's network: a plain-HTTP forward proxy, so the local cluster can partition a live pod.

Pods here are local processes sharing the host's loopback: there is no network to cut, and a
NetworkPolicy denying a pod's egress could only be enforced by killing the process, which is a
crash, not a partition. So the pod's processes get HTTP_PROXY pointing at their own
`PodNetwork` and every byte they exchange with a destination crosses it. While `allowed(host,
port)` says no, bytes wait here as in a partitioned network while TCP retransmits: the process
runs on, its requests hang, neither side sees a close. Established connections are cut too, as
a real partition drops their packets as well. Once allowed, waiting bytes are delivered, unless
a side gave up meanwhile. Limits: only plain-HTTP/1.1 clients that honor HTTP_PROXY are
partitioned (CONNECT/https gets a 501; a client ignoring the proxy goes around it), which the
pods' agents are.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from urllib.parse import urlsplit

import h11

_HOP_BY_HOP = (b"proxy-connection", b"proxy-authorization")
_PLAIN_ONLY = b"the pod network relays plain http only\n"
_MESSAGE = (h11.InformationalResponse, h11.Response, h11.Data, h11.EndOfMessage)
Origin = tuple[str, int]


class PodNetwork:
    """The proxy one pod's processes talk through; `allowed` is the pod's egress policy now."""

    def __init__(self, allowed: Callable[[str, int], bool], *, poll_s: float = 0.05) -> None:
        self._allowed, self._poll_s = allowed, poll_s
        self._lock, self._closed = threading.Lock(), False
        self._socks: set[socket.socket] = set()  # every open socket, so close() ends all threads
        self._listener: socket.socket | None = None
        self._url = ""

    def start(self) -> PodNetwork:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._url = "http://127.0.0.1:%d" % self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        with self._lock:
            self._closed, socks, self._socks = True, [*self._socks], set()
        for sock in filter(None, [self._listener, *socks]):
            _shut(sock)

    def _accept(self, listener: socket.socket) -> None:
        with suppress(OSError):  # close() shut the listener
            while True:
                client, _ = listener.accept()
                if self._track(client):
                    threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> bool:
        """Register a socket for close(); one opened as close() ran is shut at once."""
        with self._lock:
            if not self._closed:
                self._socks.add(sock)
                return True
        _shut(sock)
        return False

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)
        _shut(sock)

    def _serve(self, client: socket.socket) -> None:
        relay = _Relay(self, client)
        try:
            with suppress(OSError, h11.ProtocolError):  # a peer vanished or spoke nonsense
                relay.run()
        finally:
            relay.drop_upstream()
            self._forget(client)

    def _await_link(self, origin: Origin, watch: Iterable[socket.socket]) -> None:
        """Hold the caller's bytes while the pod is cut from `origin`, as a partition would,
        and drop them if a side left meanwhile: nobody is there to deliver them to."""
        if self._allowed(*origin):
            return
        while True:  # the hang-up check comes first, also on the turn the cut heals
            if self._closed or any(_hung_up(sock) for sock in watch):
                raise ConnectionAbortedError("a side left during the partition")
            if self._allowed(*origin):
                return
            time.sleep(self._poll_s)


class _Relay:
    """One client connection: its requests in turn, to whichever origin each one names."""

    def __init__(self, net: PodNetwork, client: socket.socket) -> None:
        self.net, self.client, self.down = net, client, h11.Connection(h11.SERVER)
        self.up: h11.Connection | None = None
        self.up_sock: socket.socket | None = None
        self.origin: Origin = ("", 0)

    def run(self) -> None:
        while isinstance(request := _next(self.down, self.client), h11.Request):
            origin, target = _split(request.target)
            if origin is None:
                return self._refuse()
            self._connect(origin)
            headers = [(k, v) for k, v in request.headers.raw_items()
                       if k.lower() not in _HOP_BY_HOP]
            self._send(self.up, self.up_sock,
                       h11.Request(method=request.method, target=target, headers=headers))
            self._pump(self.down, self.client, self.up, self.up_sock)
            self._pump(self.up, self.up_sock, self.down, self.client)
            if not _reusable(self.up):
                self.drop_upstream()
            if not _reusable(self.down):
                return
            self.down.start_next_cycle()
            if self.up is not None:
                self.up.start_next_cycle()

    def _connect(self, origin: Origin) -> None:
        """Keep-alive to the same origin reuses its connection, as the client expects of us."""
        if origin == self.origin and self.up_sock is not None and not _hung_up(self.up_sock):
            return
        self.drop_upstream()
        self.origin = origin
        self.net._await_link(origin, [self.client])  # even the SYN waits out a partition
        sock = socket.create_connection(origin)  # refused: OSError, the client just sees a close
        if not self.net._track(sock):
            raise ConnectionAbortedError("the pod network closed")
        self.up_sock, self.up = sock, h11.Connection(h11.CLIENT)

    def drop_upstream(self) -> None:
        if self.up_sock is not None:
            self.net._forget(self.up_sock)
        self.up_sock = self.up = None

    def _pump(self, src: h11.Connection, src_sock: socket.socket, dst: h11.Connection,
              dst_sock: socket.socket) -> None:
        """Stream one message's remaining events across as they come: bodies can be long and
        responses slow (long polls), so nothing is buffered whole and nothing times out."""
        while isinstance(event := _next(src, src_sock), _MESSAGE):
            self._send(dst, dst_sock, event)
            if isinstance(event, h11.EndOfMessage):
                return
        raise ConnectionAbortedError(f"message cut short: {event!r}")

    def _send(self, conn: h11.Connection, sock: socket.socket, event: h11.Event) -> None:
        if data := conn.send(event):
            self.net._await_link(self.origin, {self.client, sock})
            sock.sendall(data)

    def _refuse(self) -> None:
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(_PLAIN_ONLY))),
                   ("Connection", "close")]
        for event in (h11.Response(status_code=501, headers=headers), h11.Data(data=_PLAIN_ONLY),
                      h11.EndOfMessage()):
            self.client.sendall(self.down.send(event))


def _next(conn: h11.Connection, sock: socket.socket) -> h11.Event:
    while (event := conn.next_event()) is h11.NEED_DATA:
        conn.receive_data(sock.recv(65536))
    return event


def _split(target: bytes) -> tuple[Origin | None, bytes]:
    """An absolute-form http target into its origin and the origin-form target it gets."""
    url = urlsplit(target.decode("ascii", "replace"))
    with suppress(ValueError):  # a malformed port
        if url.scheme == "http" and url.hostname:
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            return (url.hostname, url.port or 80), path.encode("ascii", "replace")
    return None, b""


def _reusable(conn: h11.Connection | None) -> bool:
    return conn is not None and conn.our_state is h11.DONE and conn.their_state is h11.DONE


def _hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed, without consuming what it sent (pipelined bytes stay put)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except OSError as err:  # nothing to read yet means still there
        return not isinstance(err, BlockingIOError)


def _shut(sock: socket.socket) -> None:
    """Shutdown before close: it wakes a thread blocked in recv/accept on this socket."""
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
