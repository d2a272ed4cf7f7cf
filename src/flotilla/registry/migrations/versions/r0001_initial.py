"""Initial registry schema: models, versions, aliases, profiles, deployments, audit, counters.

Revision ID: r0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every registry table."""
    op.create_table(
        "fl_models",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("signature", sa.JSON, nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("next_revision", sa.Integer, nullable=False),
    )
    op.create_table(
        "fl_model_versions",
        sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("artifact_kind", sa.String(8), nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("entry", sa.String(255), nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("trust_pickle", sa.Boolean, nullable=False),
        sa.Column("signature", sa.JSON, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
    )
    op.create_table(
        "fl_aliases",
        sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), primary_key=True),
        sa.Column("alias", sa.String(63), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(
            ["model", "version"], ["fl_model_versions.model", "fl_model_versions.version"]
        ),
    )
    op.create_table(
        "fl_alias_moves",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), nullable=False),
        sa.Column("alias", sa.String(63), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", _when(), nullable=False),
    )
    op.create_index("ix_fl_alias_moves_model", "fl_alias_moves", ["model"])
    op.create_table(
        "fl_profiles",
        sa.Column("model", sa.String(63), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model", "version"], ["fl_model_versions.model", "fl_model_versions.version"]
        ),
    )
    op.create_table(
        "fl_deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(63), sa.ForeignKey("fl_models.name"), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("diff", sa.JSON, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.UniqueConstraint("model", "revision", name="uq_fl_deployments_model_revision"),
    )
    op.create_table(
        "fl_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _when(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("model", sa.String(63), nullable=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_fl_audit_model", "fl_audit", ["model"])
    counters = op.create_table(
        "fl_counters",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(counters, [{"name": "deployments", "value": 0}])


def downgrade() -> None:
    """Drop every registry table."""
    for table in (
        "fl_counters",
        "fl_audit",
        "fl_deployments",
        "fl_profiles",
        "fl_alias_moves",
        "fl_aliases",
        "fl_model_versions",
        "fl_models",
    ):
        op.drop_table(table)
