"""Run the server under uvicorn: one process, loopback unless told otherwise."""

from __future__ import annotations

import logging
import socket

from modelyard.core.config import Settings

__all__ = ["serve"]


def _nodelay_socket(host: str, port: int) -> socket.socket:
    """A listening socket whose accepted connections keep TCP_NODELAY, so a client that
    reuses its connection never waits on Nagle + delayed ACK (a 40 ms stall per call)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    log_level: str = "warning",
) -> None:
    """Serve the tracking API (native + MLflow-compatible) until interrupted."""
    import uvicorn

    from modelyard.server.app import create_app

    sock = _nodelay_socket(host, port)
    config = uvicorn.Config(
        create_app(settings),
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    logging.getLogger("modelyard").info("modelyard server on http://%s:%d", host, port)
    server.run(sockets=[sock])
