"""Alembic environment: always run on the connection tuigen hands over (see migrate.py)."""
from alembic import context

from tuigen.store.tables import Base

conn = context.config.attributes.get("connection")
if conn is None:
    raise RuntimeError("tuigen migrations run through tuigen.store.migrate.upgrade(engine)")
context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
