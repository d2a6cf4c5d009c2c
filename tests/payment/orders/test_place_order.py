"""POST /api/v1/payment/order: routing by site and channel, upstream calls, pay_params, 502, idempotency."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from payment_service.models import PaymentOrder
from tests.factories import create_payment_tenant
from tests.payment.conftest import headers_of, merchant_keys
from tests.payment.orders.helpers import (
    ALIPAY_SITE,
    DIRECT_APPID,
    DIRECT_MCHID,
    DIRECT_SITE,
    ORDERS_URL,
    PLATFORM_RECEIVER,
    SP_APPID,
    SP_MCHID,
    SUB_MCHID,
    WECHAT_SITE,
    place,
    placed,
)


def test_wechat_split_order_sends_the_partner_jsapi_request_and_answers_signed_pay_params(
    payment_client, admin, fakes, sites
):
    wechat, _ = fakes
    data = placed(payment_client, admin, amount=20.00, out_order_no="BIZ-1")

    assert data["transaction_id"].startswith("TXN_") and data["channel"] == "wechat"
    fake_order = wechat.find_order(data["transaction_id"])
    sent = fake_order.request
    assert sent["sp_mchid"] == SP_MCHID and sent["sub_mchid"] == SUB_MCHID and sent["sp_appid"] == SP_APPID
    assert sent["out_trade_no"] == data["transaction_id"]
    assert sent["amount"] == {"total": 2000, "currency": "CNY"}
    assert sent["payer"] == {"sp_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    assert sent["settle_info"] == {"profit_sharing": True}
    assert sent["notify_url"].endswith(f"/api/v1/payment/notify/wechat/{sites['wechat_split']}")
    assert "?" not in sent["notify_url"]

    pay = data["pay_params"]
    assert list(pay) == ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign"]
    assert pay["appId"] == SP_APPID and pay["signType"] == "RSA"
    assert pay["package"] == f"prepay_id={fake_order.prepay_id}"
    message = f"{pay['appId']}\n{pay['timeStamp']}\n{pay['nonceStr']}\n{pay['package']}\n".encode()
    merchant_keys().public_key.verify(
        base64.b64decode(pay["paySign"]), message, padding.PKCS1v15(), hashes.SHA256()
    )


def test_wechat_direct_order_uses_the_merchant_endpoint(payment_client, admin, fakes, sites):
    wechat, _ = fakes
    data = placed(payment_client, admin, site_id=DIRECT_SITE)
    sent = wechat.find_order(data["transaction_id"]).request
    assert sent["mchid"] == DIRECT_MCHID and sent["appid"] == DIRECT_APPID
    assert "sub_mchid" not in sent and "settle_info" not in sent
    assert sent["payer"] == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    assert data["pay_params"]["appId"] == DIRECT_APPID


def test_alipay_order_creates_the_trade_and_answers_its_trade_no(payment_client, admin, fakes, sites):
    _, alipay = fakes
    data = placed(payment_client, admin, site_id=ALIPAY_SITE, channel="alipay", amount="12.5")
    trade = alipay.find_trade(data["transaction_id"])
    assert data["pay_params"] == {"tradeNO": trade.trade_no}
    assert trade.biz["total_amount"] == "12.50" and trade.biz["buyer_id"] == "2088102146225135"
    assert trade.notify_url.endswith(f"/api/v1/payment/notify/alipay/{sites['alipay_direct']}")
    assert data["amount"] == 12.5


def test_split_order_without_anything_to_transfer_is_not_frozen_for_sharing(
    payment_client, admin, fakes, sites
):
    wechat, _ = fakes
    data = placed(payment_client, admin, amount=0.06)  # 15 % of 6 fen floors to 0
    assert "settle_info" not in wechat.find_order(data["transaction_id"]).request


def test_alipay_without_binding_is_the_contract_400(payment_client, admin, fakes, sites):
    response = place(payment_client, admin, site_id=DIRECT_SITE, channel="alipay")
    assert response.status_code == 400
    assert response.get_json() == {"code": 400, "data": None, "message": "该网点暂不支持支付宝支付"}


def test_wechat_without_binding_is_400(payment_client, admin, fakes, sites):
    response = place(payment_client, admin, site_id=ALIPAY_SITE, channel="wechat")
    assert response.status_code == 400 and response.get_json()["message"] == "该网点暂不支持微信支付"


def test_disabled_config_is_400_and_nothing_reaches_the_upstream(payment_client, admin, fakes, sites):
    wechat, _ = fakes
    payment_client.put(
        f"/api/v1/payment/configs/{sites['wechat_split']}/status",
        json={"status": "disabled"},
        headers=headers_of(admin),
    )
    response = place(payment_client, admin)
    assert response.status_code == 400 and "停用" in response.get_json()["message"]
    assert wechat.requests_seen == 0


@pytest.mark.parametrize(
    ("amount", "message"),
    [(0, "金额必须大于 0"), (-1, "金额必须大于 0"), (20.001, "金额最多两位小数"), ("abc", "金额必须是数字")],
)
def test_amount_must_be_positive_with_two_decimals(payment_client, admin, fakes, sites, amount, message):
    response = place(payment_client, admin, amount=amount)
    body = response.get_json()
    assert response.status_code == 400 and body["data"]["errors"]["amount"] == [message]


def test_amount_above_the_maximum_is_400(payment_client, admin, fakes, sites, payment_app, monkeypatch):
    monkeypatch.setitem(payment_app.config, "MAX_AMOUNT", "500.00")
    assert place(payment_client, admin, amount=500.00).status_code == 200
    response = place(payment_client, admin, amount=500.01)
    assert response.status_code == 400 and "500.00" in response.get_json()["message"]


def test_payer_id_is_required(payment_client, admin, fakes, sites):
    body = {"site_id": WECHAT_SITE, "channel": "wechat", "amount": 1, "description": "洗衣"}
    response = payment_client.post("/api/v1/payment/order", json=body, headers=headers_of(admin))
    assert response.status_code == 400 and "payer_id" in response.get_json()["data"]["errors"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/cb", "http://169.254.169.254/latest", "ftp://biz.example.com/x"]
)
def test_notify_url_must_be_public_http(payment_client, admin, fakes, sites, url):
    response = place(payment_client, admin, notify_url=url)
    assert response.status_code == 400 and "notify_url" in response.get_json()["data"]["errors"]


def test_order_needs_the_order_scope(payment_client, payment_db, fakes, sites):
    _, admin_only = create_payment_tenant(payment_db, scopes=["payment:admin"])
    response = place(payment_client, admin_only)
    assert response.status_code == 403 and response.get_json()["code"] == 403


def test_same_out_order_no_and_amount_returns_the_same_transaction_once(payment_client, admin, fakes, sites):
    wechat, _ = fakes
    first = placed(payment_client, admin, out_order_no="BIZ-42", amount=20)
    again = placed(payment_client, admin, out_order_no="BIZ-42", amount="20.00")
    assert again == first
    assert wechat.requests_seen == 1


def test_same_out_order_no_with_another_amount_is_409(payment_client, admin, fakes, sites):
    placed(payment_client, admin, out_order_no="BIZ-43", amount=20)
    response = place(payment_client, admin, out_order_no="BIZ-43", amount=21)
    assert response.status_code == 409
    assert response.get_json()["data"]["differences"]["amount"] == {"first": "20.00", "now": "21"}


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "error", "status": 500, "code": "SYSTEM_ERROR", "message": "系统错误"}, "SYSTEM_ERROR"),
        ({"kind": "bad_signature"}, "BAD_SIGNATURE"),
        ({"kind": "unsigned"}, "BAD_SIGNATURE"),
    ],
)
def test_upstream_failure_is_502_with_its_code_and_the_order_is_recorded(
    payment_client, admin, payment_db, fakes, sites, fault, code
):
    wechat, _ = fakes
    wechat.fail_next(**fault)
    response = place(payment_client, admin, out_order_no="BIZ-502")
    body = response.get_json()
    assert response.status_code == 502 and body["code"] == 502
    assert body["data"]["upstream_code"] == code
    order = payment_db.get(PaymentOrder, body["data"]["transaction_id"])
    assert order.pay_params is None and order.upstream_error["upstream_code"] == code

    retried = placed(payment_client, admin, out_order_no="BIZ-502")
    assert retried["transaction_id"] == order.id and retried["pay_params"]["package"].startswith("prepay_id=")
    assert wechat.find_order(order.id).out_trade_no == order.id


def test_upstream_timeout_is_502_and_the_retry_reuses_the_out_trade_no(
    payment_client, admin, fakes, sites, payment_app, monkeypatch
):
    wechat, _ = fakes
    monkeypatch.setitem(payment_app.config, "CHANNEL_TIMEOUT_SECONDS", 0.3)
    wechat.fail_next(kind="delay", delay_ms=800)
    response = place(payment_client, admin, out_order_no="BIZ-TIMEOUT")
    assert response.status_code == 502 and response.get_json()["data"]["upstream_code"] == "TIMEOUT"
    transaction_id = response.get_json()["data"]["transaction_id"]

    retried = placed(payment_client, admin, out_order_no="BIZ-TIMEOUT")
    assert retried["transaction_id"] == transaction_id
    # The slow first call did create the order upstream; the retry found the same one.
    assert retried["pay_params"]["package"] == f"prepay_id={wechat.find_order(transaction_id).prepay_id}"


def test_alipay_business_refusal_is_502_and_fails_the_order(payment_client, admin, payment_db, fakes, sites):
    _, alipay = fakes
    alipay.fail_next(status=200, code="40004", sub_code="ACQ.INVALID_PARAMETER", message="参数无效")
    response = place(payment_client, admin, site_id=ALIPAY_SITE, channel="alipay")
    body = response.get_json()
    assert response.status_code == 502 and body["data"]["upstream_code"] == "ACQ.INVALID_PARAMETER"
    assert payment_db.get(PaymentOrder, body["data"]["transaction_id"]).status == "failed"


def test_order_detail_and_list(payment_client, admin, other_admin, fakes, sites):
    wechat_order = placed(payment_client, admin, out_order_no="L-1")
    alipay_order = placed(payment_client, admin, site_id=ALIPAY_SITE, channel="alipay", amount=3)

    detail = payment_client.get(f"{ORDERS_URL}/{wechat_order['transaction_id']}", headers=headers_of(admin))
    data = detail.get_json()["data"]
    assert data["status"] == "pending" and data["amount"] == 20.0 and data["site_id"] == WECHAT_SITE
    assert data["mode"] == "wechat_split" and data["out_order_no"] == "L-1"
    assert data["profit_sharing"] is None and data["forwarding"] is None

    listed = payment_client.get(ORDERS_URL, query_string={"channel": "alipay"}, headers=headers_of(admin))
    page = listed.get_json()["data"]
    assert page["total"] == 1 and page["list"][0]["transaction_id"] == alipay_order["transaction_id"]
    everything = payment_client.get(
        ORDERS_URL, query_string={"size": 1}, headers=headers_of(admin)
    ).get_json()
    assert everything["data"]["total"] == 2 and len(everything["data"]["list"]) == 1
    future = payment_client.get(
        ORDERS_URL, query_string={"from": "2999-01-01T00:00:00Z"}, headers=headers_of(admin)
    )
    assert future.get_json()["data"]["total"] == 0

    hidden = payment_client.get(
        f"{ORDERS_URL}/{wechat_order['transaction_id']}", headers=headers_of(other_admin)
    )
    assert hidden.status_code == 404 and hidden.get_json()["code"] == 404
    assert payment_client.get(ORDERS_URL, headers=headers_of(other_admin)).get_json()["data"]["total"] == 0


def test_platform_receiver_is_in_the_plan(payment_client, admin, payment_db, fakes, sites):
    data = placed(payment_client, admin)
    plan = payment_db.get(PaymentOrder, data["transaction_id"]).sharing_plan
    assert plan["sub_mch_id"] == SUB_MCHID
    assert [r["merchant_id"] for r in plan["receivers"]] == [PLATFORM_RECEIVER, SUB_MCHID]
