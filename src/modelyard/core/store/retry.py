"""Retry a store call while its database is unreachable; report a full disk.

Used by the SQL stores as a method decorator: the instance provides ``retries``,
``retry_backoff`` and ``safe_url`` (the URL without its password)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc

from modelyard.core.errors import StorageFull, StoreUnavailable

__all__ = ["retrying"]

_F = TypeVar("_F", bound=Callable[..., Any])


def retrying(fn: _F) -> _F:
    """Retry a store call while the database is unreachable, then raise clearly."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        delay = self.retry_backoff
        for attempt in range(1, self.retries + 2):
            try:
                return fn(self, *args, **kwargs)
            except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
                if _is_full(exc):
                    raise StorageFull(
                        f"The metadata database {self.safe_url} could not write "
                        f"({str(exc.orig).strip()}): is its disk out of space? The transaction "
                        "was rolled back, so nothing of this call was written. Free space "
                        "and retry."
                    ) from exc
                if not _is_unreachable(exc):
                    raise
                if attempt > self.retries:
                    raise StoreUnavailable(
                        f"The metadata database {self.safe_url} is unreachable after "
                        f"{attempt} attempts ({type(exc.orig).__name__}: "
                        f"{str(exc.orig).strip().splitlines()[0] if str(exc.orig) else ''}). "
                        "Nothing of this call was written; retry when it is back."
                    ) from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper  # type: ignore[return-value]


def _is_full(exc: sa_exc.DBAPIError) -> bool:
    """Out of space: SQLite says "database or disk is full" (ENOSPC) or "disk I/O
    error" (a write refused otherwise, e.g. a quota); PostgreSQL "No space left"."""
    text = str(exc.orig).lower()
    return any(s in text for s in ("disk is full", "no space left", "disk i/o error"))


def _is_unreachable(exc: sa_exc.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    return any(
        s in text
        for s in (
            "connection refused",
            "could not connect",
            "server closed the connection",
            "terminating connection",
            "connection is closed",
            "the database system is",
            "connection failed",
            "unable to open database",
        )
    )
