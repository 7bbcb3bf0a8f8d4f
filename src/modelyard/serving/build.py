"""Deployable artifacts for a model package: a Dockerfile and Kubernetes manifests.

``build_deployment("models:/churn/7", "deploy")`` writes::

    deploy/
      Dockerfile              python:<the model's Python>-slim, pinned requirements,
                              non-root user, HEALTHCHECK, `modelyard serve` as CMD
      .dockerignore
      requirements.txt        the package's pinned requirements
      model/                  the package (hash-verified), so the build context is
                              self-contained
      k8s/deployment.yaml     probes on the V2 health endpoints, Prometheus annotations
      k8s/service.yaml
      k8s/hpa.yaml            autoscaling/v2 on CPU
      k8s/inferenceservice.yaml   only with ``kserve=True``
      README.md               the docker / kubectl commands

Every file is rendered from one `_Spec`, so the port, the probe paths, the labels
and the image name cannot disagree between them. YAML comes from dicts through
``yaml.safe_dump``, never from string templates. The folder is written beside
``out`` and renamed into place, so a failure leaves nothing half-written. Nothing
here runs Docker or kubectl.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard._version import __version__
from modelyard.core.errors import InvalidParameter, ResourceAlreadyExists
from modelyard.models.loader import download_model
from modelyard.models.manifest import MANIFEST_FILE, Manifest
from modelyard.models.package import REQUIREMENTS_FILE, verify
from modelyard.registry.service import check_model_name
from modelyard.sdk.registry import model_registry

if TYPE_CHECKING:  # pragma: no cover
    from modelyard.registry.service import RegistryService
    from modelyard.tracking.service import TrackingService

__all__ = [
    "CONTAINER_UID",
    "LIVE_PATH",
    "METRICS_PATH",
    "MODEL_DIR_IN_IMAGE",
    "READY_PATH",
    "BuildResult",
    "build_deployment",
]

CONTAINER_UID = 10001  # numeric, so Kubernetes' runAsNonRoot can check it
MODEL_DIR_IN_IMAGE = "/opt/model"
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
METRICS_PATH = "/metrics"
SERVICE_PORT = 80
CPU_TARGET_PERCENT = 70
_HOME_IN_IMAGE = "/tmp/modelyard"  # writable: the root filesystem is read-only in k8s
# Knative's queue-proxy owns these in a KServe pod.
_KNATIVE_RESERVED_PORTS = frozenset({8012, 8013, 8022, 9090, 9091})
_PY_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
# Docker's reference grammar: [domain[:port]/]path-component(/path-component)*[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_IMAGE_RE = re.compile(
    rf"^(?:{_DOMAIN}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


@dataclass(frozen=True)
class BuildResult:
    """What `build_deployment` wrote.

    - ``out``: the folder; ``files``: every file in it (posix paths relative to it).
    - ``entries``: each top-level file or folder with one line on what it is.
    - ``image``: the image reference every file uses; ``name``: the served model
      name; ``version``: the registry version, else a digest of the manifest.
    - ``warnings``: things to fix before deploying (e.g. a pickled package).
    """

    out: Path
    image: str
    name: str
    version: str
    base_image: str
    port: int
    kserve: bool
    files: tuple[str, ...]
    entries: dict[str, str]
    warnings: tuple[str, ...] = ()

    def commands(self, folder: str | None = None) -> list[str]:
        """The next shell commands (comments included), with ``folder`` (default:
        ``out``) as the build folder."""
        return _commands(self.image, self.port, self.kserve, str(folder or self.out))

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "image": self.image,
            "name": self.name,
            "version": self.version,
            "base_image": self.base_image,
            "port": self.port,
            "kserve": self.kserve,
            "files": list(self.files),
            "entries": dict(self.entries),
            "warnings": list(self.warnings),
            "commands": self.commands(),
        }


def _commands(image: str, port: int, kserve: bool, folder: str) -> list[str]:
    where = shlex.quote(folder)
    k8s = "k8s" if folder == "." else f"{where}/k8s"
    ref = shlex.quote(image)
    lines = [
        f"docker build -t {ref} {where}",
        f"docker run --rm -p 127.0.0.1:{port}:{port} {ref}",
        f"docker push {ref}",
        f"kubectl apply -f {k8s}/deployment.yaml -f {k8s}/service.yaml -f {k8s}/hpa.yaml",
    ]
    if kserve:
        lines += [
            "# or, on a cluster with KServe, instead of the line above:",
            f"kubectl apply -f {k8s}/inferenceservice.yaml",
        ]
    return lines


@dataclass(frozen=True)
class _Spec:
    """The values every generated file is rendered from."""

    model_uri: str
    name: str  # served name: /v2/models/{name}
    app: str  # Kubernetes object name and app.kubernetes.io/name
    version: str
    image: str
    base_image: str
    python_source: str
    port: int
    workers: int
    min_replicas: int
    max_replicas: int
    kserve: bool
    requirements: list[str] = field(default_factory=list)


# -- the entry point ---------------------------------------------------------------
def build_deployment(
    model_uri: str,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    image: str | None = None,
    port: int = 8080,
    workers: int = 1,
    min_replicas: int = 1,
    max_replicas: int = 5,
    kserve: bool = False,
    force: bool = False,
    registry: RegistryService | None = None,
    tracking: TrackingService | None = None,
) -> BuildResult:
    """Write a Dockerfile and Kubernetes manifests serving the model at ``model_uri``
    into the folder ``out``.

    Example::

        result = build_deployment("models:/churn@production", "deploy", kserve=True)
        print(result.image, result.files)

    - ``model_uri``: a package path, ``runs:/<run_id>/model``, ``models:/<name>/<v>``,
      ``models:/<name>@<alias>`` or a storage URL (``s3://...``).
    - ``name``: the served model name (default: the registered name, else "model").
    - ``image``: ``NAME:TAG`` (default ``modelyard/<name>:<version>``).
    - ``port``: the container's serving port; ``workers``: server processes.
    - ``min_replicas`` / ``max_replicas``: the autoscaler's bounds.
    - ``kserve``: also write a KServe InferenceService.
    - ``force``: replace a non-empty ``out`` (everything in it is deleted).
    - ``registry`` / ``tracking``: the services resolving ``models:/`` and
      ``runs:/`` URIs (default: the ones the fluent API uses).
    """
    _check_numbers(port, workers, min_replicas, max_replicas, kserve)
    served = check_model_name(name) if name is not None else None
    chosen_image = _check_image(image) if image is not None else None
    out_path = Path(out).expanduser()
    _check_out(out_path, force, protected=())  # fail before any download

    package, reg_name, reg_version = _locate(model_uri, registry, tracking)
    manifest = verify(package)
    _check_out(out_path, force, protected=(package,))

    served = served or reg_name or "model"
    version = reg_version or _manifest_digest(package)
    py_version, py_source = _python_version(manifest)
    spec = _Spec(
        model_uri=model_uri.strip(),
        name=served,
        app=_k8s_name(served),
        version=version,
        image=chosen_image or _default_image(served, version),
        base_image=f"python:{py_version}-slim",
        python_source=py_source,
        port=port,
        workers=workers,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        kserve=kserve,
        requirements=_requirements(package, manifest),
    )
    files = _write_atomically(
        out_path,
        lambda tmp: _write_all(tmp, spec, package, manifest),
        # Again just before the swap: the folder may have been filled meanwhile.
        recheck=lambda: _check_out(out_path, force, protected=(package,)),
    )
    return BuildResult(
        out=out_path,
        image=spec.image,
        name=spec.name,
        version=spec.version,
        base_image=spec.base_image,
        port=port,
        kserve=kserve,
        files=tuple(files),
        entries=_entries(spec, manifest),
        warnings=tuple(_warnings(spec, manifest)),
    )


# -- validation --------------------------------------------------------------------
def _check_numbers(port: int, workers: int, lo: int, hi: int, kserve: bool) -> None:
    if not 1024 <= port <= 65535:
        raise InvalidParameter(
            f"port must be between 1024 and 65535, got {port}: the server runs as a non-root "
            "user, which cannot bind ports below 1024 (the Service still listens on 80)"
        )
    if kserve and port in _KNATIVE_RESERVED_PORTS:
        reserved = ", ".join(map(str, sorted(_KNATIVE_RESERVED_PORTS)))
        raise InvalidParameter(
            f"port {port} is reserved by Knative's queue-proxy in a KServe pod "
            f"({reserved}): pick another port, e.g. 8080"
        )
    if not 1 <= workers <= 64:
        raise InvalidParameter(f"workers must be between 1 and 64, got {workers}")
    if lo < 1 or hi < lo or hi > 1000:
        raise InvalidParameter(
            f"replicas must satisfy 1 <= min ({lo}) <= max ({hi}) <= 1000: "
            "e.g. --min-replicas 2 --max-replicas 10"
        )


def _check_image(image: str) -> str:
    ref = image.strip()
    last = ref.rsplit("/", 1)[-1]
    if len(ref) > 255 or not _IMAGE_RE.match(ref):
        raise InvalidParameter(
            f"image {image!r} is not a valid image reference: expected "
            "[registry/]repository:tag in lowercase, e.g. registry.example.com/team/churn:7"
        )
    if ":" not in last and "@" not in last:
        raise InvalidParameter(
            f"image {image!r} has no tag: give NAME:TAG (e.g. {ref}:1), so every deploy "
            "names exactly one build"
        )
    return ref


def _check_out(out: Path, force: bool, protected: tuple[Path, ...]) -> None:
    """Refuse a file, a non-empty folder without ``force``, and (with it) a folder
    whose removal would take the current directory, the home or the model along."""
    target = out.resolve()
    for package in protected:
        if target == package.resolve() or package.resolve() in target.parents:
            raise InvalidParameter(
                f"--out {str(out)!r} is inside the model package {str(package)!r}: "
                "writing there would change the package; pick a folder outside it"
            )
    if not (out.exists() or out.is_symlink()):
        return
    if not out.is_dir():
        raise InvalidParameter(f"--out {str(out)!r} is a file: give a new or empty folder")
    if not any(out.iterdir()):
        return
    if not force:
        raise ResourceAlreadyExists(
            f"--out {str(out)!r} is not empty: give a new or empty folder, or pass --force "
            "to replace it (everything in it is deleted)"
        )
    keep = [Path.cwd(), *protected]
    with contextlib.suppress(RuntimeError):  # no home directory known
        keep.append(Path.home())
    for path in keep:
        if target == path.resolve() or target in path.resolve().parents:
            raise InvalidParameter(
                f"refusing to replace {str(out)!r} with --force: it holds {str(path)!r}; "
                "give a dedicated folder such as ./deploy"
            )


# -- resolving the model -----------------------------------------------------------
def _locate(
    model_uri: str, registry: RegistryService | None, tracking: TrackingService | None
) -> tuple[Path, str | None, str | None]:
    """``(local package folder, registered name, registered version)``."""
    uri = model_uri.strip()
    if not uri:
        raise InvalidParameter(
            "MODEL_URI is empty: give a package path, runs:/<run_id>/model, "
            "models:/<name>/<version> or models:/<name>@<alias>"
        )
    if uri.lower().startswith("models:"):
        reg = registry or model_registry()
        mv = reg.resolve(uri)  # once: the alias may move, the package must match
        location = mv.source if mv.source.startswith("runs:/") else mv.artifact_uri
        return download_model(location, tracking=tracking or reg.tracking), mv.name, str(mv.version)
    return download_model(uri, tracking=tracking), None, None


def _manifest_digest(package: Path) -> str:
    """A version for unregistered packages: the manifest holds every file's hash."""
    return hashlib.sha256((package / MANIFEST_FILE).read_bytes()).hexdigest()[:12]


def _python_version(manifest: Manifest) -> tuple[str, str]:
    """``(X.Y.Z, where it came from)``: the model's recorded Python, else ours."""
    m = _PY_VERSION.match(manifest.python_version.strip())
    if m:
        version, source = m.group(0), "the model's recorded Python"
    else:
        version = "{}.{}.{}".format(*sys.version_info[:3])
        source = "the Python running modelyard build (the model records none)"
    if tuple(int(p) for p in version.split(".")[:2]) < (3, 11):
        raise InvalidParameter(
            f"the model was saved with Python {version}, but modelyard serve needs "
            "Python 3.11 or newer: save the model again under Python 3.11+"
        )
    return version, source


def _requirements(package: Path, manifest: Manifest) -> list[str]:
    """The package's requirements.txt lines, else the manifest's pins."""
    if REQUIREMENTS_FILE in manifest.files:
        text = (package / REQUIREMENTS_FILE).read_text(encoding="utf-8")
        return [line.strip() for line in text.splitlines() if line.strip()]
    return list(manifest.requirements)


# -- names -------------------------------------------------------------------------
def _k8s_name(name: str) -> str:
    """A DNS-1035 label (Service names need one): lowercase, '-', starts with a letter."""
    label = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
    if not label[0].isalpha():
        label = f"model-{label}"
    return label[:63].rstrip("-")


def _default_image(name: str, version: str) -> str:
    repo = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    repo = re.sub(r"[._-]{2,}", "-", repo).strip("._-") or "model"
    tag = re.sub(r"[^\w.-]+", "-", version).lstrip(".-")[:128] or "1"
    return _check_image(f"modelyard/{repo}:{tag}")


def _label_value(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


# -- writing -----------------------------------------------------------------------
def _write_atomically(
    out: Path, write: Callable[[Path], None], recheck: Callable[[], None]
) -> list[str]:
    """Write into a sibling folder, then swap it in; on failure remove it (and any
    parent folders this call created)."""
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.build-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        recheck()
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return files


def _swap(tmp: Path, out: Path) -> None:
    if not (out.exists() or out.is_symlink()):
        os.rename(tmp, out)
        return
    trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out, trash)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(trash, out)
        raise
    if trash.is_symlink():
        trash.unlink()
    else:
        shutil.rmtree(trash, ignore_errors=True)


def _write_all(tmp: Path, spec: _Spec, package: Path, manifest: Manifest) -> None:
    model = tmp / "model"
    for rel in [MANIFEST_FILE, *manifest.files]:
        dest = model / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package / rel, dest)
    verify(model)  # the copy is the package that was verified, byte for byte
    (tmp / "requirements.txt").write_text(
        "".join(f"{line}\n" for line in spec.requirements), encoding="utf-8"
    )
    (tmp / "Dockerfile").write_text(_render_dockerfile(spec), encoding="utf-8")
    (tmp / ".dockerignore").write_text(_DOCKERIGNORE, encoding="utf-8")
    k8s = tmp / "k8s"
    k8s.mkdir()
    from modelyard.serving.build_k8s import manifests, to_yaml

    for filename, document in manifests(spec).items():
        (k8s / filename).write_text(to_yaml(spec, filename, document), encoding="utf-8")
    (tmp / "README.md").write_text(_readme(spec), encoding="utf-8")


_DOCKERIGNORE = """\
# The image needs requirements.txt and model/ only (the Dockerfile is always sent).
*
!requirements.txt
!model
"""


# -- the Dockerfile ----------------------------------------------------------------
def _serve_command(spec: _Spec) -> list[str]:
    return [
        "modelyard",
        "serve",
        MODEL_DIR_IN_IMAGE,
        "--host",
        "0.0.0.0",
        "--port",
        str(spec.port),
        "--workers",
        str(spec.workers),
        "--name",
        spec.name,
    ]


def _healthcheck_command(spec: _Spec) -> list[str]:
    url = f"http://127.0.0.1:{spec.port}{READY_PATH}"
    code = (
        "import sys, urllib.request as u; "
        f"sys.exit(0 if u.urlopen('{url}', timeout=4).status == 200 else 1)"
    )
    return ["python", "-c", code]


def _q(value: str) -> str:
    """A double-quoted Dockerfile string (JSON quoting is what the exec form parses)."""
    return json.dumps(value, ensure_ascii=False)


def _render_dockerfile(spec: _Spec) -> str:
    """The Dockerfile text for ``spec`` (exec-form CMD and HEALTHCHECK, JSON-quoted)."""
    uid = CONTAINER_UID
    uri = _one_line(spec.model_uri)
    return f"""\
# syntax=docker/dockerfile:1
# Generated by `modelyard build` (modelyard {__version__}) from {uri}:
# model {_one_line(spec.name)}, version {spec.version}. Build from this folder:
#   docker build -t {spec.image} .

# Pinned to an exact patch release: {spec.python_source}.
FROM {spec.base_image}

ARG MODELYARD_SPEC=modelyard=={__version__}
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_ROOT_USER_ACTION=ignore \\
    MODELYARD_HOME={_HOME_IN_IMAGE}
LABEL org.opencontainers.image.title={_q(spec.name)} \\
      org.opencontainers.image.version={_q(spec.version)} \\
      org.opencontainers.image.description={_q(f"modelyard serve {spec.model_uri}")}

# The model's pinned requirements and modelyard at the version that wrote this file,
# in a layer of their own: a new model version with the same pins reuses it.
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt "${{MODELYARD_SPEC}}" && rm /tmp/requirements.txt

RUN groupadd --system --gid {uid} modelyard \\
 && useradd --system --uid {uid} --gid {uid} --no-create-home \\
    --home-dir /nonexistent --shell /usr/sbin/nologin modelyard

# Owned by root, readable by all: the server cannot change the model it serves.
COPY model/ {MODEL_DIR_IN_IMAGE}/
WORKDIR /opt
USER {uid}:{uid}
EXPOSE {spec.port}

# Slim images have no curl: the image's own Python asks the readiness endpoint.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \\
    CMD {json.dumps(_healthcheck_command(spec))}

# Inside a container 0.0.0.0 is right: the container's network namespace is the
# boundary, and Docker/Kubernetes decide which port is published and to whom.
CMD {json.dumps(_serve_command(spec), ensure_ascii=False)}
"""


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text)


# -- README and summary ------------------------------------------------------------
def _readme(spec: _Spec) -> str:
    build, run, push, apply, *kserve = _commands(spec.image, spec.port, spec.kserve, ".")
    forward = f"kubectl port-forward service/{spec.app} {spec.port}:{SERVICE_PORT}"
    deploy_block = "\n".join([push, apply, forward, *kserve])
    return f"""\
# {_one_line(spec.name)} (version {spec.version})

Generated by `modelyard build` (modelyard {__version__}) from `{_one_line(spec.model_uri)}`.
The image serves the model with `modelyard serve` on port {spec.port}: the Open Inference
Protocol under `/v2` (`{READY_PATH}`, `{LIVE_PATH}`), a JSON `/predict`, and
Prometheus metrics on `{METRICS_PATH}`.

## Build and try the image

From this folder:

```sh
{build}
{run}
curl http://127.0.0.1:{spec.port}{READY_PATH}
```

## Deploy to Kubernetes

Push the image where the cluster can pull it (to use another registry, run
`modelyard build` again with `--image registry.example.com/team/{spec.app}:{spec.version}`):

```sh
{push}
{deploy_block}
```

## What is here

- `Dockerfile`: `{spec.base_image}`, the model's pinned requirements
  (`requirements.txt`), modelyard {__version__} (another source with
  `--build-arg MODELYARD_SPEC=<pip requirement or URL>`), non-root user
  {CONTAINER_UID}, a HEALTHCHECK on `{READY_PATH}`.
- `model/`: the model package, copied and hash-verified.
- `k8s/`: Deployment, Service and HorizontalPodAutoscaler ({spec.min_replicas} to
  {spec.max_replicas} replicas on CPU). Resource requests and limits assume
  {spec.workers} worker(s): adjust them to the model's size.
"""


def _entries(spec: _Spec, manifest: Manifest) -> dict[str, str]:
    entries = {
        "Dockerfile": f"{spec.base_image}, non-root uid {CONTAINER_UID}, HEALTHCHECK, "
        f"port {spec.port}",
        ".dockerignore": "keeps the build context to requirements.txt and model/",
        "requirements.txt": f"{len(spec.requirements)} pinned requirement(s) of the model",
        "model/": f"the {manifest.flavor} package, {len(manifest.files) + 1} file(s), "
        "hash-verified",
        "k8s/deployment.yaml": f"Deployment: probes on {READY_PATH} and {LIVE_PATH}",
        "k8s/service.yaml": f"Service: port {SERVICE_PORT} -> {spec.port}",
        "k8s/hpa.yaml": f"HorizontalPodAutoscaler: {spec.min_replicas}-{spec.max_replicas} "
        "replicas on CPU",
    }
    if spec.kserve:
        entries["k8s/inferenceservice.yaml"] = "KServe InferenceService (protocol v2)"
    entries["README.md"] = "the docker and kubectl commands"
    return entries


def _warnings(spec: _Spec, manifest: Manifest) -> list[str]:
    out = []
    if manifest.pickle:
        out.append(
            "the package is stored with pickle: `modelyard serve` loads it only with "
            "--allow-pickle; add that to the Dockerfile's CMD if you trust the model"
        )
    loose = [r for r in spec.requirements if not r.startswith("#") and "==" not in r]
    if loose:
        out.append(
            f"requirement(s) not pinned to one version: {', '.join(loose)}; the image may "
            "get other versions than the model was saved with"
        )
    return out
