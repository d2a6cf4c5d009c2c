"""The pool pings a connection that sat idle, so a database restart costs no request an error."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared.db import make_engine
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (TEST_POSTGRES_URL)")


def _kill_pooled_connection(engine) -> int:
    """Check a connection out and back in, then end its server process from outside, as a restart would."""
    with engine.connect() as connection:
        pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as other:
        assert other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()
    return pid


def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced(monkeypatch):
    monkeypatch.setattr("shared.db.PING_AFTER_IDLE_SECONDS", 0.0)
    engine = make_engine(POSTGRES_URL, pool_size=1)
    try:
        dead_pid = _kill_pooled_connection(engine)
        with engine.connect() as connection:  # the ping finds it dead: a new connection, no error
            assert connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != dead_pid
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged(monkeypatch):
    monkeypatch.setattr("shared.db.PING_AFTER_IDLE_SECONDS", 3600.0)
    engine = make_engine(POSTGRES_URL, pool_size=1)
    try:
        _kill_pooled_connection(engine)
        # No ping (it was used a moment ago): the dead connection fails this one use …
        with pytest.raises(sa.exc.OperationalError), engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        # … and the pool has replaced it for the next.
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
