"""Start the live scheduler: build the engine and the app, serve them with uvicorn."""

from __future__ import annotations

import logging
import socket

import uvicorn

from scheduler.service.app import create_app
from scheduler.service.config import ServiceConfig
from scheduler.service.engine import Engine
from scheduler.service.identity import Identities


def build(config: ServiceConfig):
    engine = Engine(config)
    return create_app(engine, Identities(dict(config.users), config.pool_token))


def configure_logging(log_level: str) -> None:
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host`:`port`, bound before the service is built, so that a
    port in use or an address not of this machine (an `OSError`) is known before anything
    is written to the data folder. An IPv6 address or a host name is resolved first."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a restart rebinds at once
        sock.bind(address)
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


KEEP_ALIVE_S = 75
"""How long an idle connection is kept open: longer than the clients' own idle expiry
(httpx's 5 s, which our agents and tests use), so that a client always drops an idle
connection first. With uvicorn's default, also 5 s, a client could send its next request on
a connection the service was closing at that very moment, and the request died with
"connection reset by peer"."""


def server(app, log_level: str = "warning", **config) -> uvicorn.Server:
    """The uvicorn server of `app`, as `unstuck serve` runs it (`config`: more of
    `uvicorn.Config`, such as a test's host and port)."""
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False,
                                         timeout_graceful_shutdown=5,
                                         timeout_keep_alive=KEEP_ALIVE_S, **config))


def run_app(app, sock: socket.socket, log_level: str = "warning") -> bool:
    """Serve `app` on `sock` until stopped; False when uvicorn could not start it."""
    srv = server(app, log_level)
    srv.run(sockets=[sock])
    return srv.started


def serve(config: ServiceConfig, host: str = "127.0.0.1", port: int = 8080,
          log_level: str = "warning") -> None:
    configure_logging(log_level)
    sock = listen(host, port)
    run_app(build(config), sock, log_level)
