"""POST /orders/{id}/close: a pending order is closed upstream (WeChat partner or direct, Alipay) and here."""

from __future__ import annotations

import pytest

from tests.payment.conftest import headers_of
from tests.payment.orders.helpers import (
    ALIPAY_SITE,
    DIRECT_MCHID,
    DIRECT_SITE,
    ORDERS_URL,
    SP_MCHID,
    SUB_MCHID,
    WECHAT_SITE,
    placed,
)
from tests.payment.refunds.helpers import paid_order


def close(client, api_key: str, transaction_id: str):
    return client.post(f"{ORDERS_URL}/{transaction_id}/close", headers=headers_of(api_key))


@pytest.mark.parametrize(("site", "channel"), [(WECHAT_SITE, "wechat"), (DIRECT_SITE, "wechat")])
def test_a_pending_wechat_order_is_closed_upstream_then_here(
    payment_client, admin, fakes, sites, published, site, channel
):
    wechat, _ = fakes
    transaction_id = placed(payment_client, admin, site_id=site, channel=channel)["transaction_id"]

    answer = close(payment_client, admin, transaction_id)
    assert answer.status_code == 200, answer.get_json()
    data = answer.get_json()["data"]
    assert data["status"] == "closed" and data["closed_at"].endswith("Z")
    assert wechat.find_order(transaction_id).trade_state == "CLOSED"
    again = close(payment_client, admin, transaction_id)
    assert again.status_code == 200 and again.get_json()["data"] == data
    assert wechat.calls["close"] == 1
    fake_order = wechat.find_order(transaction_id)
    assert (fake_order.mchid, fake_order.sub_mchid) == (
        (SP_MCHID, SUB_MCHID) if site == WECHAT_SITE else (DIRECT_MCHID, None)
    )


def test_a_pending_alipay_trade_is_closed(payment_client, admin, fakes, sites, published):
    _, alipay = fakes
    transaction_id = placed(payment_client, admin, site_id=ALIPAY_SITE, channel="alipay")["transaction_id"]
    assert close(payment_client, admin, transaction_id).get_json()["data"]["status"] == "closed"
    assert alipay.find_trade(transaction_id).trade_status == "TRADE_CLOSED"
    assert alipay.calls["alipay.trade.close"] == 1


def test_paid_and_refunded_orders_cannot_be_closed(
    payment_client, admin, other_admin, fakes, sites, published
):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay", amount=2
    )
    answer = close(payment_client, admin, transaction_id)
    assert answer.status_code == 409 and answer.get_json()["data"]["status"] == "paid"
    payment_client.post(
        f"{ORDERS_URL}/{transaction_id}/refunds", json={"amount": 2}, headers=headers_of(admin)
    )
    assert close(payment_client, admin, transaction_id).get_json()["data"]["status"] == "refunded"
    assert close(payment_client, other_admin, transaction_id).status_code == 404
    assert alipay.calls["alipay.trade.close"] == 0


def test_an_order_paid_meanwhile_ends_paid_not_closed(payment_client, admin, fakes, sites, published):
    wechat, _ = fakes
    transaction_id = placed(payment_client, admin, site_id=DIRECT_SITE)["transaction_id"]
    fake_order = wechat.find_order(transaction_id)
    fake_order.trade_state, fake_order.transaction_id = "SUCCESS", "4200000000000000000000000077"
    fake_order.success_time = "2026-05-10T18:00:05+08:00"  # paid, the notification not here yet

    answer = close(payment_client, admin, transaction_id)
    assert answer.status_code == 409 and answer.get_json()["data"]["status"] == "paid"
    assert wechat.find_order(transaction_id).trade_state == "SUCCESS"
