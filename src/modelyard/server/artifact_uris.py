"""Artifact URIs as clients see them: locations under the server's artifact root
are handed out as ``mlflow-artifacts:/<path>``, so every client (the mlflow client
and modelyard's own) uploads and downloads through the server's artifact proxy and
needs no access to the storage behind it. Both the native API and the MLflow
adapter answer through this one mapping.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request

from modelyard.core.errors import InvalidParameter
from modelyard.tracking.entities import Experiment, Run, RunInfo

__all__ = ["ARTIFACTS_SCHEME", "ArtifactUris", "Uris"]

ARTIFACTS_SCHEME = "mlflow-artifacts:"


class ArtifactUris:
    """Map stored artifact URIs to ``mlflow-artifacts:/`` URIs and back.

    Example::

        uris = ArtifactUris(["/srv/artifacts"])
        uris.to_mlflow("/srv/artifacts/1/ab12/artifacts")  # 'mlflow-artifacts:/1/ab12/artifacts'
        uris.to_mlflow("s3://elsewhere/x")                  # unchanged
        uris.from_mlflow("mlflow-artifacts:/team-a")       # '/srv/artifacts/team-a'

    - ``roots``: the spellings of the server's artifact root (as configured and as
      resolved); the first one is used to build stored URIs.
    """

    def __init__(self, roots: Iterable[str]) -> None:
        self.roots = list(dict.fromkeys(r.rstrip("/") for r in roots if r and r.rstrip("/")))

    def to_mlflow(self, uri: str) -> str:
        for root in self.roots:
            if uri == root:
                return f"{ARTIFACTS_SCHEME}/"
            if uri.startswith(root + "/"):
                return f"{ARTIFACTS_SCHEME}/{uri[len(root) + 1 :].strip('/')}"
        return uri

    def from_mlflow(self, uri: str | None) -> str | None:
        """A client-given location: ``mlflow-artifacts:/x`` becomes ``<root>/x``."""
        if not uri or not uri.startswith(ARTIFACTS_SCHEME):
            return uri or None
        rel = uri[len(ARTIFACTS_SCHEME) :]
        if rel.startswith("//"):  # mlflow-artifacts://host/path names another server
            raise InvalidParameter(
                f"Artifact location {uri!r} names a host; this server stores only under "
                "mlflow-artifacts:/<path>"
            )
        norm = posixpath.normpath("/" + rel).lstrip("/")
        if not self.roots:
            raise InvalidParameter("This server has no artifact root to place artifacts under")
        return f"{self.roots[0]}/{norm}" if norm else self.roots[0]

    def public_info(self, info: RunInfo) -> dict:
        return replace(info, artifact_uri=self.to_mlflow(info.artifact_uri)).to_dict()

    def public_run(self, run: Run) -> dict:
        out = run.to_dict()
        out["info"]["artifact_uri"] = self.to_mlflow(run.info.artifact_uri)
        return out

    def public_experiment(self, exp: Experiment) -> dict:
        out = exp.to_dict()
        out["artifact_location"] = self.to_mlflow(exp.artifact_location)
        return out


def _artifact_uris(request: Request) -> ArtifactUris:
    state = request.app.state
    return ArtifactUris([state.settings.resolved_artifacts, state.artifacts.root])


Uris = Annotated[ArtifactUris, Depends(_artifact_uris)]
