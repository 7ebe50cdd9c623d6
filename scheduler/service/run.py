"""Start the live scheduler: build the engine and the app, serve them with uvicorn."""

from __future__ import annotations

import logging

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


def serve(config: ServiceConfig, host: str = "127.0.0.1", port: int = 8080,
          log_level: str = "warning") -> None:
    configure_logging(log_level)
    app = build(config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5)
