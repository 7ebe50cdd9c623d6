"""A TCP forwarder between agents and the scheduler that a test can cut: a network partition
with both processes alive, which no signal can make (SIGSTOP freezes the process too).

Agents are pointed at `Partition.url`; every connection is relayed to the scheduler's port
until `cut()`, which closes the relayed connections and refuses new ones; `heal()` relays
again. `hold_when(pattern)` makes a one-way partition at an exact point of the protocol: from
the first answer that carries `pattern` (an agent's run message) on, the agent hears the
scheduler but nothing it sends arrives, until `release()`, which delivers what waited.
"""

from __future__ import annotations

import socket
import threading


class Partition:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        self._flowing = threading.Event()  # agent -> scheduler relays; cleared by a hold
        self._flowing.set()
        self._trigger: bytes | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut: the listener is closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    continue
                self._open += [client, upstream]
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(a, b, up), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                if up:
                    self._flowing.wait()
                elif self._trigger is not None and self._trigger in data:
                    # Held before the agent has the answer, so nothing it sends in reply
                    # can have passed.
                    self._trigger = None
                    self._flowing.clear()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def heal(self) -> None:
        """Accept and relay again, on the same port."""
        with self._lock:
            self._cut = False
            self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def hold_when(self, pattern: bytes) -> None:
        """Hold everything the agents send from the first scheduler answer that carries
        `pattern` on (that answer itself is delivered)."""
        self._trigger = pattern

    def release(self) -> None:
        """Relay what the agents sent during the hold, and all that follows."""
        self._flowing.set()

    def cut(self) -> None:
        self._flowing.set()  # a held relay wakes to find its sockets closed
        with self._lock:
            self._cut = True
            self.listener.close()
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._open.clear()
