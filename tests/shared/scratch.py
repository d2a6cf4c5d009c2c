"""Scratch tables and ended server processes for the tests of shared.db and shared.driver."""

from __future__ import annotations

import os
from contextlib import contextmanager

import sqlalchemy as sa

from shared.db import dispose_engine, make_engine
from tests.conftest import POSTGRES_URL

PID = sa.select(sa.func.pg_backend_pid().label("pid"))


@contextmanager
def scratch(label: str, *columns: sa.Column):
    """A table of its own for a test, on an engine of its own: ``(engine, table)``, dropped afterwards."""
    engine = make_engine(POSTGRES_URL, pool_size=2)
    metadata = sa.MetaData()
    table = sa.Table(f"scratch_{label}_{os.getpid()}", metadata, *columns)
    metadata.create_all(engine)
    try:
        yield engine, table
    finally:
        metadata.drop_all(engine)
        dispose_engine(engine)


def end_backends(*pids: int) -> None:
    """End these server processes from another connection, as a restart or a failover would, and wait."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as other:
        for pid in pids:
            ended = sa.text("SELECT pg_terminate_backend(:pid, 5000)")
            assert other.execute(ended, {"pid": pid}).scalar_one()
    admin.dispose()
