"""One typed settings object, built at the edge (CLI or app factory) and passed down.

Nothing in Flotilla reads the environment at import time: :meth:`Settings.from_env` is called
explicitly by the CLI and the app factory.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from flotilla.errors import ConfigError

__all__ = ["Settings"]

_PREFIX = "FLOTILLA_"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where a Flotilla installation keeps its state.

    Args:
        home: the home folder (default ``./.flotilla``; env ``FLOTILLA_HOME``).
        db_url: SQLAlchemy URL of the registry database (default a SQLite file in the home;
            env ``FLOTILLA_DB_URL``, e.g. ``postgresql+psycopg://user@host/db``).
        artifact_root: where artifacts are stored (default ``<home>/artifacts``; env
            ``FLOTILLA_ARTIFACT_ROOT``).
        records_root: where prediction and outcome records are written (default
            ``<home>/records``; env ``FLOTILLA_RECORDS_ROOT``).
        actor: who is acting, written to the audit trail (env ``FLOTILLA_ACTOR``, else the
            login name).

    Example:
        >>> s = Settings.from_env({"FLOTILLA_HOME": "/tmp/fl"})
        >>> str(s.db_url)
        'sqlite:////tmp/fl/registry.db'
    """

    home: Path = field(default_factory=lambda: Path(".flotilla"))
    db_url: str = ""
    artifact_root: Path | None = None
    records_root: Path | None = None
    actor: str = "unknown"

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().absolute()
        object.__setattr__(self, "home", home)
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{home / 'registry.db'}")
        elif "://" not in self.db_url:
            raise ConfigError(
                f"The database URL must look like 'sqlite:///path.db' or "
                f"'postgresql+psycopg://user@host:5432/db'. Got {self.db_url!r} instead."
            )
        if self.artifact_root is None:
            object.__setattr__(self, "artifact_root", home / "artifacts")
        else:
            object.__setattr__(
                self, "artifact_root", Path(self.artifact_root).expanduser().absolute()
            )
        if self.records_root is None:
            object.__setattr__(self, "records_root", home / "records")
        else:
            records = Path(self.records_root).expanduser().absolute()
            object.__setattr__(self, "records_root", records)

    @property
    def artifacts(self) -> Path:
        """The artifact root as a path (never None after construction)."""
        assert self.artifact_root is not None  # set in __post_init__
        return self.artifact_root

    @property
    def records(self) -> Path:
        """The records root as a path (never None after construction)."""
        assert self.records_root is not None  # set in __post_init__
        return self.records_root

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``FLOTILLA_*`` environment variables, then apply overrides.

        Args:
            environ: the environment to read (default ``os.environ``).
            **overrides: values that win over the environment (``None`` values are ignored).
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if env.get(_PREFIX + "HOME"):
            values["home"] = Path(env[_PREFIX + "HOME"])
        if env.get(_PREFIX + "DB_URL"):
            values["db_url"] = env[_PREFIX + "DB_URL"]
        if env.get(_PREFIX + "ARTIFACT_ROOT"):
            values["artifact_root"] = Path(env[_PREFIX + "ARTIFACT_ROOT"])
        if env.get(_PREFIX + "RECORDS_ROOT"):
            values["records_root"] = Path(env[_PREFIX + "RECORDS_ROOT"])
        values["actor"] = env.get(_PREFIX + "ACTOR") or env.get("USER") or _login_name()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
