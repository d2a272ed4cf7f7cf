"""SQLAlchemy Core table definitions of the registry (the Alembic migrations create them).

Changing a table here needs a new migration under ``migrations/versions/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "UTCDateTime",
    "alert_groups",
    "alert_streaks",
    "alias_moves",
    "aliases",
    "audit_log",
    "counters",
    "deployments",
    "incidents",
    "metadata",
    "model_versions",
    "models",
    "profiles",
]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite hands back naive values otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> sa.JSON:
    return sa.JSON(none_as_null=True)


metadata = sa.MetaData()

models = sa.Table(
    "fl_models",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(200), nullable=False, default=""),
    sa.Column("signature", _json(), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # Counters handed out by UPDATE ... RETURNING in the writing transaction.
    sa.Column("next_version", sa.Integer, nullable=False, default=1),
    sa.Column("next_revision", sa.Integer, nullable=False, default=1),
)

model_versions = sa.Table(
    "fl_model_versions",
    metadata,
    sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("artifact_kind", sa.String(8), nullable=True),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("entry", sa.String(255), nullable=True),
    sa.Column("params", _json(), nullable=False),
    sa.Column("metrics", _json(), nullable=False),
    sa.Column("tags", _json(), nullable=False),
    sa.Column("lineage", _json(), nullable=False),
    sa.Column("trust_pickle", sa.Boolean, nullable=False, default=False),
    sa.Column("signature", _json(), nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

aliases = sa.Table(
    "fl_aliases",
    metadata,
    sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), primary_key=True),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(
        ["model", "version"], ["fl_model_versions.model", "fl_model_versions.version"]
    ),
)

alias_moves = sa.Table(
    "fl_alias_moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), nullable=False),
    sa.Column("alias", sa.String(63), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_fl_alias_moves_model", "model"),
)

profiles = sa.Table(
    "fl_profiles",
    metadata,
    sa.Column("model", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("profile", _json(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.ForeignKeyConstraint(
        ["model", "version"], ["fl_model_versions.model", "fl_model_versions.version"]
    ),
)

deployments = sa.Table(
    "fl_deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("spec", _json(), nullable=False),
    sa.Column("diff", _json(), nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("model", "revision", name="uq_fl_deployments_model_revision"),
)

audit_log = sa.Table(
    "fl_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("model", sa.String(63), nullable=True),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("before", _json(), nullable=True),
    sa.Column("after", _json(), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_fl_audit_model", "model"),
)

counters = sa.Table(
    "fl_counters",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
"""Global counters; ``deployments`` is bumped on every deployment revision and alias move."""

# -- alert rules and incidents (flotilla.monitoring.alerts / incidents; migration r0002) ------

alert_streaks = sa.Table(
    "fl_alert_streaks",
    metadata,
    sa.Column("rule", sa.String(100), primary_key=True),
    sa.Column("model", sa.String(63), primary_key=True),
    sa.Column("streak", sa.Integer, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("numbers", _json(), nullable=True),
)
"""Per (rule, model): how many consecutive evaluation windows the condition held."""

alert_groups = sa.Table(
    "fl_alert_groups",
    metadata,
    sa.Column("rule", sa.String(100), primary_key=True),
    sa.Column("group_key", sa.String(255), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("models", _json(), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
)
"""Per (rule, group key): whether the alert fires, since when, and when it last notified."""

incidents = sa.Table(
    "fl_incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("group_key", sa.String(255), nullable=False),
    sa.Column("models", _json(), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("details", _json(), nullable=False),
    sa.Column("renotify_s", sa.Float, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    sa.Column("ack_note", sa.Text, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("resolved_by", sa.String(200), nullable=True),
    sa.Column("resolve_note", sa.Text, nullable=True),
    sa.Index("ix_fl_incidents_state", "state"),
    sa.Index("ix_fl_incidents_rule_group", "rule", "group_key"),
)
"""Incidents: alerts that need a person (open -> acknowledged -> resolved)."""
