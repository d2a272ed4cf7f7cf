"""Alert state and incidents: streaks per (rule, model), alert groups, incidents.

Revision ID: r0002
Revises: r0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the alert-state and incident tables."""
    op.create_table(
        "fl_alert_streaks",
        sa.Column("rule", sa.String(100), primary_key=True),
        sa.Column("model", sa.String(63), primary_key=True),
        sa.Column("streak", sa.Integer, nullable=False),
        sa.Column("window_end", _when(), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("numbers", sa.JSON, nullable=True),
    )
    op.create_table(
        "fl_alert_groups",
        sa.Column("rule", sa.String(100), primary_key=True),
        sa.Column("group_key", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("started_at", _when(), nullable=True),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("notified_at", _when(), nullable=True),
        sa.Column("acknowledged_at", _when(), nullable=True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
    )
    op.create_table(
        "fl_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("group_key", sa.String(255), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("renotify_s", sa.Float, nullable=False),
        sa.Column("opened_at", _when(), nullable=False),
        sa.Column("notified_at", _when(), nullable=True),
        sa.Column("acknowledged_at", _when(), nullable=True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("ack_note", sa.Text, nullable=True),
        sa.Column("resolved_at", _when(), nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolve_note", sa.Text, nullable=True),
    )
    op.create_index("ix_fl_incidents_state", "fl_incidents", ["state"])
    op.create_index("ix_fl_incidents_rule_group", "fl_incidents", ["rule", "group_key"])


def downgrade() -> None:
    """Drop the alert-state and incident tables."""
    for table in ("fl_incidents", "fl_alert_groups", "fl_alert_streaks"):
        op.drop_table(table)
