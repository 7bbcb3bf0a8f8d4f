"""Readiness across worker processes that share one listening socket.

The load balancer in front cannot choose which worker answers a probe, so a
worker says ready only when every worker has its models: each one that is ready
leaves a marker (its pid) in a shared folder, and markers of dead processes do
not count (a restarted worker marks itself again)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["WorkerReadiness"]


class WorkerReadiness:
    def __init__(self, folder: str, workers: int) -> None:
        self.folder, self.workers = Path(folder), workers

    def mark_ready(self) -> None:
        (self.folder / str(os.getpid())).touch()

    def all_ready(self) -> bool:
        alive = 0
        for marker in self.folder.iterdir():
            try:
                os.kill(int(marker.name), 0)
            except (ValueError, ProcessLookupError):
                continue
            except PermissionError:  # alive, someone else's
                pass
            alive += 1
        return alive >= self.workers
