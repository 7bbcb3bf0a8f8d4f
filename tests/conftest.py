"""Fixtures shared by the whole suite.

The metadata-store backend is chosen by ``MODELYARD_TEST_BACKEND``:

- ``sqlite`` (default): ``db_url`` is a fresh SQLite file per test;
- ``postgres``: ``db_url`` is a throwaway PostgreSQL database per session (per
  xdist worker), emptied after every test.

Every test that requests ``db_url`` (directly or through another fixture) carries the
``backend`` marker, so ``MODELYARD_TEST_BACKEND=postgres pytest -m backend`` reruns
exactly the store-dependent tests on PostgreSQL (``make test`` does both passes).

Fixture contract:

=================  ========  =====================================================
``pg_url``         session   ``postgresql+psycopg://postgres@127.0.0.1:<port>/<db>``
``db_url``         function  SQLite file in ``tmp_path``, or the emptied ``pg_url``
``s3``             session   ``{"endpoint_url", "bucket", "region"}`` of a moto server
``s3_artifacts``   function  ``s3://<bucket>/<unique per-test prefix>``
``home``           function  ``tmp_path / "home"`` (not created)
``settings_env``   function  sets ``MODELYARD_HOME``, ``MODELYARD_DB_URL``,
                             ``MODELYARD_ARTIFACTS``; unsets ``MODELYARD_TRACKING_URI``
=================  ========  =====================================================

Autouse: each test runs with ``cwd = tmp_path`` and without any ``MODELYARD_*``
variable inherited from the shell (``MODELYARD_TEST_*`` excepted).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.postgres import PostgresUnavailable, provide_database, reset_database
from infra.s3 import moto_s3

BACKENDS = ("sqlite", "postgres")


def selected_backend() -> str:
    """The store backend of this run: ``MODELYARD_TEST_BACKEND``, ``sqlite`` if unset."""
    return os.environ.get("MODELYARD_TEST_BACKEND", "sqlite").strip().lower() or "sqlite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backend: uses the metadata store (the db_url fixture); applied automatically, "
        "rerun on PostgreSQL with MODELYARD_TEST_BACKEND=postgres -m backend",
    )
    if selected_backend() not in BACKENDS:
        raise pytest.UsageError(
            f"MODELYARD_TEST_BACKEND must be one of {', '.join(BACKENDS)}, "
            f"got {os.environ['MODELYARD_TEST_BACKEND']!r}"
        )


def pytest_report_header(config: pytest.Config) -> str:
    return f"modelyard store backend: {selected_backend()}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the marker must be on the items before `-m backend` selects them.
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.backend)


@pytest.fixture(autouse=True)
def _isolated_cwd_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in tmp_path, so ``./.modelyard`` never lands in the repo, with a clean env."""
    for key in list(os.environ):
        if key.startswith("MODELYARD_") and not key.startswith("MODELYARD_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


# --- metadata store ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this session (one per xdist worker)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(provide_database(worker))
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    with stack:
        yield url


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The metadata-store URL of this test, on the backend MODELYARD_TEST_BACKEND selects."""
    if selected_backend() == "postgres":
        url = request.getfixturevalue("pg_url")
        yield url
        reset_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'modelyard.db'}"


# --- artifacts --------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3() -> Iterator[dict[str, str]]:
    """A moto S3 server with one bucket; AWS_* and FSSPEC_S3_ENDPOINT_URL point at it."""
    with moto_s3() as info:
        yield info


@pytest.fixture
def s3_artifacts(s3: dict[str, str], request: pytest.FixtureRequest) -> str:
    """An S3 URL no other test uses: ``s3://<bucket>/<test name>-<8 hex>``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-")[-60:]
    return f"s3://{s3['bucket']}/{name}-{uuid.uuid4().hex[:8]}"


# --- settings ---------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """``tmp_path / "home"``: MODELYARD_HOME for this test; modelyard creates it."""
    return tmp_path / "home"


@pytest.fixture
def settings_env(
    home: Path, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point modelyard's settings at this test's home, store and artifacts folder."""
    env = {
        "MODELYARD_HOME": str(home),
        "MODELYARD_DB_URL": db_url,
        "MODELYARD_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MODELYARD_TRACKING_URI", raising=False)
    return env
