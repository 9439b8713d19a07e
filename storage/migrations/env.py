"""Alembic environment. Baton runs migrations itself (`Database.migrate`) on a shared connection."""

from alembic import context

from storage.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Baton's migrations run through `baton migrate` or `baton serve`, which pass a connection.")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
