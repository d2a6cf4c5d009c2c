"""SQLAlchemy 2.x plumbing both services use: an engine and a scoped session per app, UTC times.

Each service declares its own models on its own ``MetaData``, in its own database.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import weakref
from collections import namedtuple
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import JSON, DateTime, MetaData, Table, create_engine, event, func, insert, select
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeDecorator

from shared.forking import fork_generation

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``Z``, as every answer shows times."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on PostgreSQL and SQLite alike (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use shared.db.utcnow()")
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Database:
    """One engine and one thread-scoped session for a Flask app; the session ends with the app context."""

    def __init__(self, metadata: MetaData) -> None:
        self.metadata = metadata
        self.engine: Engine | None = None
        self.session: scoped_session[Session] = scoped_session(sessionmaker(expire_on_commit=False))

    def init_app(self, app: Flask, url: str, pool_size: int = 5) -> None:
        self.engine = make_engine(url, pool_size=pool_size)
        self.session.remove()
        self.session.configure(bind=self.engine)
        app.extensions["database"] = self

        @app.teardown_appcontext
        def _end_session(_exc):
            self.session.remove()


def normalize_url(url: str) -> str:
    """Plain ``postgresql://`` means psycopg2, the driver this project installs."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, pool_size: int = 5) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    settings = {
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": 5, "application_name": os.environ.get("APP_NAME", "laundry")},
    }
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, **settings)
    ping_after_idle(engine)
    # For statements that run alone: connections kept in autocommit mode, so a checkout switches nothing
    # and a checkin has no transaction to roll back (switching cost more CPU than the statement).
    alone = create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=max(1, pool_size // 2),
        max_overflow=pool_size,
        pool_reset_on_return=None,
        **settings,
    )
    ping_after_idle(alone)
    _AUTOCOMMIT_TWINS[engine] = alone
    return engine


_AUTOCOMMIT_TWINS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def dispose_engine(engine: Engine) -> None:
    """Close the pooled connections of ``engine`` and of its autocommit twin (this thread's held one too)."""
    engine.dispose()
    twin = _AUTOCOMMIT_TWINS.get(engine)
    if twin is not None:
        _let_go(twin)
        twin.dispose()


#: A pooled connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 10.0


def ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    ``pool_pre_ping`` pings on every checkout: one more round trip per request, as much as the INSERT
    of an accepted send. A connection in steady use has just proved itself; one that waited (through a
    database restart, a failover, a firewall's idle timeout) is checked, and a dead one is replaced before
    the request sees it. A connection that dies mid-use still fails that request, and SQLAlchemy then
    invalidates the pool's older connections.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc


def execute_alone(session: Session, statement, parameters=None) -> list[Row]:
    """Execute one statement as a transaction of its own, committed; returns its rows (if it returns any).

    A transaction through psycopg2 costs a ``BEGIN`` and a ``COMMIT`` round trip besides its statements. A
    single statement is atomic by itself, so it runs on a pooled connection in autocommit mode: one round
    trip. When the session has already begun a transaction, or is bound to a connection rather than an
    engine (the tests bind it to an outer transaction they roll back), the statement runs in the session's
    transaction, which is then committed.
    """
    return _run_alone(session, statement, parameters, commit=True)


def read_alone(session: Session, statement, parameters=None) -> list[Row]:
    """The rows of one query: in autocommit mode like :func:`execute_alone` (no ``BEGIN``, no transaction
    left open) when the session has begun nothing, else in the session's transaction (nothing committed)."""
    return _run_alone(session, statement, parameters, commit=False)


def _run_alone(session: Session, statement, parameters, commit: bool) -> list[Row]:
    twin = _autocommit_twin(session)
    if twin is None:
        result = session.execute(statement, parameters)
        # A DML statement without RETURNING returns no rows; an ORM result always does.
        rows = result.all() if getattr(result, "returns_rows", True) else []
        if commit:
            session.commit()
        return rows
    plan = _driver_plan(twin.dialect, statement, parameters)
    if plan is not None:
        return plan.run(twin, parameters[0] if isinstance(parameters, list) else parameters or {})
    with twin.connect() as connection:
        result = connection.execute(statement, parameters)
        return result.all() if result.returns_rows else []


def existing_session(session: Session | scoped_session) -> Session | None:
    """The session; for a scoped session, the one of this scope only if something made it already (a
    request that ran its statements alone never does: then nothing is begun, loaded or to expire)."""
    if isinstance(session, scoped_session):
        return session() if session.registry.has() else None
    return session


def bind_of(session: Session | scoped_session) -> Engine | Connection | None:
    """The engine (or, in tests, the connection) the session runs on, without making a scoped session."""
    made = existing_session(session)
    if made is None:
        return session.session_factory.kw.get("bind")
    return made.bind or made.get_bind()


def _autocommit_twin(session: Session) -> Engine | None:
    """The autocommit twin of the session's engine, when nothing ties the statement to the session."""
    made = existing_session(session)
    if made is not None and made.in_transaction():
        return None
    bind = bind_of(session)
    return _AUTOCOMMIT_TWINS.get(bind) if isinstance(bind, Engine) else None


class _DriverPlan:
    """A statement compiled once, run straight on a pooled psycopg2 connection.

    Through a SQLAlchemy ``Connection`` a one-row INSERT costs several times the CPU of the driver's own
    ``execute`` (connection and result wrappers, the compiled-cache lookup, execution context). The plan
    keeps what those steps compute for a statement and its parameter names: the SQL, the bind processors,
    the result processors. Rows come back as named tuples (index and attribute access, as ``Row``).
    """

    __slots__ = ("statement", "sql", "compiled", "processors", "row_type", "result_processors")

    def __init__(self, statement, compiled, row_type, result_processors) -> None:
        self.statement = statement  # kept alive: the cache is keyed by its id
        self.compiled = compiled
        self.sql = compiled.string
        self.processors = compiled._bind_processors
        self.row_type = row_type
        self.result_processors = result_processors

    def run(self, engine: Engine, parameters: dict[str, Any]) -> list:
        processors = self.processors
        values = {
            key: processors[key](value) if key in processors else value
            for key, value in self.compiled.construct_params(parameters).items()
        }
        dialect = engine.dialect
        try:
            connection, held = _connection_for(engine)
        except dialect.loaded_dbapi.Error as exc:  # no connection to be had: as Engine.connect() raises it
            raise DBAPIError.instance(
                None, None, exc, dialect.loaded_dbapi.Error, True, dialect=dialect
            ) from exc
        cursor = None
        try:
            cursor = connection.cursor()
            cursor.execute(self.sql, values)
            rows = cursor.fetchall() if cursor.description is not None else []
        except dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy would handle and raise it
            invalidated = dialect.is_disconnect(exc, connection.dbapi_connection, cursor)
            if invalidated:
                engine.pool._invalidate(connection, exc)
                if held is not None:
                    _let_go(engine)
            raise DBAPIError.instance(
                self.sql, values, exc, dialect.loaded_dbapi.Error, invalidated, dialect=dialect
            ) from exc
        finally:
            if cursor is not None:
                cursor.close()
            if held is not None:
                held.used_at = time.monotonic()
            else:
                connection.close()
        if not rows:
            return []
        if self.row_type is None:
            raise RuntimeError(f"rows from a statement planned to return none: {self.sql}")
        make, convert = self.row_type._make, self.result_processors
        if convert is None:
            return [make(row) for row in rows]
        return [
            make(
                [
                    value if process is None else process(value)
                    for process, value in zip(convert, row, strict=True)
                ]
            )
            for row in rows
        ]


class _Held:
    """The pooled connection of an autocommit twin that one thread keeps between statements that run alone.

    A checkout and a check-in cost a statement as much CPU as its parameters and its SQL together (the
    pool's queue, its events, the idle ping's bookkeeping). A thread keeps one connection, of one engine,
    at a time; as many threads as the twin's pool size keep one, the others check out as before. A held
    connection idle past ``PING_AFTER_IDLE_SECONDS`` is pinged before use and replaced if dead; one that
    fails with a disconnect is let go; a thread that ends gives its connection back to the pool.
    """

    __slots__ = ("connection", "engine", "used_at", "generation")

    def __init__(self, connection, engine: Engine) -> None:
        self.connection = connection  # the pool's proxy, as Engine.raw_connection() returns it
        self.engine = engine
        self.used_at = time.monotonic()
        self.generation = fork_generation()

    def usable_for(self, engine: Engine) -> bool:
        return (
            self.engine is engine
            and self.generation == fork_generation()
            and self.connection._pool is engine.pool  # not since engine.dispose()
        )

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        if self.generation != fork_generation():  # the parent's: closing it would end the parent's session
            _INHERITED.append(connection)
            return
        with _HOLDERS_LOCK:
            generation, holders = _HOLDERS.get(self.engine, (self.generation, 1))
            _HOLDERS[self.engine] = (generation, max(0, holders - 1))
        connection.close()  # back to the pool (an invalidated one is discarded there)

    def __del__(self) -> None:  # the thread ended: its thread-local values go
        try:
            self.release()
        except Exception:  # at interpreter exit the pool may be gone already
            pass


_LOCAL = threading.local()
_HOLDERS: weakref.WeakKeyDictionary[Engine, tuple[int, int]] = weakref.WeakKeyDictionary()
_HOLDERS_LOCK = threading.RLock()  # re-entrant: a release may run from __del__ while it is held
_INHERITED: list = []  # a parent's connections in a forked child: never used, never closed (shared sockets)


def _connection_for(engine: Engine) -> tuple[Any, _Held | None]:
    """This thread's held connection of ``engine``, else one checked out: ``(connection, held or None)``."""
    held: _Held | None = getattr(_LOCAL, "held", None)
    if held is not None:
        if held.usable_for(engine):
            if time.monotonic() - held.used_at < PING_AFTER_IDLE_SECONDS:
                return held.connection, held
            try:
                engine.dialect.do_ping(held.connection.dbapi_connection)
                return held.connection, held
            except Exception as exc:  # dead: replaced below, as the pool would replace it
                held.connection.invalidate(exc)
        _let_go()
    connection = engine.raw_connection()
    generation = fork_generation()
    with _HOLDERS_LOCK:
        counted, holders = _HOLDERS.get(engine, (generation, 0))
        if counted != generation:  # counted by the parent process
            holders = 0
        if holders >= engine.pool.size():
            return connection, None
        _HOLDERS[engine] = (generation, holders + 1)
    held = _LOCAL.held = _Held(connection, engine)
    return connection, held


def _let_go(engine: Engine | None = None) -> None:
    """Give this thread's held connection (of ``engine``, or of any) back to its pool."""
    held: _Held | None = getattr(_LOCAL, "held", None)
    if held is not None and (engine is None or held.engine is engine):
        del _LOCAL.held
        held.release()


_DRIVER_PLANS: dict[tuple, _DriverPlan | None] = {}
_DRIVER_PLAN_LIMIT = 512  # statements are built once per module; ad-hoc ones beyond this run as before


def _driver_plan(dialect, statement, parameters) -> _DriverPlan | None:
    """The plan for ``statement`` with these parameter names, or None where SQLAlchemy must do the work
    (another driver, several rows, Python-side column defaults, expanding or escaped parameters)."""
    if dialect.driver != "psycopg2":
        return None
    if isinstance(parameters, list):
        if len(parameters) != 1:
            return None
        parameters = parameters[0]
    names = tuple(parameters) if parameters else ()
    key = (id(statement), id(dialect), names)
    plan = _DRIVER_PLANS.get(key, False)
    if plan is not False and (plan is None or plan.statement is statement):
        return plan
    plan = _build_driver_plan(dialect, statement, names)
    if len(_DRIVER_PLANS) < _DRIVER_PLAN_LIMIT:
        _DRIVER_PLANS[key] = plan
    return plan


def _build_driver_plan(dialect, statement, names: tuple[str, ...]) -> _DriverPlan | None:
    if not isinstance(statement, ClauseElement) or isinstance(statement, TextClause):
        return None  # a text statement's columns are known only from the cursor: SQLAlchemy's path
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.escaped_bind_names
        or compiled.positional
        or compiled.schema_translate_map
    ):
        return None
    columns = compiled._result_columns
    if not columns:
        return _DriverPlan(statement, compiled, None, None)
    keys = [column.keyname for column in columns]
    if len(set(keys)) != len(keys) or not all(key.isidentifier() for key in keys):
        return None
    processors = [column.type._cached_result_processor(dialect, None) for column in columns]
    row_type = namedtuple("AloneRow", keys, rename=True)
    return _DriverPlan(statement, compiled, row_type, processors if any(processors) else None)


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction: by ``COPY`` on PostgreSQL, else one INSERT.

    ``COPY … FROM STDIN`` takes 1,000 rows in a fraction of the time of a multi-row INSERT of the same
    rows: no 14,000 bound parameters to render on the client and to parse on the server.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    columns = list(rows[0])
    writers = [_copy_writer(table.c[name].type) for name in columns]
    lines = "".join(
        "\t".join([write(row[name]) for name, write in zip(columns, writers, strict=True)]) + "\n"
        for row in rows
    )
    names = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in columns)
    statement = f"COPY {connection.dialect.identifier_preparer.quote(table.name)} ({names}) FROM STDIN"
    driver_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(statement, io.StringIO(lines))
    except driver_error as exc:  # as SQLAlchemy would raise it: IntegrityError, OperationalError …
        raise DBAPIError.instance(statement, None, exc, driver_error, dialect=connection.dialect) from exc
    finally:
        cursor.close()


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


def fetch_page(session: Session, model, conditions, page: int, size: int, order_by=None) -> tuple[list, int]:
    """One page of ``model`` rows matching ``conditions`` (newest first by default) and the total count."""
    total = session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    ordering = order_by if order_by is not None else (model.created_at.desc(), model.id.desc())
    rows = session.scalars(
        select(model).where(*conditions).order_by(*ordering).offset((page - 1) * size).limit(size)
    ).all()
    return list(rows), total
