"""Settings come from MODELYARD_* variables, then modelyard.toml, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.core.config import load_settings
from modelyard.core.errors import InvalidParameter
from modelyard.tracking.backends import open_tracking


def test_defaults_live_under_dot_modelyard(tmp_path):
    s = load_settings()
    assert s.home == Path(".modelyard")
    assert s.resolved_db_url == f"sqlite:///{tmp_path / '.modelyard' / 'modelyard.db'}"
    assert s.resolved_artifacts == str(tmp_path / ".modelyard" / "artifacts")
    assert not s.is_remote


def test_environment_beats_toml_file(tmp_path, monkeypatch):
    (tmp_path / "modelyard.toml").write_text(
        'home = "from-toml"\nartifacts = "s3://bucket/from-toml"\n'
    )
    s = load_settings()
    assert s.home == Path("from-toml") and s.artifacts == "s3://bucket/from-toml"
    monkeypatch.setenv("MODELYARD_ARTIFACTS", "s3://bucket/from-env")
    monkeypatch.setenv("MODELYARD_TRACKING_URI", "http://127.0.0.1:5000")
    s = load_settings()
    assert s.artifacts == "s3://bucket/from-env"
    assert s.home == Path("from-toml")
    assert s.is_remote


def test_explicit_overrides_win(monkeypatch):
    monkeypatch.setenv("MODELYARD_DB_URL", "sqlite:///env.db")
    assert load_settings(db_url="sqlite:///arg.db").resolved_db_url == "sqlite:///arg.db"


def test_unknown_tracking_scheme_is_a_clear_error():
    with pytest.raises(InvalidParameter, match="Unsupported MODELYARD_TRACKING_URI 'ftp://x'"):
        open_tracking(load_settings(tracking_uri="ftp://x"))
