"""Settings read from `MODELYARD_*` environment variables and `modelyard.toml`.

Everything that talks to the outside (database, artifact store, tracking server)
is located by these values; nothing else in modelyard reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Where modelyard keeps its metadata and bytes.

    Example::

        Settings()                                    # ./.modelyard, SQLite, local folder
        Settings(db_url="postgresql+psycopg://127.0.0.1/my", artifacts="s3://bucket/my")
        Settings(tracking_uri="http://127.0.0.1:5000")  # talk to a server instead

    - ``home``: the folder for the embedded default (``./.modelyard``).
    - ``db_url``: a SQLAlchemy URL; unset means ``sqlite:///<home>/modelyard.db``.
    - ``artifacts``: any fsspec URL or local path; unset means ``<home>/artifacts``.
    - ``tracking_uri``: unset for the local store, ``http(s)://`` for a server.
    - ``data_remote``: where ``modelyard data push/pull`` and the dataset registry
      keep data (any fsspec URL; ``s3://bucket/prefix``); unset means local only.
    - ``data_link``: how data enters and leaves the cache, in order of preference
      (``reflink,hardlink,copy``; hardlinked files are read-only).
    """

    model_config = SettingsConfigDict(
        env_prefix="MODELYARD_", toml_file="modelyard.toml", extra="ignore"
    )

    home: Path = Field(default=Path(".modelyard"))
    db_url: str | None = None
    artifacts: str | None = None
    tracking_uri: str | None = None
    data_remote: str | None = None
    data_link: str = "reflink,hardlink,copy"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import TomlConfigSettingsSource

        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.home / 'modelyard.db').resolve()}"

    @property
    def resolved_artifacts(self) -> str:
        if self.artifacts:
            return self.artifacts
        return str((self.home / "artifacts").resolve())

    @property
    def data_cache(self) -> Path:
        return (self.home / "data" / "cache").resolve()

    @property
    def is_remote(self) -> bool:
        return bool(self.tracking_uri) and self.tracking_uri.startswith(("http://", "https://"))


def load_settings(**overrides: object) -> Settings:
    """Read the settings now (environment and ``modelyard.toml``), with overrides."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
