"""POST /api/v1/payment/notify/wechat[/{config_id}]: verified, matched, paid once; forgeries refused."""

from __future__ import annotations

import json

import pytest

from payment_service.models import OrderForward, PaymentOrder, ProfitSharing
from payment_service.outbox import FORWARD_TASK, PROFIT_SHARING_TASK
from tests.payment.orders.helpers import DIRECT_SITE, order_of, placed

WECHAT_FAIL = {"code": "FAIL", "message": "失败"}


@pytest.fixture
def order(payment_client, admin, fakes, sites):
    return placed(payment_client, admin, amount=20, notify_url="https://biz.example.com/pay/callback")


def test_paid_notification_answers_204_and_marks_the_order_paid_once(
    payment_client, admin, payment_db, fakes, order, published
):
    wechat, _ = fakes
    delivery = wechat.pay(order["transaction_id"])
    assert delivery.status == 204 and delivery.body == ""

    data = order_of(payment_client, admin, order["transaction_id"])
    fake_order = wechat.find_order(order["transaction_id"])
    assert data["status"] == "paid" and data["channel_transaction_id"] == fake_order.transaction_id
    assert data["paid_at"].endswith("Z")
    assert data["forwarding"]["status"] == "pending"
    assert data["profit_sharing"]["status"] == "pending"
    assert published.of(FORWARD_TASK) == [order["transaction_id"]]
    assert published.of(PROFIT_SHARING_TASK) == [order["transaction_id"]]

    for _ in range(3):  # WeChat redelivers
        assert wechat.pay(order["transaction_id"]).status == 204
    assert len(published.tasks) == 2
    forwards = payment_db.query(OrderForward).filter_by(order_id=order["transaction_id"]).count()
    sharings = payment_db.query(ProfitSharing).filter_by(order_id=order["transaction_id"]).count()
    assert (forwards, sharings) == (1, 1)


def test_the_contract_path_finds_the_config_by_wechatpay_serial(
    payment_client, admin, fakes, order, published
):
    wechat, _ = fakes
    headers, body = wechat.build_notification(_paid(wechat, order))
    response = payment_client.post("/api/v1/payment/notify/wechat", data=body, headers=headers)
    assert response.status_code == 204 and response.get_data() == b""
    assert order_of(payment_client, admin, order["transaction_id"])["status"] == "paid"


def test_direct_mode_notification(payment_client, admin, fakes, sites, published):
    wechat, _ = fakes
    direct = placed(payment_client, admin, site_id=DIRECT_SITE)
    assert wechat.pay(direct["transaction_id"]).status == 204
    data = order_of(payment_client, admin, direct["transaction_id"])
    assert data["status"] == "paid" and data["profit_sharing"] is None and data["forwarding"] is None
    assert published.tasks == []


def _paid(wechat, order):
    """Mark the order paid inside the fake without delivering, and return it for a hand-made notification."""
    fake_order = wechat.find_order(order["transaction_id"])
    fake_order.trade_state, fake_order.transaction_id = "SUCCESS", "4200000000000000000000000001"
    fake_order.success_time = "2026-05-10T18:00:05+08:00"
    return fake_order


def _forged(wechat, fake_order, case):
    if case == "bad_signature":
        headers, body = wechat.build_notification(fake_order)
        return headers, body.replace(b'"summary":"', b'"summary":"x')
    if case == "wrong_amount":
        return wechat.build_notification(fake_order, amount={"total": 1, "currency": "CNY"})
    if case == "wrong_merchant":
        return wechat.build_notification(fake_order, sub_mchid="1900009999")
    if case == "unknown_order":
        return wechat.build_notification(fake_order, out_trade_no="TXN_20260510_doesnotexist000000")
    if case == "stale_timestamp":
        headers, body = wechat.build_notification(fake_order)
        return {
            **headers,
            **wechat.signature_headers(body, timestamp=int(headers["Wechatpay-Timestamp"]) - 301),
        }, body
    if case == "other_key":
        headers, body = wechat.build_notification(fake_order)
        return {**headers, "Wechatpay-Serial": "PUB_KEY_ID_SOMEONE_ELSE"}, body
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["bad_signature", "wrong_amount", "wrong_merchant", "unknown_order", "stale_timestamp", "other_key"],
)
@pytest.mark.parametrize("path", ["config", "contract"])
def test_forged_notifications_change_nothing(
    payment_client, admin, payment_db, fakes, sites, order, published, case, path, caplog
):
    wechat, _ = fakes
    headers, body = _forged(wechat, _paid(wechat, order), case)
    url = "/api/v1/payment/notify/wechat" + (f"/{sites['wechat_split']}" if path == "config" else "")
    response = payment_client.post(url, data=body, headers=headers)

    assert 400 <= response.status_code < 500
    assert json.loads(response.get_data()) == WECHAT_FAIL
    stored = payment_db.get(PaymentOrder, order["transaction_id"])
    payment_db.refresh(stored)
    assert stored.status == "pending" and stored.channel_transaction_id is None
    assert published.tasks == []
    assert any("notification refused" in record.getMessage() for record in caplog.records)


def test_notification_to_an_unknown_config_is_refused(payment_client, fakes, order):
    wechat, _ = fakes
    headers, body = wechat.build_notification(_paid(wechat, order))
    response = payment_client.post(
        "/api/v1/payment/notify/wechat/CFG_20260510_unknown", data=body, headers=headers
    )
    assert response.status_code == 400 and json.loads(response.get_data()) == WECHAT_FAIL


def test_unexpected_failure_is_a_5xx_in_wechat_format(payment_client, fakes, order, monkeypatch):
    from payment_service.orders import states

    wechat, _ = fakes
    headers, body = wechat.build_notification(_paid(wechat, order))

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("payment_service.orders.notifications.mark_paid", broken)
    assert states.mark_paid is not broken
    response = payment_client.post("/api/v1/payment/notify/wechat", data=body, headers=headers)
    assert response.status_code == 500 and json.loads(response.get_data()) == WECHAT_FAIL


def test_unknown_notify_path_and_method_answer_the_envelope(payment_client):
    missing = payment_client.post("/api/v1/payment/notify/unionpay")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404
    wrong_method = payment_client.get("/api/v1/payment/notify/wechat")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["code"] == 405


def test_an_order_without_profit_sharing_is_paid_and_owed_its_forward_in_one_statement(
    payment_client, admin, payment_db, fakes, sites, published, monkeypatch
):
    """No split: the transition and the forward row are one statement (no transaction); a split order
    still takes the transaction that records its receivers."""
    wechat, _ = fakes
    direct = placed(payment_client, admin, site_id=DIRECT_SITE, notify_url="https://biz.example.com/pay/cb")
    split = placed(payment_client, admin, notify_url="https://biz.example.com/pay/cb")

    def transaction_path(*_args, **_kwargs):
        raise AssertionError("the forward row was scheduled in a transaction")

    monkeypatch.setattr("payment_service.orders.states.schedule_forward", transaction_path)
    assert wechat.pay(direct["transaction_id"]).status == 204
    assert order_of(payment_client, admin, direct["transaction_id"])["status"] == "paid"
    assert payment_db.query(OrderForward).filter_by(order_id=direct["transaction_id"]).count() == 1
    assert published.of(FORWARD_TASK) == [direct["transaction_id"]]

    assert wechat.pay(split["transaction_id"]).status == 500  # the split order needs that transaction
    assert order_of(payment_client, admin, split["transaction_id"])["status"] == "pending"
