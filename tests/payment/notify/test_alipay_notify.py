"""POST /api/v1/payment/notify/alipay[/{config_id}]: RSA2 over every parameter but sign and sign_type."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from payment_service.models import PaymentOrder
from payment_service.outbox import FORWARD_TASK
from tests.payment.orders.helpers import ALIPAY_SITE, order_of, placed


@pytest.fixture
def order(payment_client, admin, fakes, sites):
    return placed(
        payment_client,
        admin,
        site_id=ALIPAY_SITE,
        channel="alipay",
        amount=12.5,
        notify_url="https://biz.example.com/cb",
    )


def _paid_trade(alipay, order):
    trade = alipay.find_trade(order["transaction_id"])
    trade.trade_status, trade.gmt_payment = "TRADE_SUCCESS", "2026-05-10 18:00:05"
    return trade


def test_trade_success_answers_success_and_marks_paid_once(payment_client, admin, fakes, order, published):
    _, alipay = fakes
    delivery = alipay.pay(order["transaction_id"])
    assert (delivery.status, delivery.body) == (200, "success")
    data = order_of(payment_client, admin, order["transaction_id"])
    assert data["status"] == "paid"
    assert data["channel_transaction_id"] == alipay.find_trade(order["transaction_id"]).trade_no
    paid_beijing = datetime.strptime(
        alipay.find_trade(order["transaction_id"]).gmt_payment, "%Y-%m-%d %H:%M:%S"
    )
    assert data["paid_at"] == (paid_beijing - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert alipay.pay(order["transaction_id"]).body == "success"
    assert published.of(FORWARD_TASK) == [order["transaction_id"]]


def test_trade_finished_counts_as_paid_on_the_contract_path(payment_client, admin, fakes, order, published):
    _, alipay = fakes
    form = alipay.build_notification(_paid_trade(alipay, order), trade_status="TRADE_FINISHED")
    response = payment_client.post("/api/v1/payment/notify/alipay", data=form)
    assert response.get_data(as_text=True) == "success"
    assert order_of(payment_client, admin, order["transaction_id"])["status"] == "paid"


def test_wait_buyer_pay_is_acknowledged_without_a_change(payment_client, admin, fakes, order, published):
    _, alipay = fakes
    form = alipay.build_notification(alipay.find_trade(order["transaction_id"]))
    response = payment_client.post("/api/v1/payment/notify/alipay", data=form)
    assert response.get_data(as_text=True) == "success"
    assert order_of(payment_client, admin, order["transaction_id"])["status"] == "pending"


@pytest.mark.parametrize("case", ["bad_signature", "wrong_amount", "wrong_app", "unknown_order"])
def test_forged_notifications_answer_fail_and_change_nothing(
    payment_client, payment_db, fakes, sites, order, published, case
):
    _, alipay = fakes
    trade = _paid_trade(alipay, order)
    if case == "bad_signature":
        form = {**alipay.build_notification(trade), "total_amount": "0.01"}
    elif case == "wrong_amount":
        form = alipay.build_notification(trade, total_amount="0.01")
    elif case == "wrong_app":
        form = alipay.build_notification(trade, app_id="2021000000000000")
    else:
        form = alipay.build_notification(trade, out_trade_no="TXN_20260510_nosuchorder000000")
    for url in ("/api/v1/payment/notify/alipay", f"/api/v1/payment/notify/alipay/{sites['alipay_direct']}"):
        response = payment_client.post(url, data=form)
        assert response.status_code == 400 and response.get_data(as_text=True) == "fail"
    stored = payment_db.get(PaymentOrder, order["transaction_id"])
    payment_db.refresh(stored)
    assert stored.status == "pending" and published.tasks == []
