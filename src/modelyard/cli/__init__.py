"""The ``modelyard`` command line (typer + rich): thin commands over the services.

Each command parses its arguments, makes one service call and renders the result
(``render``). The commands reach the services through `Services`, the click context
object, so a test can hand the app its own (``CliRunner().invoke(app, args,
obj=Services(tracking=lambda: svc))``); by default the tracking service is opened
from the settings on first use, so ``modelyard --help`` never touches a store.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.registry.service import RegistryService
    from modelyard.tracking.service import TrackingService

__all__ = ["JsonFlag", "Services", "View", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (what servers bind by default)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class View(StrEnum):
    """Which experiments or runs a listing covers, by lifecycle stage."""

    active = "active"
    deleted = "deleted"
    all = "all"


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (for scripts) instead of tables.")
]


def _open_tracking() -> TrackingService:
    # Imported here: settings and the store stack cost ~0.5 s, which --help must not pay.
    from modelyard.core.config import load_settings
    from modelyard.tracking.backends import open_tracking

    return open_tracking(load_settings())


def _open_registry(tracking: TrackingService) -> RegistryService:
    from modelyard.registry.backends import open_registry

    return open_registry(tracking)


class Services:
    """The services the commands call, each opened once, on first use.

    - ``tracking``: returns the tracking service (default: the one the settings
      name — ``MODELYARD_*`` variables and ``modelyard.toml``).
    - ``registry``: returns the model registry service for a tracking service
      (default: `open_registry`, the registry beside it — same database or server).
    """

    def __init__(
        self,
        tracking: Callable[[], TrackingService] | None = None,
        registry: Callable[[TrackingService], RegistryService] | None = None,
    ) -> None:
        self._open_tracking = tracking or _open_tracking
        self._open_registry = registry or _open_registry
        self._tracking: TrackingService | None = None
        self._registry: RegistryService | None = None

    @property
    def tracking(self) -> TrackingService:
        if self._tracking is None:
            self._tracking = self._open_tracking()
        return self._tracking

    @property
    def registry(self) -> RegistryService:
        if self._registry is None:
            self._registry = self._open_registry(self.tracking)
        return self._registry
