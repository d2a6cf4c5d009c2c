"""shared.db: the pool pings a connection that sat idle; a statement alone runs without BEGIN … COMMIT;
many rows go in by COPY."""

from __future__ import annotations

import gc
import os
import threading
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from shared.db import (
    _AUTOCOMMIT_TWINS,
    UTCDateTime,
    dispose_engine,
    execute_alone,
    insert_rows,
    make_engine,
    read_alone,
)
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


TRICKY_TEXT = ["tab\there", "line\nbreak\r\n", "back\\slash \\N \\t", "", "引号 \"quoted\" 'single'", "\\."]


@pytest.fixture
def copy_table():
    with scratch(
        "copy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("document", sa.JSON, nullable=True),
        sa.Column("flag", sa.Boolean, nullable=True),
        sa.Column("at", UTCDateTime(), nullable=True),
    ) as made:
        yield made


def test_rows_inserted_by_copy_read_back_exactly(copy_table):
    engine, table = copy_table
    at = datetime(2026, 11, 26, 3, 4, 5, 678901, tzinfo=UTC)
    rows = [
        {"id": index, "text": text, "document": {"k": text, "n": [1, None]}, "flag": index % 2 == 0, "at": at}
        for index, text in enumerate(TRICKY_TEXT)
    ]
    rows.append({"id": 99, "text": None, "document": None, "flag": None, "at": None})
    with Session(engine) as session:
        insert_rows(session, table, rows)
        session.commit()
    with engine.connect() as connection:
        stored = [dict(row._mapping) for row in connection.execute(sa.select(table).order_by(table.c.id))]
        assert stored == rows
        # A None document is stored as an INSERT would store it (JSON null, the column not none_as_null).
        connection.execute(sa.insert(table).values(id=100, document=None))
        is_null = sa.select(table.c.id, table.c.document.is_(None)).where(table.c.id.in_([99, 100]))
        assert dict(connection.execute(is_null).all()) == {99: False, 100: False}


def test_a_duplicate_in_a_copy_is_an_integrity_error_and_nothing_of_it_stays(copy_table):
    engine, table = copy_table
    with Session(engine) as session:
        insert_rows(session, table, [{"id": 1, "text": "first"}])
        session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            insert_rows(session, table, [{"id": 2, "text": "new"}, {"id": 1, "text": "again"}])
        session.rollback()
    with engine.connect() as connection:
        assert connection.execute(sa.select(table.c.id)).scalars().all() == [1]


def test_elsewhere_the_rows_go_in_by_insert(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/copy.sqlite")
    metadata = sa.MetaData()
    table = sa.Table("t", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.Text))
    metadata.create_all(engine)
    with Session(engine) as session:
        insert_rows(session, table, [{"id": 1, "text": TRICKY_TEXT[0]}, {"id": 2, "text": TRICKY_TEXT[1]}])
        session.commit()
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(table.c.text).order_by(table.c.id)).scalars().all()
            == TRICKY_TEXT[:2]
        )


@pytest.fixture
def plan_table():
    with scratch(
        "plan",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document", sa.JSON, nullable=True),
        sa.Column("maybe", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=True),
        sa.Column("note", sa.Text, nullable=True, default="python-side default"),
    ) as made:
        yield made


def test_a_statement_run_straight_on_the_driver_answers_as_sqlalchemy_does(plan_table):
    """The precompiled path (driver's execute, named-tuple rows) against SQLAlchemy's own execution."""
    from shared.db import _driver_plan

    engine, table = plan_table
    twin_dialect = engine.dialect
    at = datetime(2026, 11, 26, 3, 4, 5, 678901, tzinfo=UTC)
    insert_full = sa.insert(table)
    row = {"id": 1, "document": None, "maybe": None, "at": at, "note": "given"}
    assert _driver_plan(twin_dialect, insert_full, [row]) is not None  # this one goes straight
    execute_alone(Session(engine), insert_full, [row])
    # Without "note" its Python-side default applies: SQLAlchemy's path, same result.
    assert _driver_plan(twin_dialect, insert_full, {"id": 2}) is None
    execute_alone(Session(engine), insert_full, {"id": 2})

    read = sa.select(
        table.c.id, table.c.document, table.c.maybe, table.c.at, table.c.note.label("remark")
    ).where(table.c.id == sa.bindparam("wanted"))
    assert _driver_plan(twin_dialect, read, {"wanted": 1}) is not None
    with engine.connect() as connection:
        for wanted in (1, 2):
            straight = read_alone(Session(engine), read, {"wanted": wanted})
            expected = connection.execute(read, {"wanted": wanted}).all()
            assert [tuple(r) for r in straight] == [tuple(r) for r in expected]
            assert straight[0].remark == expected[0].remark and straight[0].at == expected[0].at
        # JSON None as SQLAlchemy writes it: JSON null, or SQL NULL for a none_as_null column.
        nulls = sa.select(table.c.document.is_(None), table.c.maybe.is_(None)).where(table.c.id == 1)
        assert connection.execute(nulls).one() == (False, True)
    assert read_alone(Session(engine), read, {"wanted": 3}) == []


def test_driver_errors_are_sqlalchemys_and_a_dead_connection_is_replaced(plan_table, monkeypatch):
    monkeypatch.setattr("shared.db.PING_AFTER_IDLE_SECONDS", 3600.0)
    engine, table = plan_table
    insert_full = sa.insert(table)
    execute_alone(Session(engine), insert_full, {"id": 1, "note": "x"})
    with pytest.raises(sa.exc.IntegrityError):
        execute_alone(Session(engine), insert_full, {"id": 1, "note": "again"})

    dead_pid = _end_backend(read_alone(Session(engine), PID)[0].pid)  # the connection this thread holds
    with pytest.raises(sa.exc.OperationalError):  # the dead connection fails this one use …
        read_alone(Session(engine), sa.select(table.c.id))
    assert [row.id for row in read_alone(Session(engine), sa.select(table.c.id))] == [1]  # … and is gone
    assert read_alone(Session(engine), PID)[0].pid != dead_pid
    assert read_alone(Session(engine), sa.text("SELECT pg_backend_pid()"))  # a text statement runs too


PID = sa.select(sa.func.pg_backend_pid().label("pid"))


def _end_backend(pid: int) -> int:
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as other:
        assert other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()
    return pid


def _in_threads(count: int, work) -> list:
    results, errors = [None] * count, []

    def run(index: int) -> None:
        try:
            results[index] = work(index)
        except Exception as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.collect()
    assert not errors, errors
    return results


def test_a_thread_keeps_its_connection_between_statements_and_gives_it_back_when_it_ends(plan_table):
    engine, _ = plan_table
    twin = _AUTOCOMMIT_TWINS[engine]

    def three_statements(_index: int) -> set[int]:
        return {read_alone(Session(engine), PID)[0].pid for _ in range(3)}

    assert [len(pids) for pids in _in_threads(1, three_statements)] == [1]  # one connection, kept
    assert twin.pool.checkedout() == 0  # the thread ended: back in the pool


def test_threads_beyond_the_pool_size_check_out_as_before(plan_table):
    engine, _ = plan_table
    twin = _AUTOCOMMIT_TWINS[engine]
    barrier = threading.Barrier(4)

    def statements(_index: int) -> int:
        barrier.wait()
        return sum(
            read_alone(Session(engine), sa.select(sa.literal(1).label("one")))[0].one for _ in range(20)
        )

    assert _in_threads(4, statements) == [20] * 4
    assert twin.pool.checkedout() == 0


def test_a_held_connection_idle_past_the_threshold_is_pinged_and_replaced(plan_table, monkeypatch):
    engine, _ = plan_table
    dead_pid = _end_backend(read_alone(Session(engine), PID)[0].pid)
    monkeypatch.setattr("shared.db.PING_AFTER_IDLE_SECONDS", 0.0)
    assert read_alone(Session(engine), PID)[0].pid != dead_pid  # no error: the ping found it dead


def test_a_scoped_session_is_not_made_for_a_statement_alone(plan_table):
    engine, table = plan_table
    scoped = scoped_session(sessionmaker(bind=engine))
    execute_alone(scoped, sa.insert(table), {"id": 5, "note": "scoped"})
    assert [row.id for row in read_alone(scoped, sa.select(table.c.id))] == [5]
    assert not scoped.registry.has()


def test_a_database_that_cannot_be_reached_is_sqlalchemys_operational_error():
    """What the API answers 503 for, on the driver's path as on SQLAlchemy's."""
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nowhere", pool_size=1)
    try:
        with pytest.raises(sa.exc.OperationalError):
            read_alone(Session(engine), sa.select(sa.literal(1).label("one")))
    finally:
        dispose_engine(engine)
