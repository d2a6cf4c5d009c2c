"""shared.driver: rows go in through the driver (one INSERT for one row, COPY for many), stored exactly
as SQLAlchemy's INSERT stores them; alone, they are a transaction of their own; errors are SQLAlchemy's, and a
connection found dead is reported invalidated and leaves neither pool."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from shared.db import UTCDateTime, dispose_engine, make_engine, read_alone
from shared.driver import Lookup, insert_alone, insert_rows
from tests.conftest import POSTGRES_URL
from tests.shared.scratch import PID, end_backends, scratch

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (TEST_POSTGRES_URL)")

TRICKY_TEXT = ["tab\there", "line\nbreak\r\n", "back\\slash \\N \\t", "", "引号 \"quoted\" 'single'", "\\."]
AT = datetime(2026, 11, 26, 3, 4, 5, 678901, tzinfo=UTC)


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


def _stored(engine, table) -> list[dict]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(table).order_by(table.c.id))]


def test_rows_inserted_by_copy_read_back_exactly(copy_table):
    engine, table = copy_table
    rows = [
        {"id": index, "text": text, "document": {"k": text, "n": [1, None]}, "flag": index % 2 == 0, "at": AT}
        for index, text in enumerate(TRICKY_TEXT)
    ]
    rows.append({"id": 99, "text": None, "document": None, "flag": None, "at": None})
    with Session(engine) as session:
        insert_rows(session, table, rows)
        session.commit()
    assert _stored(engine, table) == rows
    with engine.connect() as connection:
        # A None document is stored as an INSERT would store it (JSON null, the column not none_as_null).
        connection.execute(sa.insert(table).values(id=100, document=None))
        is_null = sa.select(table.c.id, table.c.document.is_(None)).where(table.c.id.in_([99, 100]))
        assert dict(connection.execute(is_null).all()) == {99: False, 100: False}


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_one_row_is_stored_as_sqlalchemys_insert_stores_it(typed_table, text):
    engine, table = typed_table
    values = {
        "amount": Decimal("12.30"),
        "share": 0.5,
        "document": {"k": text, "n": [1, None], "中文": True},
        "flag": False,
        "at": AT,
        "text": text,
        "note": "given",
    }
    insert_alone(Session(engine), table, [{"id": 1, **values}])
    with engine.begin() as connection:
        connection.execute(sa.insert(table), {"id": 2, **values})
    through_driver, through_sqlalchemy = _stored(engine, table)
    assert {**through_driver, "id": 2} == through_sqlalchemy
    assert through_driver["kind"] == "plain"  # the server-side default applies to a column left out
    assert through_driver["at"] == AT and through_driver["document"] == values["document"]


def test_each_value_goes_through_its_column_types_conversion(typed_table):
    engine, table = typed_table
    naive = datetime(2026, 11, 26, 3, 4, 5)  # UTCDateTime refuses a naive time before the driver sees it
    with pytest.raises(ValueError, match="naive datetime"):
        insert_alone(Session(engine), table, [{"id": 1, "at": naive, "note": "x"}])
    in_beijing = datetime.fromisoformat("2026-11-26T11:04:05.678901+08:00")
    insert_alone(Session(engine), table, [{"id": 2, "at": in_beijing, "note": "x"}])
    assert [row["at"] for row in _stored(engine, table)] == [AT]


def test_a_row_that_leaves_out_a_python_side_default_is_refused_before_anything_is_sent(typed_table):
    engine, table = typed_table
    with pytest.raises(ValueError, match="note"):
        insert_alone(Session(engine), table, [{"id": 1}])
    with pytest.raises(ValueError, match="note"):
        insert_alone(Session(engine), table, [{"id": 2}, {"id": 3}])
    assert _stored(engine, table) == []


@pytest.mark.parametrize("count", [1, 3])
def test_rows_alone_are_committed_outside_any_transaction_and_make_no_session(copy_table, count):
    engine, table = copy_table
    scoped = scoped_session(sessionmaker(bind=engine))
    rows = [{"id": index, "text": f"row {index}"} for index in range(count)]
    insert_alone(scoped, table, rows)
    assert not scoped.registry.has()
    assert [row["text"] for row in _stored(engine, table)] == [row["text"] for row in rows]


def test_rows_alone_in_a_session_that_began_join_its_transaction_and_commit_it(copy_table):
    engine, table = copy_table
    session = Session(engine)
    session.execute(sa.insert(table).values(id=1))  # begun: committed with the rows below, or not at all
    insert_alone(session, table, [{"id": 2, "text": "joined"}])
    assert not session.in_transaction()
    assert [row["id"] for row in _stored(engine, table)] == [1, 2]


@pytest.mark.parametrize("count", [1, 3])
def test_a_duplicate_is_sqlalchemys_integrity_error_naming_the_sql_but_no_value(copy_table, count):
    engine, table = copy_table
    insert_alone(Session(engine), table, [{"id": 0, "text": "first"}])
    rows = [{"id": index, "text": f"secret {index}"} for index in range(count)]  # the last, id 0, is taken
    rows.reverse()
    with pytest.raises(sa.exc.IntegrityError) as failed:
        insert_alone(Session(engine), table, rows)
    assert table.name in str(failed.value) and "secret" not in str(failed.value)
    assert [row["text"] for row in _stored(engine, table)] == ["first"]  # nothing of the failed rows stays


def test_a_duplicate_in_a_copy_in_a_transaction_leaves_nothing_of_it(copy_table):
    engine, table = copy_table
    with Session(engine) as session:
        insert_rows(session, table, [{"id": 1, "text": "first"}])
        session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            insert_rows(session, table, [{"id": 2, "text": "new"}, {"id": 1, "text": "again"}])
        session.rollback()
    assert [row["id"] for row in _stored(engine, table)] == [1]


@pytest.mark.parametrize("count", [1, 2])
def test_a_connection_killed_under_rows_alone_is_reported_invalidated_and_neither_pool_keeps_it(
    steady, copy_table, count
):
    engine, table = copy_table
    alone = read_alone(Session(engine), PID)[0].pid
    with Session(engine) as session:
        in_session = session.execute(PID).scalar_one()
    end_backends(alone, in_session)  # a restart ends the connections of both pools
    with pytest.raises(sa.exc.OperationalError) as failed:
        insert_alone(Session(engine), table, [{"id": index, "text": "lost"} for index in range(count)])
    assert failed.value.connection_invalidated is True
    insert_alone(Session(engine), table, [{"id": 10, "text": "kept"}])
    with Session(engine) as session:  # the session's pool let its dead connection go as well
        assert session.execute(PID).scalar_one() not in {alone, in_session}
    assert [row["id"] for row in _stored(engine, table)] == [10]


@pytest.mark.parametrize("count", [1, 2])
def test_a_connection_killed_under_rows_in_a_transaction_is_reported_invalidated(steady, copy_table, count):
    engine, table = copy_table
    with Session(engine) as session:
        end_backends(session.execute(PID).scalar_one())
        with pytest.raises(sa.exc.OperationalError) as failed:
            insert_rows(session, table, [{"id": index, "text": "lost"} for index in range(count)])
        assert failed.value.connection_invalidated is True
        session.rollback()
        insert_rows(session, table, [{"id": 10, "text": "kept"}])
        session.commit()
    assert [row["id"] for row in _stored(engine, table)] == [10]


@pytest.mark.parametrize("count", [1, 2])
def test_elsewhere_the_rows_go_in_by_sqlalchemys_insert(tmp_path, count):
    engine = make_engine(f"sqlite:///{tmp_path}/copy.sqlite")
    metadata = sa.MetaData()
    table = sa.Table("t", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.Text))
    metadata.create_all(engine)
    try:
        rows = [{"id": index, "text": TRICKY_TEXT[index]} for index in range(count)]
        with Session(engine) as session:
            insert_rows(session, table, rows)
            session.commit()
        insert_alone(Session(engine), table, [{"id": 9, "text": "alone"}])
        assert _stored(engine, table) == [*rows, {"id": 9, "text": "alone"}]
    finally:
        dispose_engine(engine)


def test_a_lookups_rows_are_what_sqlalchemy_reads(typed_table):
    engine, table = typed_table
    values = {"amount": Decimal("12.30"), "ratio": 0.25, "share": 0.5, "document": {"k": [1, None]}, "at": AT}
    insert_alone(Session(engine), table, [{"id": 1, **values, "flag": True, "text": "一", "note": "n"}])
    insert_alone(Session(engine), table, [{"id": 2, "note": None}])
    statement = sa.select(
        table,
        table.c.note.label("remark"),
        sa.select(sa.func.count()).select_from(table).scalar_subquery().label("rows"),
        sa.func.json_build_array(table.c.id, table.c.text).label("pair"),
    ).where(
        table.c.id >= sa.bindparam("lowest"), table.c.at.is_(None) | (table.c.at <= sa.bindparam("until"))
    )
    lookup = Lookup(statement)
    with engine.connect() as connection:
        for parameters in (
            {"lowest": 1, "until": AT},
            {"lowest": 2, "until": AT},
            {"lowest": 3, "until": AT},
        ):
            expected = connection.execute(statement, parameters).all()
            read = lookup.rows(Session(engine), parameters)
            assert [tuple(row) for row in read] == [tuple(row) for row in expected]
            assert [row._asdict() for row in read] == [dict(row._mapping) for row in expected]
    first = lookup.rows(Session(engine), {"lowest": 1, "until": AT})[0]
    assert (type(first.amount), type(first.ratio), first.at, first.rows) == (Decimal, float, AT, 2)
    assert first.pair == [1, "一"] and first.kind == "plain"


def test_a_lookups_parameters_go_through_their_types_conversion(typed_table):
    engine, table = typed_table
    insert_alone(Session(engine), table, [{"id": 1, "at": AT, "note": "n"}])
    lookup = Lookup(sa.select(table.c.id).where(table.c.at == sa.bindparam("at", type_=UTCDateTime())))
    in_beijing = datetime.fromisoformat("2026-11-26T11:04:05.678901+08:00")
    assert [row.id for row in lookup.rows(Session(engine), {"at": in_beijing})] == [1]
    with pytest.raises(ValueError, match="naive datetime"):
        lookup.rows(Session(engine), {"at": AT.replace(tzinfo=None)})


def test_a_lookup_in_a_session_that_began_reads_in_its_transaction(copy_table):
    engine, table = copy_table
    session = Session(engine)
    session.execute(sa.insert(table).values(id=1, text="not yet committed"))
    lookup = Lookup(sa.select(table.c.text).where(table.c.id == sa.bindparam("id")))
    assert [row.text for row in lookup.rows(session, {"id": 1})] == ["not yet committed"]
    assert session.in_transaction()  # nothing committed by a read
    session.rollback()
    assert lookup.rows(Session(engine), {"id": 1}) == []


def test_a_lookup_refuses_what_it_cannot_read_the_same_way(copy_table):
    engine, table = copy_table
    with pytest.raises(ValueError, match="list parameter"):
        Lookup(sa.select(table.c.id).where(table.c.id.in_([1, 2]))).rows(Session(engine))
    with pytest.raises(ValueError, match="distinct names"):
        Lookup(sa.select(table.c.id, table.c.text.label("id"))).rows(Session(engine))


def test_a_connection_killed_under_a_lookup_is_reported_invalidated_and_replaced(steady, copy_table):
    engine, table = copy_table
    lookup = Lookup(PID)
    dead = lookup.rows(Session(engine))[0].pid
    end_backends(dead)
    with pytest.raises(sa.exc.OperationalError) as failed:
        lookup.rows(Session(engine))
    assert failed.value.connection_invalidated is True
    assert lookup.rows(Session(engine))[0].pid != dead


def test_a_failed_lookup_names_its_sql_but_never_its_values(copy_table):
    engine, table = copy_table
    lookup = Lookup(
        sa.select((table.c.id / sa.bindparam("zero")).label("x"), sa.bindparam("mobile").label("m"))
    )
    insert_alone(Session(engine), table, [{"id": 1}])
    with pytest.raises(sa.exc.DBAPIError) as failed:
        lookup.rows(Session(engine), {"zero": 0, "mobile": "13930001234"})
    assert "SELECT" in str(failed.value) and "13930001234" not in str(failed.value)
