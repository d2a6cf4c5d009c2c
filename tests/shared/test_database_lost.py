"""A database whose server processes ended under a running app (a restart, a failover): the request that
meets a dead connection answers 503 in the envelope with ``Retry-After``, the next one is served."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, app_with_own_database
from tests.factories import create_sms_tenant

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (TEST_POSTGRES_URL)")


@pytest.fixture
def committed_app(sms_app, databases, monkeypatch):
    """An SMS app on a database of its own, whose commits are real and whose connections can be ended.

    ``sms_service.extensions.db`` is process-wide, so building a second app rebinds it; it is bound back
    to the session's test database afterwards.
    """
    from sms_service import create_app
    from sms_service.extensions import celery, db

    # No idle ping: a connection used a moment ago goes unchecked, so its death meets the next request.
    monkeypatch.setattr("shared.db.PING_AFTER_IDLE_SECONDS", 3600.0)
    with app_with_own_database(create_app, db, celery, databases.create("sms_lost")) as app:
        yield app


@pytest.fixture
def api_key(committed_app) -> str:
    from sms_service.extensions import db

    with committed_app.app_context():
        _, key = create_sms_tenant(db.session)
    return key


def end_every_connection(app) -> int:
    """End the server process of every connection to the app's database; how many there were."""
    name = make_url(app.config["DATABASE_URL"]).database
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        ended = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        ).scalar_one()
    admin.dispose()
    return ended


def me(app, client, api_key):
    app.extensions["api_key_auth"].forget()  # the key is looked up in the database on every request
    return client.get("/api/v1/sms/me", headers={"X-Api-Key": api_key})


def record(client, api_key):
    """A record looked up by a statement alone (none by this id: 404 while the database answers)."""
    return client.get("/api/v1/sms/records/MSG_nope", headers={"X-Api-Key": api_key})


def assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert set(body) == {"code", "data", "message"} and body["code"] == 503, body


def test_a_request_on_a_killed_connection_answers_503_and_the_next_is_served(committed_app, api_key):
    client = committed_app.test_client()
    assert me(committed_app, client, api_key).status_code == 200
    assert record(client, api_key).status_code == 404  # both pools hold a connection now
    assert end_every_connection(committed_app) >= 2

    assert_unavailable(me(committed_app, client, api_key))
    assert me(committed_app, client, api_key).status_code == 200
    assert record(client, api_key).status_code == 404  # the other pool's dead connection went too


def test_a_statement_alone_on_a_killed_connection_answers_503_and_the_next_is_served(committed_app, api_key):
    client = committed_app.test_client()
    assert me(committed_app, client, api_key).status_code == 200  # the key stays cached a few seconds
    assert record(client, api_key).status_code == 404
    assert end_every_connection(committed_app) >= 2

    assert_unavailable(record(client, api_key))
    assert record(client, api_key).status_code == 404
    assert me(committed_app, client, api_key).status_code == 200
