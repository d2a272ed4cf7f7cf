from __future__ import annotations

from pathlib import Path

import pytest

from flotilla.errors import ConfigError, FlotillaError, ModelNotFoundError
from flotilla.settings import Settings


def test_defaults_live_in_the_home(tmp_path: Path) -> None:
    s = Settings.from_env({"FLOTILLA_HOME": str(tmp_path / "h")})
    assert s.home == tmp_path / "h"
    assert s.db_url == f"sqlite:///{tmp_path / 'h' / 'registry.db'}"
    assert s.artifacts == tmp_path / "h" / "artifacts"
    assert s.records == tmp_path / "h" / "records"


def test_environment_and_overrides(tmp_path: Path) -> None:
    env = {
        "FLOTILLA_HOME": str(tmp_path),
        "FLOTILLA_DB_URL": "postgresql+psycopg://postgres@127.0.0.1/test",
        "FLOTILLA_ARTIFACT_ROOT": str(tmp_path / "a"),
        "FLOTILLA_ACTOR": "ana",
    }
    s = Settings.from_env(env, actor="bob")
    assert s.db_url.startswith("postgresql")
    assert s.artifacts == tmp_path / "a"
    assert s.actor == "bob"


def test_bad_db_url_is_explained() -> None:
    with pytest.raises(ConfigError, match="must look like"):
        Settings(db_url="registry.db")


def test_errors_are_builtins_too_and_print_plainly() -> None:
    err = ModelNotFoundError("no model named 'churn'")
    assert isinstance(err, KeyError)
    assert isinstance(err, FlotillaError)
    assert str(err) == "no model named 'churn'"
    assert err.http_status == 404
