"""Alembic migrations of the registry schema (applied by :func:`flotilla.registry.migrate`)."""
