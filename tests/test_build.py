"""``modelyard build``: the Dockerfile and the Kubernetes manifests it writes.

No Docker engine or cluster runs here, so the files are checked the way the tools
would read them: every YAML file through ``yaml.safe_load_all``, the Dockerfile
through a small parser (known instructions, line continuations, exec-form JSON),
then for consistency: one port, one image, one set of labels everywhere. The
HEALTHCHECK command itself is run against a local HTTP server.
"""

from __future__ import annotations

import http.server
import json
import platform
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import modelyard as my
from modelyard.cli.main import app
from modelyard.core.errors import (
    ArtifactIntegrityError,
    InvalidParameter,
    ResourceAlreadyExists,
    ResourceNotFound,
)
from modelyard.models.manifest import MANIFEST_FILE
from modelyard.serving import build as build_module
from modelyard.serving.build import build_deployment

DOCKER_INSTRUCTIONS = {
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


# -- a tiny Dockerfile reader --------------------------------------------------------
def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """``[(INSTRUCTION, arguments)]``: comments and blank lines dropped, ``\\``
    continuations joined; fails on an unknown instruction or a dangling continuation."""
    instructions: list[tuple[str, str]] = []
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        piece = line[:-1].rstrip() if line.endswith("\\") else line
        current = piece if current is None else f"{current} {piece}"
        if not line.endswith("\\"):
            keyword, _, args = current.partition(" ")
            assert keyword in DOCKER_INSTRUCTIONS, f"unknown instruction {keyword!r}"
            instructions.append((keyword, args.strip()))
            current = None
    assert current is None, "the Dockerfile ends inside a line continuation"
    return instructions


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def dockerfile_facts(text: str) -> dict[str, Any]:
    """What the consistency checks need, asserting the Dockerfile's own rules on the way."""
    instructions = parse_dockerfile(text)
    keywords = [k for k, _ in instructions]
    assert [k for k in keywords if k != "ARG"][0] == "FROM"
    assert keywords.count("FROM") == 1
    base = dict(instructions)["FROM"]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim", base), base  # an exact patch, never latest
    assert "latest" not in base

    users = [a for k, a in instructions if k == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    # Nothing runs as root after the switch.
    assert "RUN" not in keywords[keywords.index("USER") :]

    (expose,) = [a for k, a in instructions if k == "EXPOSE"]
    port = int(expose)

    (health,) = [a for k, a in instructions if k == "HEALTHCHECK"]
    options, _, exec_form = health.partition(" CMD ")
    assert all(o.startswith("--") for o in options.split())
    health_cmd = json.loads(exec_form)
    assert health_cmd[:2] == ["python", "-c"]
    assert f"http://127.0.0.1:{port}/v2/health/ready" in health_cmd[2]

    (cmd_args,) = [a for k, a in instructions if k in ("CMD", "ENTRYPOINT")]
    cmd = json.loads(cmd_args)  # exec form
    assert cmd[:2] == ["modelyard", "serve"]
    copies = [a.split() for k, a in instructions if k == "COPY"]
    assert ["model/", f"{cmd[2]}/"] in copies  # serves the folder the model was copied to
    assert ["requirements.txt", "/tmp/requirements.txt"] in copies
    assert any(k == "RUN" and "pip install -r /tmp/requirements.txt" in a for k, a in instructions)
    return {
        "base": base,
        "uid": int(uid),
        "port": port,
        "cmd": cmd,
        "health_cmd": health_cmd,
        "labels": dict(instructions).get("LABEL", ""),
    }


def load_yaml(path: Path) -> dict[str, Any]:
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    assert len(docs) == 1 and isinstance(docs[0], dict), path
    assert {"apiVersion", "kind", "metadata", "spec"} <= docs[0].keys()
    return docs[0]


def check_consistency(out: Path, kserve: bool) -> dict[str, Any]:
    """Assert one port, one image, one uid and one label set across every file."""
    docker = dockerfile_facts((out / "Dockerfile").read_text(encoding="utf-8"))
    port, uid = docker["port"], docker["uid"]
    assert int(option(docker["cmd"], "--port")) == port
    assert option(docker["cmd"], "--host") == "0.0.0.0"

    dep = load_yaml(out / "k8s" / "deployment.yaml")
    svc = load_yaml(out / "k8s" / "service.yaml")
    hpa = load_yaml(out / "k8s" / "hpa.yaml")
    assert (dep["kind"], svc["kind"], hpa["kind"]) == (
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    )
    assert hpa["apiVersion"] == "autoscaling/v2"
    pod = dep["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == [port]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": port}
    assert {"requests", "limits"} <= container["resources"].keys()
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["runAsUser"] == uid
    assert pod["spec"]["securityContext"]["runAsUser"] == uid
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }

    name = dep["metadata"]["name"]
    assert DNS_1035.match(name), name
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"] == selector
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    app_label = selector["app.kubernetes.io/name"]
    for doc in (dep, svc, hpa):
        assert doc["metadata"]["name"] == name
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == app_label

    image = container["image"]
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert f"docker build -t {image} ." in readme
    assert "kubectl apply -f k8s/deployment.yaml -f k8s/service.yaml -f k8s/hpa.yaml" in readme

    isvc_path = out / "k8s" / "inferenceservice.yaml"
    assert isvc_path.exists() == kserve
    if kserve:
        isvc = load_yaml(isvc_path)
        assert (isvc["apiVersion"], isvc["kind"]) == (
            "serving.kserve.io/v1beta1",
            "InferenceService",
        )
        assert isvc["metadata"]["labels"]["app.kubernetes.io/name"] == app_label
        (kc,) = isvc["spec"]["predictor"]["containers"]
        assert kc["image"] == image
        assert [p["containerPort"] for p in kc["ports"]] == [port]
        assert {"name": "PROTOCOL", "value": "v2"} in kc["env"]
        assert kc["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
        assert kc["securityContext"]["runAsUser"] == uid
        assert "kubectl apply -f k8s/inferenceservice.yaml" in readme
    return {"image": image, "port": port, "name": name, "docker": docker, "dep": dep, "hpa": hpa}


# -- fixtures ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier() -> tuple[LogisticRegression, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3)
    return LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)), X


@pytest.fixture
def package(tmp_path: Path, classifier) -> Path:
    model, X = classifier
    my.models.save(model, tmp_path / "pkg", input_example=X[:2])
    return tmp_path / "pkg"


@pytest.fixture
def local_sdk(db_url: str, tmp_path: Path) -> Iterator[None]:
    my.configure(home=tmp_path / "home", db_url=db_url, artifacts=str(tmp_path / "art"))
    yield
    while my.active_run():
        my.end_run()


def leftovers(folder: Path) -> list[str]:
    """Temporary build or trash folders left beside the output."""
    return sorted(p.name for p in folder.iterdir() if ".build-" in p.name or ".old-" in p.name)


# -- what is written -----------------------------------------------------------------
def test_files_are_valid_and_consistent(package: Path, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    result = build_deployment(
        str(package),
        out,
        image="registry.example.com/team/churn:2024-06",
        port=9000,
        workers=2,
        min_replicas=2,
        max_replicas=7,
        kserve=True,
    )
    facts = check_consistency(out, kserve=True)
    assert facts["image"] == result.image == "registry.example.com/team/churn:2024-06"
    assert facts["port"] == result.port == 9000
    assert option(facts["docker"]["cmd"], "--workers") == "2"
    assert option(facts["docker"]["cmd"], "--name") == "model" == result.name
    assert (facts["hpa"]["spec"]["minReplicas"], facts["hpa"]["spec"]["maxReplicas"]) == (2, 7)

    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert list(result.files) == written
    assert {
        "Dockerfile",
        ".dockerignore",
        "README.md",
        "requirements.txt",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/hpa.yaml",
        "k8s/inferenceservice.yaml",
    } <= set(written)
    # The package is copied whole, byte for byte, and still verifies.
    for rel in (p.relative_to(package) for p in package.rglob("*") if p.is_file()):
        assert (out / "model" / rel).read_bytes() == (package / rel).read_bytes()
    my.models.verify(out / "model")
    # The model's pinned requirements are what the image installs.
    assert (out / "requirements.txt").read_text() == (package / "requirements.txt").read_text()
    pins = (out / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("scikit-learn==") for line in pins)
    ignore = (out / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :] == ["*", "!requirements.txt", "!model"]
    assert leftovers(tmp_path) == []


def test_base_image_follows_the_models_python(package: Path, tmp_path: Path) -> None:
    first = build_deployment(str(package), tmp_path / "a")
    # my.models.save records the running Python: the image pins the same patch release.
    assert first.base_image == f"python:{platform.python_version()}-slim"
    check_consistency(tmp_path / "a", kserve=False)
    # An unregistered package's tag is a digest of its manifest: stable, and per package.
    assert re.fullmatch(r"modelyard/model:[0-9a-f]{12}", first.image)
    assert build_deployment(str(package), tmp_path / "b").image == first.image

    manifest_path = package / MANIFEST_FILE
    data = yaml.safe_load(manifest_path.read_text())
    data["python_version"] = "3.12.4"
    manifest_path.write_text(yaml.safe_dump(data))  # the manifest is not in its own hashes
    other = build_deployment(str(package), tmp_path / "c", name="churn")
    assert dockerfile_facts((tmp_path / "c" / "Dockerfile").read_text())["base"] == (
        "python:3.12.4-slim"
    )
    assert other.image != first.image and other.image.startswith("modelyard/churn:")

    data["python_version"] = ""
    manifest_path.write_text(yaml.safe_dump(data))
    running = "{}.{}.{}".format(*sys.version_info[:3])
    assert build_deployment(str(package), tmp_path / "d").base_image == f"python:{running}-slim"

    data["python_version"] = "3.10.12"
    manifest_path.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidParameter, match="Python 3.11 or newer"):
        build_deployment(str(package), tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_models_uri_puts_name_and_version_in_the_image(
    local_sdk: None, classifier, tmp_path: Path
) -> None:
    model, X = classifier
    for _ in range(2):
        with my.start_run(experiment="churn"):
            my.log_model(model, "model", input_example=X[:2], registered_model_name="Churn Model")
    my.set_alias("Churn Model", "champion", 1)

    result = build_deployment("models:/Churn Model@champion", tmp_path / "deploy", kserve=True)
    facts = check_consistency(tmp_path / "deploy", kserve=True)
    assert (result.name, result.version) == ("Churn Model", "1")
    assert facts["image"] == result.image == "modelyard/churn-model:1"
    assert facts["name"] == "churn-model"  # a valid Kubernetes name
    assert option(facts["docker"]["cmd"], "--name") == "Churn Model"  # served as registered
    assert facts["dep"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1"
    assert 'org.opencontainers.image.version="1"' in facts["docker"]["labels"]

    latest = build_deployment("models:/Churn Model/2", tmp_path / "v2")
    assert latest.image == "modelyard/churn-model:2"

    with pytest.raises(ResourceNotFound):
        build_deployment("models:/nope/1", tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_healthcheck_command_asks_readiness(package: Path, tmp_path: Path) -> None:
    """Run the Dockerfile's HEALTHCHECK against a local server: 200 passes, 503 fails."""
    status = {"code": 200}
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            paths.append(self.path)
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if port < 1024:  # pragma: no cover - ephemeral ports are above 1024
        pytest.skip("no unprivileged free port")
    build_deployment(str(package), tmp_path / "deploy", port=port)
    cmd = dockerfile_facts((tmp_path / "deploy" / "Dockerfile").read_text())["health_cmd"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ok = subprocess.run([sys.executable, *cmd[1:]], capture_output=True, timeout=30)
        status["code"] = 503
        bad = subprocess.run([sys.executable, *cmd[1:]], capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode != 0
    assert paths == ["/v2/health/ready", "/v2/health/ready"]


# -- refusals --------------------------------------------------------------------------
def test_uri_without_a_model_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "nested" / "deploy"
    with pytest.raises(ResourceNotFound, match="No model package"):
        build_deployment(str(tmp_path / "empty"), out)
    with pytest.raises(InvalidParameter, match="MODEL_URI is empty"):
        build_deployment("  ", out)
    assert not (tmp_path / "nested").exists()


def test_failure_while_writing_leaves_nothing_behind(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: Any) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(build_module, "_readme", broken)
    with pytest.raises(OSError, match="disk full"):
        build_deployment(str(package), tmp_path / "new" / "deploy")
    assert not (tmp_path / "new").exists()  # the parent it created is gone too

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "old.txt").write_text("previous build")
    with pytest.raises(OSError, match="disk full"):
        build_deployment(str(package), existing, force=True)
    assert [p.name for p in existing.iterdir()] == ["old.txt"]
    assert leftovers(tmp_path) == []


def test_tampered_package_is_refused(package: Path, tmp_path: Path) -> None:
    (package / "model.skops").write_bytes(b"swapped weights")
    with pytest.raises(ArtifactIntegrityError, match="model.skops"):
        build_deployment(str(package), tmp_path / "deploy")
    assert not (tmp_path / "deploy").exists()


def test_non_empty_out_needs_force(package: Path, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ResourceAlreadyExists, match="--force"):
        build_deployment(str(package), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"

    build_deployment(str(package), out, force=True)
    assert not (out / "notes.txt").exists() and (out / "Dockerfile").is_file()
    build_deployment(str(package), out, force=True, port=8081)  # a rebuild replaces it
    assert check_consistency(out, kserve=False)["port"] == 8081
    assert leftovers(tmp_path) == []

    empty = tmp_path / "empty"
    empty.mkdir()
    build_deployment(str(package), empty)  # an empty folder needs no --force
    assert (empty / "Dockerfile").is_file()

    # --force never deletes the current directory, or writes into the package.
    (tmp_path / "precious.txt").write_text("data")
    with pytest.raises(InvalidParameter, match="refusing to replace"):
        build_deployment(str(package), ".", force=True)
    assert (tmp_path / "precious.txt").read_text() == "data"
    with pytest.raises(InvalidParameter, match="inside the model package"):
        build_deployment(str(package), package / "deploy")
    assert not (package / "deploy").exists()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InvalidParameter, match="is a file"):
        build_deployment(str(package), tmp_path / "file.txt")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 80}, "between 1024 and 65535"),
        ({"port": 70000}, "between 1024 and 65535"),
        ({"port": 8012, "kserve": True}, "reserved by Knative"),
        ({"workers": 0}, "workers must be"),
        ({"min_replicas": 3, "max_replicas": 2}, "replicas must satisfy"),
        ({"min_replicas": 0}, "replicas must satisfy"),
        ({"image": "Churn:1"}, "not a valid image reference"),
        ({"image": "team/churn"}, "has no tag"),
        ({"image": "localhost:5000/churn"}, "has no tag"),
        ({"name": "-churn"}, "Invalid model name"),
    ],
)
def test_bad_options_are_refused(package: Path, tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(InvalidParameter, match=message):
        build_deployment(str(package), tmp_path / "deploy", **kwargs)
    assert not (tmp_path / "deploy").exists()


# -- the command ---------------------------------------------------------------------
def test_cli_build(package: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COLUMNS": "250"}
    args = ["build", str(package), "--out", "deploy", "--kserve", "--name", "churn"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    for text in ("k8s/deployment.yaml", "k8s/inferenceservice.yaml", "README.md", "Next:"):
        assert text in result.stdout
    facts = check_consistency(tmp_path / "deploy", kserve=True)
    assert f"docker build -t {facts['image']} deploy" in result.stdout
    assert "kubectl apply -f deploy/k8s/deployment.yaml" in result.stdout

    again = runner.invoke(app, args, env=env)
    assert again.exit_code == 1
    assert again.stderr.startswith("error: ") and "--force" in again.stderr
    assert "Traceback" not in again.stdout + again.stderr

    forced = runner.invoke(app, [*args, "--force", "--port", "8181", "--json"], env=env)
    assert forced.exit_code == 0, forced.stderr
    document = json.loads(forced.stdout)
    assert document["port"] == 8181 and document["image"] == facts["image"]
    assert check_consistency(tmp_path / "deploy", kserve=True)["port"] == 8181

    missing = runner.invoke(app, ["build", str(tmp_path / "nothing"), "--out", "x"], env=env)
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ")
    assert not (tmp_path / "x").exists()


def test_copied_package_excludes_store_sidecars(package: Path, tmp_path: Path) -> None:
    """A package read straight from a local artifact folder has the store's sidecars;
    they are not part of the model and stay out of the image."""
    (package / ".model.skops.my-meta").write_text("{}")
    build_deployment(str(package), tmp_path / "deploy")
    assert not (tmp_path / "deploy" / "model" / ".model.skops.my-meta").exists()
