"""Beat settles refunds left processing: a lost notification, a call that timed out, an Alipay N."""

from __future__ import annotations

from datetime import timedelta

from payment_service.models import Refund
from payment_service.outbox import REFUND_TASK
from payment_service.refunds.reconciliation import query_processing_refunds
from payment_service.refunds.sending import advance_refund
from shared.db import utcnow
from tests.payment.orders.helpers import ALIPAY_SITE, DIRECT_SITE, order_of
from tests.payment.refunds.helpers import ask_refund, paid_order, refund_of, refunded


def age(session, refund_id: str, seconds: int) -> None:
    refund = session.get(Refund, refund_id)
    refund.created_at -= timedelta(seconds=seconds)
    if refund.requested_at is not None:
        refund.requested_at -= timedelta(seconds=seconds)
    if refund.last_queried_at is not None:
        refund.last_queried_at -= timedelta(seconds=seconds)
    session.commit()


def test_a_lost_wechat_notification_is_settled_by_a_query(
    payment_client, admin, payment_db, fakes, sites, published
):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, site_id=DIRECT_SITE, amount=20)
    refund_id = refunded(payment_client, admin, transaction_id, amount=20)["refund_id"]
    fake_refund = wechat.find_refund(refund_id)
    fake_refund.status, fake_refund.success_time = "SUCCESS", "2026-05-10T18:00:05+08:00"  # notice lost

    assert query_processing_refunds(payment_db) == 0  # too young
    age(payment_db, refund_id, 301)
    assert query_processing_refunds(payment_db) == 1
    assert refund_of(payment_client, admin, refund_id)["success_at"] == "2026-05-10T10:00:05Z"
    assert order_of(payment_client, admin, transaction_id)["status"] == "refunded"
    assert query_processing_refunds(payment_db) == 0
    assert wechat.calls["refund"] == 1 and wechat.calls["query_refund"] == 1


def test_a_refund_that_timed_out_before_reaching_the_upstream_is_sent_again_with_its_id(
    payment_client, admin, payment_db, fakes, sites, published
):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=20
    )
    alipay.fail_next(kind="error", status=502, method="alipay.trade.refund")
    answer = ask_refund(payment_client, admin, transaction_id, amount=20)
    assert answer.status_code == 502
    refund_id = answer.get_json()["data"]["refund_id"]

    age(payment_db, refund_id, 301)
    assert query_processing_refunds(payment_db) == 1  # queried: nothing there, ≥ 10 s after: sent again
    assert refund_of(payment_client, admin, refund_id)["status"] == "success"
    assert [r.out_request_no for r in alipay.refunds.values()] == [refund_id]
    assert alipay.calls["alipay.trade.refund"] == 2 and alipay.calls["alipay.trade.fastpay.refund.query"] == 1
    assert alipay.refundable(transaction_id) == "0.00"


def test_nothing_found_too_soon_after_the_call_waits_rather_than_sends_again(
    payment_client, admin, payment_db, payment_app, fakes, sites, published, monkeypatch
):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=20
    )
    alipay.fail_next(kind="error", status=502, method="alipay.trade.refund")
    refund_id = ask_refund(payment_client, admin, transaction_id, amount=20).get_json()["data"]["refund_id"]

    advance_refund(payment_db, refund_id)  # at once: < 10 s after the call
    assert alipay.calls["alipay.trade.refund"] == 1
    [(task, countdown)] = [(name, c) for name, rid, c in published.tasks if rid == refund_id]
    assert task == REFUND_TASK and 0 < countdown <= 10


def test_an_alipay_fund_change_n_is_settled_by_asking(
    payment_client, admin, payment_db, fakes, sites, published
):
    _, alipay = fakes
    alipay.refund_fund_change = False
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=20
    )
    data = refunded(payment_client, admin, transaction_id, amount=8)
    assert data["status"] == "processing"
    assert published.of(REFUND_TASK) == [data["refund_id"]]

    advance_refund(payment_db, data["refund_id"])  # the task: a query, which settles it
    shown = refund_of(payment_client, admin, data["refund_id"])
    assert shown["status"] == "success" and shown["upstream_status"] == "REFUND_SUCCESS"
    assert alipay.calls["alipay.trade.refund"] == 1
    order = order_of(payment_client, admin, transaction_id)
    assert (order["refunded_amount"], order["status"]) == (8.0, "paid")


def test_a_frequency_limited_refund_is_sent_when_due(
    payment_client, admin, payment_db, fakes, sites, published
):
    wechat, _ = fakes
    wechat.config.refund_interval_ms = 60_000
    transaction_id = paid_order(payment_client, admin, wechat, site_id=DIRECT_SITE, amount=20)
    refunded(payment_client, admin, transaction_id, amount=5)
    limited = refunded(payment_client, admin, transaction_id, amount=5)["refund_id"]

    advance_refund(payment_db, limited)  # the task arriving early: not due, nothing sent
    assert wechat.calls["refund"] == 2
    wechat.config.refund_interval_ms = 0
    refund = payment_db.get(Refund, limited)
    refund.next_attempt_at = utcnow()
    payment_db.commit()
    advance_refund(payment_db, limited)
    assert wechat.calls["refund"] == 3
    assert wechat.find_refund(limited).refund == 500
    assert refund_of(payment_client, admin, limited)["status"] == "processing"
