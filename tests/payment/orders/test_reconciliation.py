"""Beat work: expired orders closed upstream; pending orders queried so a lost notification ends paid."""

from __future__ import annotations

from datetime import timedelta

from payment_service.models import PaymentOrder
from payment_service.orders.reconciliation import close_expired_orders, query_pending_orders
from payment_service.outbox import FORWARD_TASK
from shared.db import utcnow
from tests.payment.orders.helpers import ALIPAY_SITE, DIRECT_SITE, order_of, placed


def age(session, transaction_id: str, minutes: int) -> None:
    """Pretend the order was placed ``minutes`` ago (its expiry moves with it)."""
    order = session.get(PaymentOrder, transaction_id)
    order.created_at -= timedelta(minutes=minutes)
    order.expire_at -= timedelta(minutes=minutes)
    session.commit()


def pay_silently(wechat, transaction_id: str) -> None:
    """The payer pays, but the notification is lost."""
    fake_order = wechat.find_order(transaction_id)
    fake_order.trade_state, fake_order.transaction_id = "SUCCESS", "4200000000000000000000000009"
    fake_order.success_time = "2026-05-10T18:00:05+08:00"


def test_expired_orders_are_closed_upstream_then_here(
    payment_client, admin, payment_db, fakes, sites, published
):
    wechat, alipay = fakes
    wechat_order = placed(payment_client, admin, site_id=DIRECT_SITE)["transaction_id"]
    alipay_order = placed(payment_client, admin, site_id=ALIPAY_SITE, channel="alipay")["transaction_id"]
    fresh = placed(payment_client, admin, site_id=DIRECT_SITE)["transaction_id"]
    age(payment_db, wechat_order, 121)
    age(payment_db, alipay_order, 121)

    assert close_expired_orders(payment_db) == 2
    assert wechat.find_order(wechat_order).trade_state == "CLOSED"
    assert alipay.find_trade(alipay_order).trade_status == "TRADE_CLOSED"
    assert order_of(payment_client, admin, wechat_order)["status"] == "closed"
    assert order_of(payment_client, admin, alipay_order)["closed_at"].endswith("Z")
    assert order_of(payment_client, admin, fresh)["status"] == "pending"


def test_an_expired_order_that_was_paid_ends_paid_not_closed(
    payment_client, admin, payment_db, fakes, sites, published
):
    wechat, _ = fakes
    transaction_id = placed(
        payment_client, admin, site_id=DIRECT_SITE, notify_url="https://biz.example.com/cb"
    )["transaction_id"]
    pay_silently(wechat, transaction_id)
    age(payment_db, transaction_id, 121)
    close_expired_orders(payment_db)
    assert order_of(payment_client, admin, transaction_id)["status"] == "paid"
    assert wechat.find_order(transaction_id).trade_state == "SUCCESS"
    assert published.of(FORWARD_TASK) == [transaction_id]


def test_an_order_the_upstream_never_created_is_closed_on_expiry(
    payment_client, admin, payment_db, fakes, sites, published
):
    wechat, _ = fakes
    wechat.fail_next(kind="error", status=500)
    transaction_id = payment_client.post(
        "/api/v1/payment/order",
        json={
            "site_id": DIRECT_SITE,
            "channel": "wechat",
            "amount": 1,
            "description": "洗",
            "payer_id": "o1",
        },
        headers={"X-Api-Key": admin},
    ).get_json()["data"]["transaction_id"]
    age(payment_db, transaction_id, 121)
    assert close_expired_orders(payment_db) == 1
    assert order_of(payment_client, admin, transaction_id)["status"] == "closed"


def test_pending_orders_older_than_ten_minutes_are_queried_and_a_lost_payment_is_found(
    payment_client, admin, payment_db, fakes, sites, published
):
    wechat, _ = fakes
    lost = placed(payment_client, admin, site_id=DIRECT_SITE, notify_url="https://biz.example.com/cb")[
        "transaction_id"
    ]
    young = placed(payment_client, admin, site_id=DIRECT_SITE)["transaction_id"]
    pay_silently(wechat, lost)
    pay_silently(wechat, young)
    age(payment_db, lost, 11)
    age(payment_db, young, 5)

    assert query_pending_orders(payment_db) == 1
    data = order_of(payment_client, admin, lost)
    assert data["status"] == "paid" and data["channel_transaction_id"] == "4200000000000000000000000009"
    assert data["paid_at"] == "2026-05-10T10:00:05Z"
    assert order_of(payment_client, admin, young)["status"] == "pending"
    assert published.of(FORWARD_TASK) == [lost]


def test_a_pending_order_is_queried_at_most_once_per_interval(
    payment_client, admin, payment_db, fakes, sites
):
    wechat, _ = fakes
    transaction_id = placed(payment_client, admin, site_id=DIRECT_SITE)["transaction_id"]
    age(payment_db, transaction_id, 11)
    seen = wechat.requests_seen
    assert query_pending_orders(payment_db) == 0
    assert wechat.requests_seen == seen + 1
    query_pending_orders(payment_db)
    assert wechat.requests_seen == seen + 1
    query_pending_orders(payment_db, now=utcnow() + timedelta(minutes=6))
    assert wechat.requests_seen == seen + 2
