"""The tracking store as a client of a modelyard server's native REST API.

When the server cannot be reached, calls are retried with backoff; writes that
still fail (metric batches, a run's end) go to a local spill journal and are
resent, in order, as soon as the server answers again. Resending is safe:
the server treats a repeated batch as a no-op.
"""

from __future__ import annotations

import fcntl
import logging
import os
import posixpath
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from modelyard.core.artifacts import FileInfo, check_relative_path, open_artifact_store
from modelyard.core.errors import (
    ArtifactIntegrityError,
    ModelyardError,
    ResourceNotFound,
    StoreUnavailable,
    error_from_code,
)
from modelyard.tracking.entities import (
    Experiment,
    Metric,
    Param,
    Run,
    RunInfo,
    RunInput,
    RunStatus,
    RunTag,
)
from modelyard.tracking.store import Page, TrackingStore, ViewType

__all__ = ["HttpArtifactAccess", "RestTrackingStore"]

log = logging.getLogger(__name__)

_NETWORK_ERRORS = (httpx.TransportError,)
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _client(base_url: str, timeout: float) -> httpx.Client:
    transport = httpx.HTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)], retries=0
    )
    return httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)


class SpillJournal:
    """Append-only JSON-lines files of writes the server did not take, one per process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f"journal-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

    def append(self, op: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(orjson.dumps(op) + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def pending(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("journal-*.jsonl"), key=lambda p: p.stat().st_mtime)

    def has_pending(self) -> bool:
        return self.folder.is_dir() and any(self.folder.glob("journal-*.jsonl"))


class RestTrackingStore(TrackingStore):
    """Talks to ``modelyard server`` at ``base_url``.

    - ``spill_dir``: where writes wait while the server is unreachable.
    - ``retries``/``backoff``: attempts before a call counts as failed (the delay doubles).
    """

    def __init__(
        self,
        base_url: str,
        *,
        spill_dir: str | os.PathLike | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.25,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = _client(self.base_url, timeout)
        self.retries = retries
        self.backoff = backoff
        self.journal = SpillJournal(Path(spill_dir)) if spill_dir else None
        self._warned = False

    def close(self) -> None:
        self.http.close()

    # -- transport ---------------------------------------------------------------
    def _send(self, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
        content = orjson.dumps(body) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                resp = self.http.request(
                    method, path, content=content, params=params, headers=headers
                )
                break
            except _NETWORK_ERRORS as exc:
                if attempt == self.retries:
                    raise StoreUnavailable(
                        f"The tracking server {self.base_url} is unreachable after "
                        f"{attempt + 1} attempts ({type(exc).__name__}: {exc})"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
        if resp.status_code >= 400:
            try:
                err = orjson.loads(resp.content)
                raise error_from_code(err.get("error_code", ""), err.get("message", resp.text))
            except orjson.JSONDecodeError:
                raise ModelyardError(
                    f"{method} {path} failed with HTTP {resp.status_code}: {resp.text[:500]}"
                ) from None
        return orjson.loads(resp.content) if resp.content else None

    def _call(self, method: str, path: str, body: Any = None, params: dict | None = None) -> Any:
        self.resend_spilled()
        return self._send(method, path, body, params)

    def _write_or_spill(self, op: dict, method: str, path: str, body: Any) -> None:
        try:
            self._call(method, path, body)
        except StoreUnavailable:
            if self.journal is None:
                raise
            self.journal.append({"method": method, "path": path, "body": body, **op})
            if not self._warned:
                log.warning(
                    "modelyard: server %s unreachable; writes are kept in %s and will be "
                    "resent when it is back",
                    self.base_url,
                    self.journal.folder,
                )
                self._warned = True

    def resend_spilled(self) -> int:
        """Resend journaled writes in order; returns how many were sent."""
        if self.journal is None or not self.journal.has_pending():
            return 0
        sent = 0
        for path in self.journal.pending():
            with open(path, "rb+") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process is resending this file
                lines = [ln for ln in f.read().splitlines() if ln.strip()]
                for line in lines:
                    op = orjson.loads(line)
                    try:
                        self._send(op["method"], op["path"], op["body"])
                    except StoreUnavailable:
                        return sent  # still down; keep the file, try again later
                    except ModelyardError as exc:  # rejected for good: report, do not block
                        log.error("modelyard: a spilled write was rejected: %s", exc)
                    sent += 1
                path.unlink()
        return sent

    # -- experiments -------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        body = {"name": name, "artifact_location": artifact_location, "tags": tags or {}}
        return self._call("POST", "/api/v1/experiments", body)["experiment_id"]

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.from_dict(
            self._call("GET", f"/api/v1/experiments/{quote(str(experiment_id), safe='')}")
        )

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            data = self._call("GET", f"/api/v1/experiments/by-name/{quote(name, safe='')}")
        except ResourceNotFound:
            return None
        return Experiment.from_dict(data)

    def search_experiments(
        self,
        view_type: ViewType = "active",
        max_results: int = 1000,
        page_token: str | None = None,
        name_like: str | None = None,
    ) -> Page[Experiment]:
        params = {"view": view_type, "max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        if name_like:
            params["name_like"] = name_like
        data = self._call("GET", "/api/v1/experiments", params=params)
        return Page(
            [Experiment.from_dict(e) for e in data["experiments"]], data.get("next_page_token")
        )

    def update_experiment(
        self,
        experiment_id: str,
        *,
        new_name: str | None = None,
        lifecycle_stage: str | None = None,
    ) -> Experiment:
        body = {"new_name": new_name, "lifecycle_stage": lifecycle_stage}
        return Experiment.from_dict(
            self._call("PATCH", f"/api/v1/experiments/{experiment_id}", body)
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._call(
            "PUT",
            f"/api/v1/experiments/{experiment_id}/tags/{quote(key, safe='')}",
            {"value": value},
        )

    # -- runs --------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] = (),
        user_id: str = "",
        parent_run_id: str | None = None,
        artifact_uri: str | None = None,
    ) -> Run:
        body = {
            "experiment_id": str(experiment_id),
            "run_name": run_name,
            "start_time": start_time,
            "tags": {t.key: t.value for t in tags},
            "user_id": user_id,
            "parent_run_id": parent_run_id,
        }
        return Run.from_dict(self._call("POST", "/api/v1/runs", body))

    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._call("GET", f"/api/v1/runs/{run_id}"))

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body = {"status": status, "end_time": end_time, "run_name": run_name}
        if status is not None and RunStatus(status).is_terminated and self.journal is not None:
            # Ending a run must not be lost while the server is away: journal it.
            self._write_or_spill({}, "PATCH", f"/api/v1/runs/{run_id}", body)
            try:
                return self.get_run(run_id).info
            except StoreUnavailable:
                return RunInfo(run_id, "", "", "", status, 0, end_time, "active", "")
        return RunInfo.from_dict(self._call("PATCH", f"/api/v1/runs/{run_id}", body))

    def set_run_lifecycle(self, run_id: str, lifecycle_stage: str) -> None:
        self._call("PUT", f"/api/v1/runs/{run_id}/lifecycle", {"lifecycle_stage": lifecycle_stage})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        body = {
            "metrics": [m.to_dict() for m in metrics],
            "params": [{"key": p.key, "value": p.value} for p in params],
            "tags": [{"key": t.key, "value": t.value} for t in tags],
        }
        path = f"/api/v1/runs/{run_id}/batch"
        if params or tags:
            # Params and tags answer at once (immutability errors must reach the caller).
            self._call("POST", path, body)
        else:
            self._write_or_spill({}, "POST", path, body)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("DELETE", f"/api/v1/runs/{run_id}/tags/{quote(key, safe='/')}")

    def log_inputs(self, run_id: str, inputs: Sequence[RunInput]) -> None:
        body = {
            "inputs": [
                {
                    "dataset_name": i.dataset_name,
                    "dataset_digest": i.dataset_digest,
                    "dataset_uri": i.dataset_uri,
                    "context": i.context,
                }
                for i in inputs
            ]
        }
        self._call("POST", f"/api/v1/runs/{run_id}/inputs", body)

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[Metric]:
        params = {"max_points": max_points} if max_points is not None else None
        data = self._call(
            "GET", f"/api/v1/runs/{run_id}/metrics/{quote(key, safe='/')}/history", params=params
        )
        return [Metric.from_dict(m) for m in data["metrics"]]

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: ViewType = "active",
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string,
            "view": view_type,
            "max_results": max_results,
            "order_by": list(order_by or []),
            "page_token": page_token,
        }
        data = self._call("POST", "/api/v1/runs/search", body)
        return Page([Run.from_dict(r) for r in data["runs"]], data.get("next_page_token"))


class HttpArtifactAccess:
    """A run's artifacts through the server's artifact proxy (``mlflow-artifacts:/``
    URIs); any other URI (``s3://``...) is reached directly with the client's access."""

    def __new__(cls, http: httpx.Client, artifact_uri: str):  # type: ignore[misc]
        if not artifact_uri.startswith("mlflow-artifacts:"):
            return open_artifact_store(artifact_uri)
        return super().__new__(cls)

    def __init__(self, http: httpx.Client, artifact_uri: str) -> None:
        self.http = http
        rel = artifact_uri.split(":", 1)[1].lstrip("/")
        self.prefix = check_relative_path(rel)

    def _url(self, path: str) -> str:
        rel = check_relative_path(path)
        full = posixpath.join(self.prefix, rel) if rel else self.prefix
        return f"{_ARTIFACTS}/{quote(full)}"

    @staticmethod
    def _check(resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 400:
            try:
                err = resp.json()
                raise error_from_code(err.get("error_code", ""), err.get("message", resp.text))
            except ValueError:
                raise ModelyardError(f"Artifact request failed: HTTP {resp.status_code}") from None
        return resp

    def put_bytes(self, data: bytes, path: str) -> int:
        self._check(self.http.put(self._url(path), content=data))
        return len(data)

    def put_file(self, local_path: str | os.PathLike, path: str) -> int:
        with open(local_path, "rb") as f:
            self._check(self.http.put(self._url(path), content=f))
        return os.path.getsize(local_path)

    def put_dir(self, local_dir: str | os.PathLike, prefix: str) -> int:
        base = Path(local_dir)
        files = sorted(p for p in base.rglob("*") if p.is_file())
        for file in files:
            self.put_file(file, posixpath.join(prefix, file.relative_to(base).as_posix()))
        return len(files)

    def list(self, prefix: str = "") -> list[FileInfo]:
        rel = check_relative_path(prefix)
        full = posixpath.join(self.prefix, rel) if rel else self.prefix
        data = self._check(self.http.get(_ARTIFACTS, params={"path": full})).json()
        return [
            FileInfo(
                posixpath.join(rel, f["path"]) if rel else f["path"],
                f["is_dir"],
                f.get("file_size"),
            )
            for f in data.get("files", [])
        ]

    def read_bytes(self, path: str) -> bytes:
        resp = self._check(self.http.get(self._url(path)))
        expected = resp.headers.get("content-length")
        if expected is not None and int(expected) != len(resp.content):
            raise ArtifactIntegrityError(
                f"Artifact {path!r} arrived truncated: {len(resp.content)} of {expected} bytes"
            )
        return resp.content

    def get_dir(self, prefix: str, local_dir: str | os.PathLike) -> Path:
        dest = Path(local_dir)
        entries = self.list(prefix)
        if not entries:  # a single file
            target = dest / posixpath.basename(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read_bytes(prefix))
            return target
        for entry in entries:
            rel = entry.path[len(check_relative_path(prefix)) :].lstrip("/")
            if entry.is_dir:
                self.get_dir(entry.path, dest / rel)
            else:
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read_bytes(entry.path))
        return dest
