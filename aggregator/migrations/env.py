"""Alembic environment: runs on the connection db.upgrade_schema hands over, or on the URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from aggregator.storage.db import database_url, make_engine
from aggregator.storage.models import Base

target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    with make_engine(database_url()).begin() as new_connection:
        run(new_connection)
