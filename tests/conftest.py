"""Test databases and apps for both services.

One database per service per run: PostgreSQL when ``TEST_POSTGRES_URL`` points at a server
(e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``; by default the local server when it
answers), SQLite files otherwise; likewise ``TEST_BROKER_URL`` and ``TEST_REDIS_URL``. Each test runs
inside a transaction that is rolled back at its end; application commits become savepoints.
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from shared.db import Database, dispose_engine, normalize_url
from tests.factories import create_payment_tenant, create_sms_tenant


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _backend(variable: str, port: int, local_url: str) -> str:
    """An explicit variable wins (empty = off); otherwise the local server if it answers."""
    if variable in os.environ:
        return os.environ[variable]
    return local_url if _answers(port) else ""


POSTGRES_URL = normalize_url(
    _backend("TEST_POSTGRES_URL", 5432, "postgresql://postgres@127.0.0.1:5432/postgres")
)
BROKER_URL = _backend("TEST_BROKER_URL", 5672, "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = _backend("TEST_REDIS_URL", 6379, "redis://127.0.0.1:6379/15")

if os.environ.get("TEST_REQUIRE_SERVICES") == "1" and not (POSTGRES_URL and BROKER_URL and REDIS_URL):
    raise RuntimeError(
        "TEST_REQUIRE_SERVICES=1 but PostgreSQL, the broker or Redis does not answer: "
        f"postgres={POSTGRES_URL!r} broker={BROKER_URL!r} redis={REDIS_URL!r}"
    )
RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"


def pytest_report_header(config) -> list[str]:
    database = (
        f"PostgreSQL ({POSTGRES_URL})" if POSTGRES_URL else "SQLite (set TEST_POSTGRES_URL for PostgreSQL)"
    )
    broker = BROKER_URL or "none: end-to-end tests with a real broker are skipped (set TEST_BROKER_URL)"
    redis = REDIS_URL or "none (set TEST_REDIS_URL)"
    return [f"test database: {database}", f"test broker: {broker}", f"test redis: {redis}"]


class DatabaseFactory:
    """Creates throwaway databases (PostgreSQL or SQLite files) and drops them at the end of the run."""

    def __init__(self, tmp_dir) -> None:
        self.tmp_dir = tmp_dir
        self.created: list[str] = []

    def create(self, label: str) -> str:
        name = f"test_{label}_{RUN_ID}_{uuid.uuid4().hex[:6]}"
        if not POSTGRES_URL:
            return f"sqlite:///{self.tmp_dir / (name + '.sqlite')}"
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        return str(sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.created:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


def migrated_app(create_app, database_url: str, **overrides) -> Flask:
    app = create_app({"ENV": "testing", "DATABASE_URL": database_url, **overrides})
    with app.app_context():
        upgrade()
    return app


@contextmanager
def app_with_own_database(create_app, db: Database, celery, database_url: str) -> Iterator[Flask]:
    """A second app of a service on its own database, whose commits are real (for concurrent threads, or
    connections to be ended). A service's ``db`` and ``celery`` are process-wide, so building the app rebinds
    them; they are bound back to the session's test database afterwards."""
    saved_engine, saved_flask_app = db.engine, getattr(celery, "flask_app", None)
    app = migrated_app(create_app, database_url, PUBLISH_LINGER_MS=0)
    # rolled_back() leaves the factory on a savepoint mode SQLAlchemy 2.1 rejects for ordinary sessions.
    db.session.configure(join_transaction_mode="conditional_savepoint")
    try:
        yield app
    finally:
        db.session.remove()
        dispose_engine(db.engine)
        db.engine = saved_engine
        db.session.configure(bind=saved_engine)
        celery.flask_app = saved_flask_app


@contextmanager
def rolled_back(database: Database):
    """Bind the app's session to one connection whose outer transaction is rolled back afterwards."""
    connection = database.engine.connect()
    transaction = connection.begin()
    database.session.remove()
    database.session.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield database.session
    finally:
        database.session.remove()
        database.session.configure(bind=database.engine, join_transaction_mode="conditional_savepoint")
        transaction.rollback()
        connection.close()


# --- SMS service -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sms_app(databases) -> Flask:
    from sms_service import create_app

    # Accepted messages are published in the request's thread, where the tests record them.
    return migrated_app(create_app, databases.create("sms"), PUBLISH_LINGER_MS=0)


@pytest.fixture
def sms_db(sms_app):
    from sms_service.extensions import db

    with sms_app.app_context(), rolled_back(db) as session:
        yield session


@pytest.fixture
def sms_client(sms_app, sms_db):
    return sms_app.test_client()


@pytest.fixture
def sms_tenant(sms_db):
    """A tenant with a key holding every SMS scope: ``(tenant, api_key)``."""
    return create_sms_tenant(sms_db)


# --- Payment service ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def payment_app(databases) -> Flask:
    from payment_service import create_app

    # Forwards are published in the request's thread, where the tests record them.
    return migrated_app(create_app, databases.create("payment"), PUBLISH_LINGER_MS=0)


@pytest.fixture
def payment_db(payment_app):
    from payment_service.extensions import db

    with payment_app.app_context(), rolled_back(db) as session:
        yield session


@pytest.fixture
def payment_client(payment_app, payment_db):
    return payment_app.test_client()


@pytest.fixture
def payment_tenant(payment_db):
    """A tenant with a key holding every payment scope: ``(tenant, api_key)``."""
    return create_payment_tenant(payment_db)


def skip_unless_installed(tool: str | None, hint: str) -> None:
    """Skip when a tool is missing on a laptop; in CI (``TEST_REQUIRE_SERVICES=1``) a missing tool fails."""
    if tool is not None:
        return
    if os.environ.get("TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required in CI but not installed: {hint}")
    pytest.skip(f"not installed: {hint}")
