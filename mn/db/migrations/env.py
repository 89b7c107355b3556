"""Alembic environment: runs on the connection ``mn.db.migrate.upgrade`` opened.

There is no offline (SQL script) mode and no alembic.ini; ``logging`` is left
as the management node configured it.
"""

from alembic import context

from mn.db.models import Base  # the package imports every model

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through mn.db.migrate.upgrade(), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: alembic rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
