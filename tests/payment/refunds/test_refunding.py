"""Refund requests on both channels against the fakes: reservation, idempotency, errors, settlement."""

from __future__ import annotations

import pytest

from payment_service.outbox import REFUND_FORWARD_TASK, REFUND_TASK
from tests.payment.conftest import headers_of
from tests.payment.orders.helpers import ALIPAY_SITE, DIRECT_SITE, ORDERS_URL, order_of, placed
from tests.payment.refunds.helpers import ask_refund, paid_order, refund_of, refunded


def test_a_wechat_refund_is_processing_until_the_notification_settles_it(
    payment_client, admin, fakes, sites, published
):
    wechat, _ = fakes
    transaction_id = paid_order(
        payment_client, admin, wechat, site_id=DIRECT_SITE, amount=20, notify_url="https://biz.example.com/cb"
    )

    data = refunded(
        payment_client,
        admin,
        transaction_id,
        amount=20.00,
        reason="洗衣机故障",
        out_refund_no="R-20260510-0001",
    )
    assert data["status"] == "processing" and data["refund_id"].startswith("RFD_")
    assert (data["transaction_id"], data["amount"], data["reason"]) == (transaction_id, 20.0, "洗衣机故障")
    upstream = wechat.find_refund(data["refund_id"])
    assert (upstream.refund, upstream.total, upstream.reason) == (2000, 2000, "洗衣机故障")
    assert upstream.notify_url.endswith(f"/api/v1/payment/notify/wechat/refunds/{sites['wechat_direct']}")
    order = order_of(payment_client, admin, transaction_id)
    assert (order["status"], order["refunding_amount"], order["refunded_amount"]) == ("paid", 20.0, 0.0)

    delivery = wechat.settle_refund(data["refund_id"])
    assert delivery.status == 204
    shown = refund_of(payment_client, admin, data["refund_id"])
    assert shown["status"] == "success" and shown["success_at"].endswith("Z")
    assert shown["channel_refund_id"] == upstream.refund_id
    order = order_of(payment_client, admin, transaction_id)
    assert (order["status"], order["refunding_amount"], order["refunded_amount"]) == ("refunded", 0.0, 20.0)
    assert published.of(REFUND_FORWARD_TASK) == [data["refund_id"]]


def test_two_alipay_partial_refunds_summing_to_the_payment_refund_the_order(
    payment_client, admin, fakes, sites, published
):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=20.07
    )

    first = refunded(payment_client, admin, transaction_id, amount=5.07)
    assert first["status"] == "success"  # fund_change Y
    assert order_of(payment_client, admin, transaction_id)["status"] == "paid"
    second = refunded(payment_client, admin, transaction_id, amount="15.00")
    assert second["status"] == "success"

    order = order_of(payment_client, admin, transaction_id)
    assert (order["status"], order["refunded_amount"], order["refunding_amount"]) == ("refunded", 20.07, 0.0)
    assert alipay.refundable(transaction_id) == "0.00"
    assert alipay.calls["alipay.trade.refund"] == 2
    listed = payment_client.get(
        f"{ORDERS_URL}/{transaction_id}/refunds?page=1&size=1", headers=headers_of(admin)
    ).get_json()["data"]
    assert (listed["total"], listed["page"], listed["size"]) == (2, 1, 1)
    assert [item["refund_id"] for item in listed["list"]] == [second["refund_id"]]
    by_status = payment_client.get(f"{ORDERS_URL}?status=refunded", headers=headers_of(admin)).get_json()
    assert [item["transaction_id"] for item in by_status["data"]["list"]] == [transaction_id]
    again = ask_refund(payment_client, admin, transaction_id, amount=0.01)
    assert again.status_code == 409 and again.get_json()["message"] == "订单已全额退款"


def test_more_than_is_refundable_is_refused_naming_the_amount(payment_client, admin, fakes, sites, published):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=10
    )
    refunded(payment_client, admin, transaction_id, amount=6)

    answer = ask_refund(payment_client, admin, transaction_id, amount=4.01)
    body = answer.get_json()
    assert answer.status_code == 400 and "amount" in body["data"]["errors"]
    assert body["data"]["refundable"] == 4.0
    assert alipay.calls["alipay.trade.refund"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 1.001}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({}, "amount"),
        ({"amount": 1, "reason": "坏" * 27}, "reason"),  # 81 bytes of UTF-8
        ({"amount": 1, "out_refund_no": "R 1"}, "out_refund_no"),
        ({"amount": 1, "out_refund_no": "R" * 65}, "out_refund_no"),
        ({"amount": 1, "notify_url": "ftp://biz.example.com/cb"}, "notify_url"),
        ({"amount": 1, "notify_url": "http://127.0.0.1/cb"}, "notify_url"),
    ],
)
def test_bad_fields_are_400_naming_them(payment_client, admin, fakes, sites, published, body, field):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=10
    )
    answer = payment_client.post(
        f"{ORDERS_URL}/{transaction_id}/refunds", json=body, headers=headers_of(admin)
    )
    assert answer.status_code == 400, answer.get_json()
    assert field in answer.get_json()["data"]["errors"]
    assert alipay.calls["alipay.trade.refund"] == 0


def test_a_reason_of_80_bytes_is_taken(payment_client, admin, fakes, sites, published):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=10
    )
    data = refunded(payment_client, admin, transaction_id, amount=1, reason="坏" * 26 + "ab")
    assert data["reason"] == "坏" * 26 + "ab"


def test_unpaid_and_foreign_orders(payment_client, admin, other_admin, fakes, sites, published):
    wechat, _ = fakes
    pending = placed(payment_client, admin, site_id=DIRECT_SITE)["transaction_id"]
    answer = ask_refund(payment_client, admin, pending, amount=1)
    assert answer.status_code == 409 and answer.get_json()["message"] == "订单未支付,不能退款"

    paid = paid_order(payment_client, admin, wechat, site_id=DIRECT_SITE)
    assert ask_refund(payment_client, other_admin, paid, amount=1).status_code == 404
    assert ask_refund(payment_client, admin, "TXN_20260510_nope", amount=1).status_code == 404
    refund_id = refunded(payment_client, admin, paid, amount=1)["refund_id"]
    assert (
        payment_client.get(
            f"/api/v1/payment/refunds/{refund_id}", headers=headers_of(other_admin)
        ).status_code
        == 404
    )
    assert (
        payment_client.get(f"{ORDERS_URL}/{paid}/refunds", headers=headers_of(other_admin)).status_code == 404
    )
    assert len(wechat.refunds) == 1


def test_the_same_out_refund_no_is_the_same_refund_and_another_amount_a_conflict(
    payment_client, admin, fakes, sites, published
):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, site_id=DIRECT_SITE, amount=20)
    first = refunded(payment_client, admin, transaction_id, amount=5, out_refund_no="R-1")
    again = refunded(payment_client, admin, transaction_id, amount=5.00, out_refund_no="R-1")
    assert again["refund_id"] == first["refund_id"]

    conflict = ask_refund(payment_client, admin, transaction_id, amount=6, out_refund_no="R-1")
    body = conflict.get_json()
    assert conflict.status_code == 409
    assert body["data"]["differences"] == {"amount": {"first": 5.0, "now": 6.0}}
    assert wechat.calls["refund"] == 1
    assert order_of(payment_client, admin, transaction_id)["refunding_amount"] == 5.0


def test_an_upstream_refusal_is_502_and_the_refund_failed(payment_client, admin, fakes, sites, published):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, site_id=DIRECT_SITE, amount=20)
    wechat.fail_next(
        kind="error", status=403, code="NOT_ENOUGH", message="基本账户余额不足", endpoint="refund"
    )

    answer = ask_refund(payment_client, admin, transaction_id, amount=5)
    body = answer.get_json()
    assert answer.status_code == 502
    assert (body["data"]["upstream_code"], body["data"]["upstream_message"]) == (
        "NOT_ENOUGH",
        "基本账户余额不足",
    )
    assert body["data"]["status"] == "failed"
    shown = refund_of(payment_client, admin, body["data"]["refund_id"])
    assert shown["status"] == "failed" and shown["error_code"] == "NOT_ENOUGH"
    order = order_of(payment_client, admin, transaction_id)
    assert (order["refunding_amount"], order["refunded_amount"]) == (0.0, 0.0)
    assert refunded(payment_client, admin, transaction_id, amount=20)["status"] == "processing"


def test_an_upstream_timeout_is_502_and_the_refund_stays_processing(
    payment_client, admin, fakes, sites, published
):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=20
    )
    alipay.fail_next(kind="error", status=502, method="alipay.trade.refund")

    answer = ask_refund(payment_client, admin, transaction_id, amount=5)
    assert answer.status_code == 502
    refund_id = answer.get_json()["data"]["refund_id"]
    assert refund_of(payment_client, admin, refund_id)["status"] == "processing"
    assert order_of(payment_client, admin, transaction_id)["refunding_amount"] == 5.0
    assert published.of(REFUND_TASK) == []  # reconciliation asks, after PAYMENT_REFUND_QUERY_AFTER_SECONDS


def test_the_frequency_limit_keeps_the_refund_processing_and_retries_it_later(
    payment_client, admin, payment_app, fakes, sites, published, monkeypatch
):
    wechat, _ = fakes
    monkeypatch.setitem(payment_app.config, "REFUND_RETRY_SECONDS", 42.0)
    wechat.config.refund_interval_ms = 60_000
    transaction_id = paid_order(payment_client, admin, wechat, site_id=DIRECT_SITE, amount=20)
    refunded(payment_client, admin, transaction_id, amount=5)

    second = refunded(payment_client, admin, transaction_id, amount=5)
    assert second["status"] == "processing"
    assert [(name, countdown) for name, refund_id, countdown in published.tasks if name == REFUND_TASK] == [
        (REFUND_TASK, 42.0)
    ]
    shown = refund_of(payment_client, admin, second["refund_id"])
    assert shown["status"] == "processing" and shown["upstream_error"]["upstream_code"] == "FREQUENCY_LIMITED"
    assert order_of(payment_client, admin, transaction_id)["refunding_amount"] == 10.0
