"""The Ray engine of batch prediction: every chunk (a range of row groups of one
file) is one Ray task that loads the model, streams its rows and writes its part
file; the driver follows them with ``ray.wait``, reports progress, records each
finished chunk, and merges the parts at the end like the local engine.

The driver loaded the model already (to check the input against its signature),
so tasks load it from that local folder; a task whose machine does not have the
folder (a remote cluster) loads the model URI itself, which then has to be
fetchable from there (``s3://``, ``models:/`` against a shared tracking server).
Likewise, inputs and the output's ``.parts`` folder must be reachable from every
node: an object store URL or a shared file system. Ray is imported only when this
engine runs; without it the error names the extra to install.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

from modelyard.core.errors import InvalidParameter, ModelyardError
from modelyard.models import package
from modelyard.models.loader import load_model
from modelyard.models.manifest import MANIFEST_FILE
from modelyard.models.package import LoadedModel
from modelyard.serving.batch import Chunk, ChunkJob, EngineRun, predict_chunk

__all__ = ["RAY_MISSING", "check", "predict_partition", "run"]

RAY_MISSING = "--engine ray needs Ray, which is not installed: pip install 'modelyard[ray]'"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InvalidParameter(RAY_MISSING) from None
    return ray


def check() -> None:
    """Fail before any work when Ray is not installed."""
    _import_ray()


@functools.lru_cache(maxsize=1)
def _model(folder: str, manifest_sha256: str, uri: str, allow_pickle: bool) -> LoadedModel:
    """The model for this worker process, loaded once per package (the hash is the key)."""
    if (Path(folder) / MANIFEST_FILE).is_file():
        return package.load(folder, allow_pickle=allow_pickle)
    return load_model(uri, allow_pickle=allow_pickle)


def predict_partition(
    folder: str, manifest_sha256: str, uri: str, allow_pickle: bool, job: ChunkJob, chunk: Chunk
) -> int:
    """One Ray task: predict ``chunk`` into its part file; returns its rows."""
    return predict_chunk(_model(folder, manifest_sha256, uri, allow_pickle), job, chunk)


def _connect(ray: Any, address: str | None) -> bool:
    """Join the running Ray, ``address``, or a new local Ray; True when we started one."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InvalidParameter(
            f"Cannot connect to Ray at {address!r}: {exc} (--ray-address auto joins a "
            "cluster started here with `ray start --head`, ray://host:10001 a remote one; "
            "without --ray-address a local Ray is started)"
        ) from None
    return address is None


def _failure(ray: Any, exc: Exception, chunk: Chunk) -> ModelyardError:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ModelyardError):
        return type(cause)(cause.message)
    if isinstance(exc, ray.exceptions.RayTaskError) and cause is not None:
        exc = cause
    return ModelyardError(
        f"A Ray task failed on chunk {chunk.index} ({chunk.file!r}): {type(exc).__name__}: {exc}"
    )


def run(job_run: EngineRun) -> None:
    """Predict ``job_run.todo`` as Ray tasks, at most two per cluster CPU in flight."""
    ray = _import_ray()
    started = _connect(ray, job_run.ray_address)
    try:
        _drive(ray, job_run)
    finally:
        if started:
            ray.shutdown()


def _drive(ray: Any, job_run: EngineRun) -> None:
    folder = Path(job_run.model.path).resolve()
    sha = hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
    task = ray.remote(num_cpus=1)(predict_partition)
    limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending = list(reversed(job_run.todo))
    inflight: dict[Any, Chunk] = {}

    def submit() -> None:
        while pending and len(inflight) < limit:
            chunk = pending.pop()
            ref = task.remote(
                str(folder), sha, job_run.model_uri, job_run.allow_pickle, job_run.job, chunk
            )
            inflight[ref] = chunk

    try:
        submit()
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                chunk = inflight.pop(ref)
                try:
                    rows = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise _failure(ray, exc, chunk) from None
                job_run.finished(chunk)
                job_run.progress.advance(rows)
            submit()
    finally:
        for ref in inflight:
            ray.cancel(ref)
