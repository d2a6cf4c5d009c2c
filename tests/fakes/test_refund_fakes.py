"""The payment fakes' refunds are faithful: wechatpayv3 and python-alipay-sdk refund, query and return
against them over real sockets, the fakes verify those calls as they verify orders, and the control API
drives them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.fakes.alipay import FakeAlipay
from tests.fakes.keys import TestKeyPair, fake_api_v3_key, fake_serial_no, key_pair, new_key_pair
from tests.fakes.payment_server import NotifyReceiver, running
from tests.fakes.test_payment_fakes import (
    ALIPAY_APP_ID,
    SP_MCHID,
    SUB_MCHID,
    alipay_sdk,
    raw_call,
    sdk_for,
    sdk_order,
)
from tests.fakes.wechatpay import FakeWechatPay

BUYER_ID = "2088102177846880"


@pytest.fixture(scope="module")
def merchant() -> dict[str, object]:
    return {"keys": key_pair("merchant"), "serial": fake_serial_no(), "api_v3_key": fake_api_v3_key()}


@pytest.fixture
def wechat(merchant) -> Iterator[tuple[FakeWechatPay, str, NotifyReceiver, str]]:
    """The WeChat fake over http with our merchant, and a notify endpoint: (fake, base_url, receiver, url)."""
    fake = FakeWechatPay(require_https_notify_url=False)
    fake.register_merchant(SP_MCHID, merchant["serial"], merchant["keys"].public_pem, merchant["api_v3_key"])
    receiver = NotifyReceiver()
    with running(fake) as base_url, running(receiver) as notify_base:
        yield fake, base_url, receiver, f"{notify_base}/notify"


def paid(fake: FakeWechatPay, sdk, out_trade_no: str, notify_url: str, **overrides: object) -> None:
    sdk_order(sdk, out_trade_no, notify_url=notify_url, **overrides)
    fake.pay(out_trade_no)


# -- WeChat Pay -------------------------------------------------------------------------------------------


def test_wechatpayv3_refunds_and_queries_against_the_fake(wechat, merchant):
    fake, base_url, receiver, notify_url = wechat
    sdk = sdk_for(fake, merchant, base_url)
    paid(fake, sdk, "TXN_sdk_refund_1", notify_url)

    amount = {"refund": 30, "total": 100, "currency": "CNY"}
    code, message = sdk.refund(
        "RFD_sdk_1", amount, out_trade_no="TXN_sdk_refund_1", notify_url=notify_url, sub_mchid=SUB_MCHID
    )
    delivery = fake.settle_refund("RFD_sdk_1")
    queried = sdk.query_refund("RFD_sdk_1", sub_mchid=SUB_MCHID)
    callback = sdk.callback(receiver.received[-1].headers, receiver.received[-1].body)

    assert code == 200 and json.loads(message)["status"] == "PROCESSING"
    assert queried[0] == 200 and json.loads(queried[1])["status"] == "SUCCESS"
    assert delivery is not None and delivery.status == 204
    assert callback["event_type"] == "REFUND.SUCCESS"
    assert callback["resource"]["out_refund_no"] == "RFD_sdk_1"
    assert callback["resource"]["amount"] == {
        "total": 100,
        "refund": 30,
        "payer_total": 100,
        "payer_refund": 30,
    }
    tampered = receiver.received[-1].body.replace(b"REFUND.SUCCESS", b"REFUND.CLOSED")
    assert sdk.callback(receiver.received[-1].headers, tampered) is None
    assert sdk.query_refund("RFD_sdk_never", sub_mchid=SUB_MCHID)[0] == 404


def test_wechatpayv3_returns_a_share_against_the_fake(wechat, merchant):
    fake, base_url, _, notify_url = wechat
    sdk = sdk_for(fake, merchant, base_url)
    paid(fake, sdk, "TXN_sdk_refund_2", notify_url, settle_info={"profit_sharing": True})
    fake.receivers[(SP_MCHID, SUB_MCHID, "MERCHANT_ID", "1001")] = {"type": "MERCHANT_ID", "account": "1001"}
    receivers = [{"type": "MERCHANT_ID", "account": "1001", "amount": 20, "description": "佣金"}]
    transaction_id = fake.find_order("TXN_sdk_refund_2").transaction_id
    code, _ = sdk.profitsharing_order(transaction_id, "PS_sdk_2", receivers, True, sub_mchid=SUB_MCHID)
    assert code == 200
    fake.finish_sharing(next(iter(fake.sharing_orders.values())))

    created = sdk.profitsharing_return(
        "RT_sdk_2", "1001", 15, "退款回退", out_order_no="PS_sdk_2", sub_mchid=SUB_MCHID
    )
    queried = sdk.profitsharing_return_query(
        "PS_sdk_2", "RT_sdk_2", sub_mchid=SUB_MCHID
    )  # signs "?&out_order_no"
    refused = sdk.profitsharing_return(
        "RT_sdk_3", "1001", 6, "退款回退", out_order_no="PS_sdk_2", sub_mchid=SUB_MCHID
    )

    assert created[0] == 200 and json.loads(created[1])["result"] == "SUCCESS"
    assert queried[0] == 200 and json.loads(queried[1])["amount"] == 15
    assert refused[0] == 400 and json.loads(refused[1])["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("path", ["/v3/refund/domestic/refunds", "/v3/profitsharing/return-orders"])
def test_the_fake_verifies_refund_calls_as_it_verifies_orders(wechat, merchant, path):
    _, base_url, _, _ = wechat
    body = json.dumps({"sub_mchid": SUB_MCHID, "out_refund_no": "RFD_1"}).encode()

    wrong_serial = raw_call(base_url, merchant, path, body, serial="0000")
    wrong_key = raw_call(base_url, {**merchant, "keys": new_key_pair()}, path, body)
    unsigned = requests.post(
        base_url + path, data=body, headers={"Content-Type": "application/json"}, timeout=5
    )

    for answer in (wrong_serial, wrong_key, unsigned):
        assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")


def test_wechat_refund_knobs_over_the_control_api(wechat, merchant):
    fake, base_url, receiver, notify_url = wechat
    sdk = sdk_for(fake, merchant, base_url)
    paid(fake, sdk, "TXN_ctl_refund_1", notify_url)
    config = requests.post(
        f"{base_url}/__fake__/config", json={"refund_interval_ms": 60_000, "refund_delay_ms": 0}, timeout=5
    ).json()
    amount = {"refund": 10, "total": 100, "currency": "CNY"}

    first = sdk.refund(
        "RFD_ctl_a", amount, out_trade_no="TXN_ctl_refund_1", notify_url=notify_url, sub_mchid=SUB_MCHID
    )
    limited = sdk.refund("RFD_ctl_b", amount, out_trade_no="TXN_ctl_refund_1", sub_mchid=SUB_MCHID)
    deadline = time.monotonic() + 5
    while len(receiver.received) < 2 and time.monotonic() < deadline:  # the payment's, then the refund's
        time.sleep(0.02)
    requests.post(
        f"{base_url}/__fake__/fail_next", json={"endpoint": "query_refund", "status": 503}, timeout=5
    )
    failed_query = sdk.query_refund("RFD_ctl_a", sub_mchid=SUB_MCHID)
    settled = requests.post(f"{base_url}/__fake__/refunds/RFD_ctl_a/settle", json={}, timeout=10).json()
    listed = requests.get(f"{base_url}/__fake__/refunds", timeout=5).json()["refunds"]
    calls = requests.get(f"{base_url}/__fake__/calls", timeout=5).json()["calls"]
    requests.post(f"{base_url}/__fake__/reset", timeout=5)
    after_reset = requests.get(f"{base_url}/__fake__/calls", timeout=5).json()["calls"]

    assert (config["refund_interval_ms"], config["refund_delay_ms"]) == (60_000, 0)
    assert first[0] == 200 and (limited[0], json.loads(limited[1])["code"]) == (429, "FREQUENCY_LIMITED")
    assert json.loads(receiver.received[1].body)["event_type"] == "REFUND.SUCCESS"
    assert failed_query[0] == 503
    assert settled["status"] == "SUCCESS" and settled["delivery"]["status"] == 204  # a redelivery
    assert [(r["out_refund_no"], r["status"]) for r in listed] == [("RFD_ctl_a", "SUCCESS")]
    assert calls["refund"] == 2 and calls["query_refund"] == 1 and calls["create_partner"] == 1
    assert after_reset == {}


# -- Alipay -----------------------------------------------------------------------------------------------


@pytest.fixture
def alipay() -> Iterator[tuple[FakeAlipay, str, TestKeyPair]]:
    app_keys = key_pair("alipay-app")
    fake = FakeAlipay()
    fake.register_app(ALIPAY_APP_ID, app_keys.public_pem, "2088101117955611")
    with running(fake) as base_url:
        yield fake, base_url, app_keys


def test_python_alipay_sdk_refunds_and_queries_against_the_fake(alipay):
    fake, base_url, app_keys = alipay
    sdk = alipay_sdk(fake, base_url + "/gateway.do", app_keys)
    sdk.api_alipay_trade_create("洗衣", "TXN_ali_sdk_r1", "20.00", buyer_id=BUYER_ID)
    fake.find_trade("TXN_ali_sdk_r1").trade_status = "TRADE_SUCCESS"

    # The SDK verifies the fake's signature on every answer itself.
    refunded = sdk.api_alipay_trade_refund("5.00", out_trade_no="TXN_ali_sdk_r1", out_request_no="RFD_r1")
    queried = sdk.api_alipay_trade_fastpay_refund_query("RFD_r1", out_trade_no="TXN_ali_sdk_r1")
    nothing = sdk.api_alipay_trade_fastpay_refund_query("RFD_none", out_trade_no="TXN_ali_sdk_r1")
    too_much = sdk.api_alipay_trade_refund("15.01", out_trade_no="TXN_ali_sdk_r1", out_request_no="RFD_r2")
    changed = sdk.api_alipay_trade_refund("6.00", out_trade_no="TXN_ali_sdk_r1", out_request_no="RFD_r1")
    partial = sdk.api_alipay_trade_refund("10.00", out_trade_no="TXN_ali_sdk_r1")  # no out_request_no: all

    assert (refunded["code"], refunded["fund_change"], refunded["refund_fee"]) == ("10000", "Y", "5.00")
    assert (queried["refund_status"], queried["refund_amount"], queried["total_amount"]) == (
        "REFUND_SUCCESS",
        "5.00",
        "20.00",
    )
    assert nothing["code"] == "10000" and "refund_status" not in nothing
    assert too_much["sub_code"] == "ACQ.REASON_TRADE_REFUND_FEE_ERR"
    assert changed["sub_code"] == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert partial["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert fake.refundable("TXN_ali_sdk_r1") == "15.00"


def test_alipay_refund_knobs_over_the_control_api(alipay):
    fake, base_url, app_keys = alipay
    sdk = alipay_sdk(fake, base_url + "/gateway.do", app_keys)
    sdk.api_alipay_trade_create("洗衣", "TXN_ali_ctl_r1", "1.00", buyer_id=BUYER_ID)
    fake.find_trade("TXN_ali_ctl_r1").trade_status = "TRADE_SUCCESS"
    config = requests.post(
        f"{base_url}/__fake__/config",
        json={"refund_fund_change": False, "refund_settle_on_query": False},
        timeout=5,
    ).json()

    pending = sdk.api_alipay_trade_refund("1.00", out_trade_no="TXN_ali_ctl_r1", out_request_no="RFD_c1")
    before = sdk.api_alipay_trade_fastpay_refund_query("RFD_c1", out_trade_no="TXN_ali_ctl_r1")
    settle = {"out_trade_no": "TXN_ali_ctl_r1", "out_request_no": "RFD_c1"}
    settled = requests.post(f"{base_url}/__fake__/refunds/settle", json=settle, timeout=5).json()
    after = sdk.api_alipay_trade_fastpay_refund_query("RFD_c1", out_trade_no="TXN_ali_ctl_r1")
    requests.post(
        f"{base_url}/__fake__/fail_next", json={"method": "alipay.trade.refund", "status": 200}, timeout=5
    )
    queried_fine = sdk.api_alipay_trade_query(out_trade_no="TXN_ali_ctl_r1")  # the fault waits for a refund
    failed = sdk.api_alipay_trade_refund("1.00", out_trade_no="TXN_ali_ctl_r1", out_request_no="RFD_c2")
    listed = requests.get(f"{base_url}/__fake__/refunds", timeout=5).json()["refunds"]
    calls = requests.get(f"{base_url}/__fake__/calls", timeout=5).json()["calls"]

    assert config == {"latency_ms": 0, "refund_fund_change": False, "refund_settle_on_query": False}
    assert pending["fund_change"] == "N" and "refund_status" not in before
    assert settled["settled"] is True and after["refund_status"] == "REFUND_SUCCESS"
    assert queried_fine["trade_status"] == "TRADE_CLOSED"  # refunded in full
    assert (failed["code"], failed["sub_code"]) == ("20000", "isp.unknow-error")
    assert [(r["out_request_no"], r["settled"]) for r in listed] == [("RFD_c1", True)]
    assert calls["alipay.trade.refund"] == 2 and calls["alipay.trade.fastpay.refund.query"] == 2


def test_the_alipay_fake_verifies_refund_calls(alipay):
    fake, base_url, _ = alipay
    impostor = alipay_sdk(fake, base_url + "/gateway.do", new_key_pair())

    refused = impostor.api_alipay_trade_refund("1.00", out_trade_no="TXN_1", out_request_no="RFD_1")
    query = impostor.api_alipay_trade_fastpay_refund_query("RFD_1", out_trade_no="TXN_1")

    assert (refused["code"], refused["sub_code"]) == ("40002", "isv.invalid-signature")
    assert query["sub_code"] == "isv.invalid-signature" and fake.refunds == {}
