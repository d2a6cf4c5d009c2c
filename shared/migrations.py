"""The body of each service's Alembic ``env.py``: migrate the app's own database."""

from __future__ import annotations

from alembic import context
from flask import current_app


def run_migrations() -> None:
    database = current_app.extensions["database"]
    metadata = database.metadata
    if context.is_offline_mode():
        context.configure(url=str(database.engine.url), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    with database.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
