"""WeChat refund notifications: settle the refund exactly once; forged, duplicate, foreign or mismatched
notifications change nothing."""

from __future__ import annotations

import logging

import pytest

from payment_service.outbox import REFUND_FORWARD_TASK
from tests.payment.orders.helpers import DIRECT_SITE, order_of
from tests.payment.refunds.helpers import paid_order, refund_of, refunded

NOTIFY = "/api/v1/payment/notify/wechat/refunds"


@pytest.fixture
def processing_refund(payment_client, admin, fakes, sites, published):
    """A wechat_direct order of 20 yuan with a processing refund of 5; returns (transaction, refund id)."""
    wechat, _ = fakes
    transaction_id = paid_order(
        payment_client, admin, wechat, site_id=DIRECT_SITE, amount=20, notify_url="https://biz.example.com/cb"
    )
    return transaction_id, refunded(payment_client, admin, transaction_id, amount=5)["refund_id"]


def post(client, config_id: str, headers: dict, body: bytes):
    return client.post(f"{NOTIFY}/{config_id}", data=body, headers=headers)


def test_a_duplicate_notification_changes_nothing(
    payment_client, admin, fakes, sites, published, processing_refund
):
    wechat, _ = fakes
    transaction_id, refund_id = processing_refund
    assert wechat.settle_refund(refund_id).status == 204
    first = refund_of(payment_client, admin, refund_id)

    assert wechat.settle_refund(refund_id).status == 204  # WeChat redelivers
    assert refund_of(payment_client, admin, refund_id) == first
    order = order_of(payment_client, admin, transaction_id)
    assert (order["refunded_amount"], order["refunding_amount"], order["status"]) == (5.0, 0.0, "paid")
    assert published.of(REFUND_FORWARD_TASK) == [refund_id]


def test_a_forged_notification_is_refused(payment_client, admin, fakes, sites, published, processing_refund):
    wechat, _ = fakes
    _, refund_id = processing_refund
    refund = wechat.find_refund(refund_id)
    refund.status = "SUCCESS"
    headers, body = wechat.build_refund_notification(refund)
    tampered = {**headers, "Wechatpay-Signature": headers["Wechatpay-Signature"][:-4] + "AAAA"}

    answer = post(payment_client, sites["wechat_direct"], tampered, body)
    assert answer.status_code == 400 and answer.get_json() == {"code": "FAIL", "message": "失败"}
    assert post(payment_client, sites["wechat_split"], headers, body).status_code == 400  # another config
    assert refund_of(payment_client, admin, refund_id)["status"] == "processing"


def test_a_wrong_amount_changes_nothing_and_is_logged(
    payment_client, admin, fakes, sites, published, processing_refund, caplog
):
    wechat, _ = fakes
    transaction_id, refund_id = processing_refund
    refund = wechat.find_refund(refund_id)
    refund.status = "SUCCESS"
    headers, body = wechat.build_refund_notification(
        refund, amount={"total": 2000, "refund": 2000, "payer_total": 2000, "payer_refund": 2000}
    )
    with caplog.at_level(logging.ERROR, logger="payment_service.refunds.notifications"):
        answer = post(payment_client, sites["wechat_direct"], headers, body)

    assert answer.status_code == 400
    assert f"refund {refund_id}: notified 2000 of 2000 fen, asked 500 of 2000 fen" in caplog.text
    assert refund_of(payment_client, admin, refund_id)["status"] == "processing"
    assert order_of(payment_client, admin, transaction_id)["refunded_amount"] == 0.0


def test_abnormal_ends_the_refund_failed_for_an_operator(
    payment_client, admin, fakes, sites, published, processing_refund, caplog
):
    wechat, _ = fakes
    transaction_id, refund_id = processing_refund
    with caplog.at_level(logging.WARNING, logger="payment_service.refunds.states"):
        assert wechat.settle_refund(refund_id, status="ABNORMAL").status == 204

    shown = refund_of(payment_client, admin, refund_id)
    assert (shown["status"], shown["error_code"], shown["upstream_status"]) == (
        "failed",
        "REFUND_ABNORMAL",
        "ABNORMAL",
    )
    assert "ABNORMAL" in caplog.text and "merchant platform" in caplog.text
    assert order_of(payment_client, admin, transaction_id)["refunding_amount"] == 0.0


def test_closed_fails_the_refund_and_frees_its_amount(
    payment_client, admin, fakes, sites, published, processing_refund
):
    wechat, _ = fakes
    transaction_id, refund_id = processing_refund
    assert wechat.settle_refund(refund_id, status="CLOSED").status == 204
    shown = refund_of(payment_client, admin, refund_id)
    assert (shown["status"], shown["error_code"]) == ("failed", "REFUND_CLOSED")
    assert refunded(payment_client, admin, transaction_id, amount=20)["status"] == "processing"
