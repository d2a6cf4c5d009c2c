"""The hottest statements of the services, run through the driver on PostgreSQL.

A send stores one message row, a batch-send up to 1,000, and a status request reads one record or one batch.
Through SQLAlchemy Core, the execution around such a statement (the connection's begin and close, the
execution context, the result) cost as much client CPU as the driver's call itself; for 1,000 rows, rendering
their 14,000 bound parameters cost more than sending them. So these go to a DBAPI connection of SQLAlchemy's
pool, with SQL that SQLAlchemy compiles once per process and values converted by the column types' own
processors, as SQLAlchemy's execution converts them:

- one row in: the INSERT of the table for the row's columns;
- several rows in: ``COPY … FROM STDIN`` in its text format, one round trip of data and no parameters;
- a :class:`Lookup`: a SELECT built once, its rows read alone.

A driver error is raised as SQLAlchemy raises a statement's (``IntegrityError``, ``OperationalError`` …,
never with the bound values), and a connection found dead is invalidated and reported so. Elsewhere (SQLite)
SQLAlchemy runs the statements.
"""

from __future__ import annotations

import io
import json
from collections import namedtuple
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import JSON, Select, Table, insert
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.db import autocommit_engine, bind_of, dispose_engine, read_alone

Rows = list[dict[str, Any]]


def insert_rows(session: Session, table: Table, rows: Rows) -> None:
    """Insert rows in the session's transaction (nothing committed)."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    statement = _insert_statement(table, rows, connection.dialect)
    # A connection found dead goes out of the pool with the transaction: the session's rollback finds it gone.
    _run(
        connection.connection.dbapi_connection,
        connection.dialect,
        statement.sql,
        lambda cursor: statement.run(cursor, rows),
        connection.invalidate,
    )


def insert_alone(session: Session, table: Table, rows: Rows) -> None:
    """Insert rows as a transaction of their own, committed: on a pooled autocommit connection (one statement
    is atomic by itself), or in the session's transaction, then committed, where the session has begun one or
    is bound to a connection (as :func:`shared.db.execute_alone` decides)."""
    if not rows:
        return
    engine = autocommit_engine(session)
    if engine is None or engine.dialect.name != "postgresql":
        insert_rows(session, table, rows)
        session.commit()
        return
    statement = _insert_statement(table, rows, engine.dialect)
    _alone(session, engine, statement.sql, lambda cursor: statement.run(cursor, rows))


def _insert_statement(table: Table, rows: Rows, dialect: Dialect) -> _OneRowInsert | _Copy:
    """One INSERT for one row, else COPY, made once per table and set of columns."""
    columns = tuple(rows[0])
    return _one_row_insert(table, columns, dialect) if len(rows) == 1 else _copy(table, columns, dialect)


def _run(dbapi_connection, dialect: Dialect, sql: str, work: Callable[[Any], Any], lost) -> Any:
    """``work(cursor)``, a driver error raised as SQLAlchemy raises a statement's."""
    driver_error = dialect.loaded_dbapi.Error
    try:
        with dbapi_connection.cursor() as cursor:
            return work(cursor)
    except driver_error as exc:
        invalidated = dialect.is_disconnect(exc, dbapi_connection, None)
        if invalidated:
            lost(exc)
        raise DBAPIError.instance(
            sql, None, exc, driver_error, connection_invalidated=invalidated, dialect=dialect
        ) from exc


def _alone(session: Session, engine: Engine, sql: str, work: Callable[[Any], Any]) -> Any:
    """``work(cursor)`` on a pooled connection of the autocommit twin ``engine``."""
    pooled = engine.raw_connection()

    def lost(exc: BaseException) -> None:
        # As SQLAlchemy does when a statement finds its connection dead: the server likely ended them all.
        pooled.invalidate(exc)
        dispose_engine(bind_of(session))

    try:
        return _run(pooled, engine.dialect, sql, work, lost)
    finally:
        pooled.close()  # back to the pool; an invalidated connection is discarded instead


class _OneRowInsert(NamedTuple):
    sql: str
    converters: tuple[tuple[str, Callable[[Any], Any]], ...]

    def run(self, cursor, rows: Rows) -> None:
        values = dict(rows[0])
        for name, convert in self.converters:
            values[name] = convert(values[name])
        cursor.execute(self.sql, values)


@lru_cache(maxsize=64)
def _one_row_insert(table: Table, columns: tuple[str, ...], dialect: Dialect) -> _OneRowInsert:
    _check_defaults(table, columns)
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    if set(compiled.params) != set(columns):  # the row's keys must be the statement's parameters
        raise ValueError(f"{table.name}: cannot insert the columns {columns} through the driver")
    converters = []
    for name in columns:
        column_type = table.c[name].type
        convert = column_type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            converters.append((name, convert))
    return _OneRowInsert(compiled.string, tuple(converters))


def _check_defaults(table: Table, columns: tuple[str, ...]) -> None:
    """The driver knows nothing of Python-side defaults: a row that leaves one out is refused, loudly."""
    left_out = [
        column.name for column in table.c if column.name not in columns and column.default is not None
    ]
    if left_out:
        raise ValueError(f"{table.name}: give the columns with Python-side defaults: {', '.join(left_out)}")


class _Copy(NamedTuple):
    sql: str
    columns: tuple[str, ...]
    writers: tuple[Callable[[Any], str], ...]

    def run(self, cursor, rows: Rows) -> None:
        pairs = tuple(zip(self.columns, self.writers, strict=True))
        lines = "".join("\t".join([write(row[name]) for name, write in pairs]) + "\n" for row in rows)
        cursor.copy_expert(self.sql, io.StringIO(lines))


@lru_cache(maxsize=64)
def _copy(table: Table, columns: tuple[str, ...], dialect: Dialect) -> _Copy:
    _check_defaults(table, columns)
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    writers = tuple(_copy_writer(table.c[name].type) for name in columns)
    return _Copy(f"COPY {quote(table.name)} ({names}) FROM STDIN", columns, writers)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_writer(column_type) -> Callable[[Any], str]:
    """How a column's values are written in COPY's text format (chosen once per column, not per value)."""
    if isinstance(column_type, JSON):
        # None as INSERT writes it: SQL NULL only for a column declared none_as_null, else JSON null.
        null = "\\N" if column_type.none_as_null else "null"
        return lambda value: (
            null if value is None else json.dumps(value, ensure_ascii=False).translate(_COPY_ESCAPES)
        )
    return _copy_text


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use shared.db.utcnow()")
        return value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


class Lookup:
    """A SELECT built once (a module's constant) whose rows are read alone, as :func:`shared.db.read_alone`
    reads them, through the driver on PostgreSQL: the lookups by key that requests make (a record, a batch's
    progress, a route). Rows are named tuples of the statement's selected columns."""

    def __init__(self, statement: Select) -> None:
        self.statement = statement
        self._plans: dict[Dialect, _ReadPlan] = {}

    def rows(self, session: Session, parameters: dict[str, Any] | None = None) -> list[tuple]:
        engine = autocommit_engine(session)
        if engine is None or engine.dialect.name != "postgresql":
            return read_alone(session, self.statement, parameters)
        plan = self._plans.get(engine.dialect)
        if plan is None:
            plan = self._plans[engine.dialect] = _ReadPlan.of(self.statement, engine.dialect)
        return _alone(session, engine, plan.sql, lambda cursor: plan.read(cursor, parameters))


class _ReadPlan:
    """The compiled SQL of a SELECT, the converters of its parameters and of its columns, its row type."""

    def __init__(self, compiled, dialect: Dialect, converters, types, row) -> None:
        self.compiled = compiled
        self.sql = compiled.string
        self.dialect = dialect
        self.converters = converters
        self.types = types
        self.row = row
        self.processors = None  # chosen at the first answer, from the columns' types as the driver names them

    @classmethod
    def of(cls, statement: Select, dialect: Dialect) -> _ReadPlan:
        compiled = statement.compile(dialect=dialect)
        converters = []
        for name, parameter in compiled.binds.items():
            if parameter.expanding:  # IN (…) of a list: rendered per call; read_alone handles it
                raise ValueError(f"a Lookup takes no list parameter ({name}): use read_alone")
            convert = parameter.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                converters.append((name, convert))
        keys = list(statement.selected_columns.keys())
        named = [getattr(column, "key", None) for column in statement.selected_columns]
        if named != keys or not all(key.isidentifier() for key in keys):
            # The row's names as SQLAlchemy gives them: unlabelled expressions, repeated names read otherwise.
            raise ValueError(f"a Lookup's columns need distinct names, expressions a label: {named}")
        types = [column.type for column in statement.selected_columns]
        return cls(compiled, dialect, tuple(converters), types, namedtuple("LookupRow", keys))

    def read(self, cursor, parameters: dict[str, Any] | None) -> list[tuple]:
        values = self.compiled.construct_params(parameters)
        for name, convert in self.converters:
            values[name] = convert(values[name])
        cursor.execute(self.sql, values)
        fetched = cursor.fetchall()
        if self.processors is None:
            self.processors = [
                column_type.dialect_impl(self.dialect).result_processor(self.dialect, described[1])
                for column_type, described in zip(self.types, cursor.description, strict=True)
            ]
        row, processors = self.row, self.processors
        if not any(processors):
            return [row(*values) for values in fetched]
        converted = []
        for values in fetched:
            pairs = zip(processors, values, strict=True)
            converted.append(row(*[value if process is None else process(value) for process, value in pairs]))
        return converted
