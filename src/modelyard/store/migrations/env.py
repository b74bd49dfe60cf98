"""Alembic environment for the metadata store, run only programmatically.

:func:`modelyard.store.sql.upgrade_to_head` opens a transaction (holding the migration lock), puts
its connection in ``config.attributes["connection"]`` and calls ``command.upgrade``. Running
inside the caller's transaction is what makes concurrent starts safe: Alembic sees an external
transaction and adds none of its own, so the version check and the DDL commit together.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from modelyard.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    # Offline (--sql) mode and engine-less runs are deliberately unsupported: the store always
    # migrates a live database under its own lock.
    raise RuntimeError(
        "modelyard migrations run through modelyard.store.open_store, which passes a "
        'connection in config.attributes["connection"]'
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode lets future revisions rebuild tables there.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
