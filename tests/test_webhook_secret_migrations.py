"""The migrations to Standard Webhooks, run on rows stored at the previous revision: each old secret becomes
``whsec_`` + base64 of its bytes (the same HMAC key), and payment's attempts move to the shared columns."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from shared.webhooks import webhook_headers
from tests.e2e.processes import run_cli, service_env

OLD_SECRET = "Xk3_9-token-urlsafe-43-characters-long-abcd"
BODY = b'{"event":"sms.result","data":{"message_id":"MSG_1"}}'
NOW = datetime(2026, 5, 1, tzinfo=UTC)


def table(name: str, *columns: str) -> sa.TableClause:
    """The table as it is at the revision the rows are written at, not as the models describe it now."""
    return sa.table(name, *(sa.column(column) for column in columns))


def assert_same_key(converted: str) -> None:
    assert converted == "whsec_" + base64.b64encode(OLD_SECRET.encode()).decode()
    headers = webhook_headers("sms_result_MSG_1", BODY, [converted])
    # A receiver keeping its old secret as the raw key verifies what the converted one signs; so does whsec_.
    Webhook(OLD_SECRET.encode()).verify(BODY, headers)
    Webhook(converted).verify(BODY, headers)


@pytest.fixture
def sms_database(databases):
    url = databases.create("sms_migration")
    engine = sa.create_engine(url)
    yield engine, service_env("SMS", ENV="testing", DATABASE_URL=url)
    engine.dispose()


@pytest.fixture
def payment_database(databases):
    url = databases.create("payment_migration")
    engine = sa.create_engine(url)
    yield engine, service_env("PAYMENT", ENV="testing", DATABASE_URL=url)
    engine.dispose()


def secret_of(engine, column: str) -> str:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT {column} FROM tenants WHERE id = 'TNT_1'")).scalar()


def test_sms_callback_secrets_are_converted_and_back(sms_database):
    engine, env = sms_database
    run_cli("sms_service", env, "db", "upgrade", "0004")
    tenants = table("tenants", "id", "name", "daily_quota", "callback_secret", "created_at")
    with engine.begin() as connection:
        connection.execute(
            tenants.insert().values(
                id="TNT_1", name="old", daily_quota=100, callback_secret=OLD_SECRET, created_at=NOW
            )
        )

    run_cli("sms_service", env, "db", "upgrade")
    assert_same_key(secret_of(engine, "callback_secret"))
    assert secret_of(engine, "previous_callback_secret") is None

    run_cli("sms_service", env, "db", "downgrade", "0004")
    assert secret_of(engine, "callback_secret") == OLD_SECRET


def test_payment_notify_secrets_are_converted_and_attempts_move_to_the_shared_columns(payment_database):
    engine, env = payment_database
    run_cli("payment_service", env, "db", "upgrade", "0003")
    tenants = table("tenants", "id", "name", "notify_secret", "created_at")
    orders = table(
        "payment_orders",
        *("id", "tenant_id", "site_id", "channel", "mode", "config_id", "amount_fen", "description"),
        *("payer_id", "status", "created_at", "updated_at", "expire_at"),
    )
    forwards = table(
        "order_forwards", "id", "order_id", "url", "status", "attempts", "next_attempt_at", "created_at"
    )
    attempts = table("forward_attempts", "forward_id", "number", "at", "http_status", "duration_ms")
    with engine.begin() as connection:
        connection.execute(
            tenants.insert().values(id="TNT_1", name="old", notify_secret=OLD_SECRET, created_at=NOW)
        )
        for order_id, status, answers in (
            ("TXN_A", "delivered", (503, 200)),
            ("TXN_B", "failed", (503, 503)),
        ):
            connection.execute(
                orders.insert().values(
                    id=order_id,
                    tenant_id="TNT_1",
                    site_id="SITE",
                    channel="wechat",
                    mode="wechat_direct",
                    config_id="CFG_1",
                    amount_fen=100,
                    description="洗衣",
                    payer_id="openid",
                    status="paid",
                    created_at=NOW,
                    updated_at=NOW,
                    expire_at=NOW,
                )
            )
            forward_id = connection.execute(
                forwards.insert()
                .values(
                    order_id=order_id,
                    url="https://biz.example.com/cb",
                    status=status,
                    attempts=len(answers),
                    next_attempt_at=NOW,
                    created_at=NOW,
                )
                .returning(forwards.c.id)
            ).scalar()
            for number, answer in enumerate(answers, start=1):
                connection.execute(
                    attempts.insert().values(
                        forward_id=forward_id, number=number, at=NOW, http_status=answer, duration_ms=5
                    )
                )

    run_cli("payment_service", env, "db", "upgrade")
    assert_same_key(secret_of(engine, "notify_secret"))
    with engine.connect() as connection:
        recorded = connection.execute(
            sa.text(
                "SELECT f.order_id, a.attempt, a.status_code, a.outcome FROM forward_attempts a"
                " JOIN order_forwards f ON f.id = a.forward_id ORDER BY f.order_id, a.attempt"
            )
        ).all()
    assert [tuple(row) for row in recorded] == [
        ("TXN_A", 1, 503, "retry"),
        ("TXN_A", 2, 200, "delivered"),
        ("TXN_B", 1, 503, "retry"),
        ("TXN_B", 2, 503, "gave_up"),
    ]

    run_cli("payment_service", env, "db", "downgrade", "0003")
    assert secret_of(engine, "notify_secret") == OLD_SECRET
    with engine.connect() as connection:
        restored = connection.execute(sa.text("SELECT number, http_status FROM forward_attempts")).all()
    assert sorted(tuple(row) for row in restored) == [(1, 503), (1, 503), (2, 200), (2, 503)]
