"""Alembic environment: runs on the connection that :func:`flotilla.registry.migrate` passes.

There is no alembic.ini; ``migrate`` builds the Config in code and puts the open connection
in ``config.attributes["connection"]``. Importing this module outside Alembic does nothing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from flotilla.registry.tables import metadata

VERSION_TABLE = "fl_registry_alembic_version"


def run_migrations(connection: Connection) -> None:
    """Upgrade on ``connection`` (called by Alembic while it runs this script)."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # only while Alembic runs this script
    _connection = context.config.attributes.get("connection")
    if _connection is None:
        raise RuntimeError(
            "The registry migrations run through flotilla.registry.migrate(engine), "
            "not through the alembic command line."
        )
    run_migrations(_connection)
