"""Where steps run: this process, worker processes, or a Ray cluster.

Each executor takes a `runner.StepTask` and returns a future of its `Outcome`;
the step itself always runs through `runner.execute`, so caching, retries, logs and
output storage behave the same everywhere. Workers reach the same metadata store
and artifact root as the driver (they are given its settings).

- ``local``, 1 worker: in this process, one step after another (for debugging:
  breakpoints work, values stay in memory between steps);
- ``local``, N workers: parallel branches in N spawned subprocesses;
- ``ray``: one Ray task per step, with the step's ``resources`` (num_cpus,
  num_gpus, memory ...), on ``ray_address`` (``auto``, ``ray://host:port``) or a
  local Ray when none is given.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from modelyard.core.errors import InvalidParameter, StoreUnavailable

__all__ = ["Executor", "open_executor"]


class Executor(Protocol):
    def submit(self, task: Any) -> Future: ...
    def close(self) -> None: ...


class InlineExecutor:
    """Runs each step at once, in this process."""

    def submit(self, task: Any) -> Future:
        from modelyard.pipelines.runner import execute

        future: Future = Future()
        try:
            future.set_result(execute(task, keep_value=True))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver
            future.set_exception(exc)
        return future

    def close(self) -> None:
        pass


class ProcessExecutor:
    """Steps in spawned worker processes (fresh interpreters: no inherited database
    connections or threads)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing

        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task: Any) -> Future:
        from modelyard.pipelines.runner import execute

        return self.pool.submit(execute, task)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    def __init__(self, address: str | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InvalidParameter(
                "The ray executor needs Ray: pip install 'modelyard[ray]'"
            ) from exc
        self.ray = ray
        self.address = address
        self.started = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, logging_level="ERROR")
                else:
                    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
            except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ...
                raise StoreUnavailable(
                    f"Cannot reach the Ray cluster at {address or 'a new local Ray'}: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            self.started = True
        from modelyard.pipelines.runner import execute

        self._remote = ray.remote(execute)

    def submit(self, task: Any) -> Future:
        options = {k: v for k, v in task.step.resources.items()}
        remote = self._remote.options(**options) if options else self._remote
        return remote.remote(task).future()

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def open_executor(name: str, *, workers: int = 1, ray_address: str | None = None) -> Executor:
    if name == "local":
        if workers < 1:
            raise InvalidParameter(f"workers must be 1 or more, got {workers}")
        return InlineExecutor() if workers == 1 else ProcessExecutor(workers)
    if name == "ray":
        return RayExecutor(ray_address)
    raise InvalidParameter(f"Unknown executor {name!r}: use local or ray")
