"""shared.db: the pool pings a connection that sat idle; a statement alone runs without BEGIN … COMMIT; a
connection whose server process ended fails one statement, reported invalidated, and is replaced."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from shared.db import (
    dispose_engine,
    execute_alone,
    make_engine,
    read_alone,
)
from tests.conftest import POSTGRES_URL
from tests.shared.scratch import PID, end_backends, scratch

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
        dispose_engine(engine)


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
        dispose_engine(engine)


@pytest.fixture
def scratch_table():
    with scratch("execute_alone", sa.Column("id", sa.Integer, primary_key=True)) as made:
        yield made


def test_a_statement_alone_runs_outside_any_transaction_and_is_committed(scratch_table):
    engine, table = scratch_table
    session = Session(engine)
    rows = execute_alone(session, sa.insert(table).values(id=1).returning(table.c.id))
    assert [row.id for row in rows] == [1]
    # Only a connection outside a transaction block can VACUUM: the proof that no BEGIN was sent.
    execute_alone(session, sa.text(f"VACUUM {table.name}"))
    with engine.connect() as other:
        assert other.execute(sa.select(table.c.id)).scalars().all() == [1]
    assert not session.in_transaction()


def test_in_a_session_that_began_the_statement_joins_its_transaction(scratch_table):
    engine, table = scratch_table
    session = Session(engine)
    session.execute(sa.insert(table).values(id=1))  # begun: this must commit together with the next one
    execute_alone(session, sa.insert(table).values(id=2))
    assert not session.in_transaction()
    with engine.connect() as other:
        assert sorted(other.execute(sa.select(table.c.id)).scalars()) == [1, 2]
    session.execute(sa.insert(table).values(id=3))
    with pytest.raises(sa.exc.IntegrityError):  # a failing statement leaves the session to roll back
        execute_alone(session, sa.insert(table).values(id=1))
    session.rollback()
    with engine.connect() as other:
        assert sorted(other.execute(sa.select(table.c.id)).scalars()) == [1, 2]


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
def test_a_failed_statement_names_its_sql_but_never_its_values(where, tmp_path):
    """An error logged by a worker or the API carries no mobile, content or secret that was bound to it."""
    engine = make_engine(POSTGRES_URL if where == "postgresql" else f"sqlite:///{tmp_path}/values.sqlite")
    try:
        with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as failed:
            connection.execute(
                sa.text("SELECT :mobile AS mobile, 1 / 0 AS nothing"), {"mobile": "13930001234"}
            )
        assert "1 / 0" in str(failed.value)
        assert "13930001234" not in str(failed.value)
    finally:
        dispose_engine(engine)


@pytest.fixture
def lone_engine():
    engine = make_engine(POSTGRES_URL, pool_size=1)
    yield engine
    dispose_engine(engine)


def test_a_killed_connection_fails_one_statement_alone_invalidated_then_is_replaced(steady, lone_engine):
    dead = read_alone(Session(lone_engine), PID)[0].pid
    end_backends(dead)
    with pytest.raises(sa.exc.OperationalError) as failed:
        read_alone(Session(lone_engine), PID)
    assert failed.value.connection_invalidated is True
    assert read_alone(Session(lone_engine), PID)[0].pid != dead


def test_a_killed_connection_fails_the_sessions_statement_invalidated_then_is_replaced(steady, lone_engine):
    session = Session(lone_engine)
    dead = session.execute(PID).scalar_one()  # begun: what follows runs in the session's transaction
    end_backends(dead)
    with pytest.raises(sa.exc.OperationalError) as failed:
        execute_alone(session, PID)
    assert failed.value.connection_invalidated is True
    session.rollback()
    assert session.execute(PID).scalar_one() != dead
    session.close()


def test_after_one_failure_neither_pool_hands_out_a_killed_connection(steady, lone_engine):
    alone = read_alone(Session(lone_engine), PID)[0].pid
    with Session(lone_engine) as session:
        in_session = session.execute(PID).scalar_one()
    end_backends(alone, in_session)  # a restart ends the connections of both pools
    with pytest.raises(sa.exc.OperationalError):
        read_alone(Session(lone_engine), PID)
    with Session(lone_engine) as session:  # the session's pool let its dead connection go as well
        assert session.execute(PID).scalar_one() not in {alone, in_session}


def test_rows_of_a_statement_alone_are_what_sqlalchemy_answers(typed_table):
    engine, table = typed_table
    at = datetime(2026, 11, 26, 3, 4, 5, 678901, tzinfo=UTC)
    values = {"id": 1, "amount": "12.30", "ratio": 0.25, "share": 0.5, "document": {"k": [1]}, "at": at}
    execute_alone(Session(engine), sa.insert(table), values)
    execute_alone(Session(engine), sa.insert(table), {"id": 2})  # the Python-side default applies
    read = sa.select(table, table.c.note.label("remark")).where(table.c.id == sa.bindparam("wanted"))
    with engine.connect() as connection:
        for wanted in (1, 2):
            alone = read_alone(Session(engine), read, {"wanted": wanted})
            assert alone == connection.execute(read, {"wanted": wanted}).all()
    first = read_alone(Session(engine), read, {"wanted": 1})[0]
    assert (type(first.amount), type(first.ratio), type(first.share)) == (Decimal, float, float)
    assert (
        first.at == at and read_alone(Session(engine), read, {"wanted": 2})[0].remark == "python-side default"
    )
    assert read_alone(Session(engine), read, {"wanted": 3}) == []


def test_errors_of_a_statement_alone_are_sqlalchemys(scratch_table):
    engine, table = scratch_table
    execute_alone(Session(engine), sa.insert(table), {"id": 1})
    with pytest.raises(sa.exc.IntegrityError):
        execute_alone(Session(engine), sa.insert(table), {"id": 1})
    assert [row.id for row in read_alone(Session(engine), sa.select(table.c.id))] == [1]


def test_a_scoped_session_is_not_made_for_a_statement_alone(scratch_table):
    engine, table = scratch_table
    scoped = scoped_session(sessionmaker(bind=engine))
    execute_alone(scoped, sa.insert(table), {"id": 5})
    assert [row.id for row in read_alone(scoped, sa.select(table.c.id))] == [5]
    assert not scoped.registry.has()


def test_a_database_that_cannot_be_reached_is_sqlalchemys_operational_error():
    """What the API answers 503 for."""
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nowhere", pool_size=1)
    try:
        with pytest.raises(sa.exc.OperationalError):
            read_alone(Session(engine), sa.select(sa.literal(1).label("one")))
    finally:
        dispose_engine(engine)
