"""SQLAlchemy 2.x plumbing both services use: an engine and a scoped session per app, UTC times.

Each service declares its own models on its own ``MetaData``, in its own database.
"""

from __future__ import annotations

import os
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import DateTime, MetaData, create_engine, event, func, select
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

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
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    settings = {
        # An error's message never carries the bound values (mobiles, content, secrets) into a log.
        "hide_parameters": True,
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
    _replace_together(engine, alone)
    _AUTOCOMMIT_TWINS[engine] = alone
    return engine


_AUTOCOMMIT_TWINS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def dispose_engine(engine: Engine) -> None:
    """Close the pooled connections of ``engine`` and of its autocommit twin."""
    engine.dispose()
    twin = _AUTOCOMMIT_TWINS.get(engine)
    if twin is not None:
        twin.dispose()


def _replace_together(engine: Engine, twin: Engine) -> None:
    """A connection of one engine found dead makes the other's pooled connections go too.

    SQLAlchemy then replaces every connection of the pool whose connection failed (a restart or a
    failover ends them all); the twin's pool, a pool of its own, would otherwise hand out its dead
    connections one failed request at a time.
    """

    def _discard_the_other(other: Engine):
        def _on_error(context) -> None:
            if context.is_disconnect:
                other.dispose()

        return _on_error

    event.listen(engine, "handle_error", _discard_the_other(twin))
    event.listen(twin, "handle_error", _discard_the_other(engine))


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
    twin = autocommit_engine(session)
    if twin is None:
        result = session.execute(statement, parameters)
        # A DML statement without RETURNING returns no rows; an ORM result always does.
        rows = result.all() if getattr(result, "returns_rows", True) else []
        if commit:
            session.commit()
        return rows
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


def autocommit_engine(session: Session) -> Engine | None:
    """The autocommit twin of the session's engine, for a statement that runs alone; ``None`` when the session
    has begun a transaction or is bound to a connection (the statement then belongs to that)."""
    made = existing_session(session)
    if made is not None and made.in_transaction():
        return None
    bind = bind_of(session)
    return _AUTOCOMMIT_TWINS.get(bind) if isinstance(bind, Engine) else None


#: The deepest page a list answers: deeper pages would overflow the OFFSET; narrow the time range instead.
MAX_PAGE = 1_000_000


def fetch_page(session: Session, model, conditions, page: int, size: int, order_by=None) -> tuple[list, int]:
    """One page of ``model`` rows matching ``conditions`` (newest first by default) and the total count."""
    total = session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    ordering = order_by if order_by is not None else (model.created_at.desc(), model.id.desc())
    rows = session.scalars(
        select(model).where(*conditions).order_by(*ordering).offset((page - 1) * size).limit(size)
    ).all()
    return list(rows), total
