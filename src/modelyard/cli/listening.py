"""What every server command shares: its URL, the warning when it binds beyond
loopback, and a clear error when it cannot listen."""

from __future__ import annotations

import errno
from collections.abc import Callable

import typer

from modelyard.cli import is_loopback, render

__all__ = ["base_url", "run_listening", "warn_if_exposed"]


def base_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def warn_if_exposed(host: str, port: int, exposes: str) -> None:
    """``exposes``: what anyone who reaches the port could do (the servers have no auth)."""
    if not is_loopback(host):
        render.print_warning(f"binding {host}: {exposes.format(port=port)}")


def run_listening(run: Callable[[], None], host: str, port: int) -> None:
    """``run()`` the server; a port in use or refused ends with exit 1 and a message."""
    try:
        run()
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            render.print_error(
                f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port or --host"
            )
            raise typer.Exit(1) from None
        raise
