"""The payment fakes are faithful: the independent SDKs (wechatpayv3, python-alipay-sdk) work against them
over real sockets, and they refuse what the real upstreams refuse."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from alipay import AliPay
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3 import utils as wxutils

from tests.fakes.alipay import FakeAlipay
from tests.fakes.keys import TestKeyPair, fake_api_v3_key, fake_serial_no, key_pair, new_key_pair
from tests.fakes.payment_server import NotifyReceiver, running
from tests.fakes.wechatpay import FakeWechatPay

REPO_ROOT = Path(__file__).resolve().parents[2]
SP_MCHID, SUB_MCHID, SP_APPID = "1900000109", "1900000110", "wx8888888888888888"
ALIPAY_APP_ID = "2021000117650001"


@pytest.fixture(scope="module")
def merchant() -> dict[str, object]:
    return {"keys": key_pair("merchant"), "serial": fake_serial_no(), "api_v3_key": fake_api_v3_key()}


@pytest.fixture
def wechat(merchant) -> Iterator[tuple[FakeWechatPay, str]]:
    fake = FakeWechatPay()
    fake.register_merchant(SP_MCHID, merchant["serial"], merchant["keys"].public_pem, merchant["api_v3_key"])
    with running(fake) as base_url:
        yield fake, base_url


def sdk_for(fake: FakeWechatPay, merchant: dict[str, object], base_url: str) -> WeChatPay:
    sdk = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=SP_MCHID,
        private_key=merchant["keys"].private_pem,
        cert_serial_no=merchant["serial"],
        appid=SP_APPID,
        apiv3_key=merchant["api_v3_key"],
        partner_mode=True,
        public_key=fake.public_key_pem,
        public_key_id=fake.public_key_id,
    )
    sdk._core._gate_way = base_url
    return sdk


def sdk_order(sdk: WeChatPay, out_trade_no: str, **overrides: object) -> tuple[int, str]:
    values = {
        "description": "自助洗衣",
        "out_trade_no": out_trade_no,
        "amount": {"total": 100},
        "payer": {"sp_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "sub_mchid": SUB_MCHID,
        "notify_url": "https://pay.example.com/notify/wechat",
    }
    values.update(overrides)
    return sdk.pay(**values)


def raw_call(
    base_url: str, merchant: dict[str, object], path: str, body: bytes, **auth: str
) -> requests.Response:
    """A hand-signed POST, so single parts of the Authorization header can be broken."""
    authorization = wxutils.build_authorization(
        path,
        "POST",
        auth.get("mchid", SP_MCHID),
        auth.get("serial", merchant["serial"]),
        merchant["keys"].private_key,
        data=body.decode(),
    )
    return requests.post(
        base_url + path,
        data=body,
        headers={
            "Authorization": authorization,
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
        timeout=5,
    )


# -- WeChat Pay fake --------------------------------------------------------------------------------------


def test_wechatpayv3_orders_queries_and_closes_against_the_fake(wechat, merchant):
    fake, base_url = wechat
    sdk = sdk_for(fake, merchant, base_url)

    code, message = sdk_order(sdk, "TXN_20260510_sdk001")  # the SDK also verifies the fake's signature
    assert code == 200 and json.loads(message)["prepay_id"].startswith("wx")

    code, message = sdk.query(out_trade_no="TXN_20260510_sdk001", sub_mchid=SUB_MCHID)
    assert code == 200 and json.loads(message)["trade_state"] == "NOTPAY"

    code, _ = sdk.close(out_trade_no="TXN_20260510_sdk001", sub_mchid=SUB_MCHID)
    assert code == 204 and fake.find_order("TXN_20260510_sdk001").trade_state == "CLOSED"


def test_wechatpayv3_accepts_the_fakes_notification(wechat, merchant):
    fake, base_url = wechat
    sdk = sdk_for(fake, merchant, base_url)
    sdk_order(sdk, "TXN_20260510_sdk002")
    order = fake.find_order("TXN_20260510_sdk002")
    order.trade_state, order.transaction_id, order.success_time = (
        "SUCCESS",
        "4200000001",
        "2026-05-10T18:00:05+08:00",
    )

    headers, body = fake.build_notification(order)
    result = sdk.callback(headers, body)

    assert result["event_type"] == "TRANSACTION.SUCCESS"
    assert result["resource"]["out_trade_no"] == "TXN_20260510_sdk002"
    assert result["resource"]["amount"]["total"] == 100
    assert sdk.callback(headers, body.replace(b"SUCCESS", b"SUCCESs")) is None


def test_pay_posts_the_notification_and_reports_the_answer(merchant):
    fake = FakeWechatPay(require_https_notify_url=False)
    fake.register_merchant(SP_MCHID, merchant["serial"], merchant["keys"].public_pem, merchant["api_v3_key"])
    receiver = NotifyReceiver()
    with running(fake) as base_url, running(receiver) as notify_base:
        sdk = sdk_for(fake, merchant, base_url)
        sdk_order(sdk, "TXN_pay_001", notify_url=f"{notify_base}/api/v1/payment/notify/wechat")
        first, second = fake.pay("TXN_pay_001"), fake.pay("TXN_pay_001")

    assert first.status == second.status == 204 and first.acknowledged
    assert [r.path for r in receiver.received] == ["/api/v1/payment/notify/wechat"] * 2
    assert receiver.received[0].headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert fake.find_order("TXN_pay_001").trade_state == "SUCCESS"


@pytest.mark.parametrize(
    ("auth", "reason"),
    [({"serial": "0000"}, "序列号"), ({"mchid": "1230000109"}, "商户号")],
)
def test_fake_refuses_bad_authorization(wechat, merchant, auth, reason):
    _, base_url = wechat
    body = json.dumps({"sp_mchid": SP_MCHID}).encode()

    answer = raw_call(base_url, merchant, "/v3/pay/partner/transactions/jsapi", body, **auth)

    assert (
        answer.status_code == 401
        and answer.json()["code"] == "SIGN_ERROR"
        and reason in answer.json()["message"]
    )


def test_fake_refuses_a_signature_over_other_bytes(wechat, merchant):
    _, base_url = wechat
    authorization = wxutils.build_authorization(
        "/v3/pay/partner/transactions/jsapi",
        "POST",
        SP_MCHID,
        merchant["serial"],
        merchant["keys"].private_key,
        data='{"a": 1}',
    )

    answer = requests.post(
        base_url + "/v3/pay/partner/transactions/jsapi",
        data=b'{"a":1}',
        headers={"Authorization": authorization, "Content-Type": "application/json"},
        timeout=5,
    )

    assert answer.status_code == 401 and answer.json()["code"] == "SIGN_ERROR"
    assert (
        requests.post(base_url + "/v3/pay/partner/transactions/jsapi", json={}, timeout=5).status_code == 401
    )


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"out_trade_no": "short"}, 400, "PARAM_ERROR"),
        ({"out_trade_no": "TXN_20260510_has space"}, 400, "PARAM_ERROR"),
        ({"out_trade_no": "T" * 33}, 400, "PARAM_ERROR"),
        ({"amount": {"total": 1.5}}, 400, "PARAM_ERROR"),
        ({"amount": {"total": "100"}}, 400, "PARAM_ERROR"),
        ({"notify_url": "http://pay.example.com/notify"}, 400, "PARAM_ERROR"),
        ({"notify_url": "https://pay.example.com/notify?order=1"}, 400, "PARAM_ERROR"),
        ({"payer": {"sub_openid": "o1"}}, 400, "PARAM_ERROR"),
    ],
)
def test_fake_validates_jsapi_bodies(wechat, merchant, overrides, status, code):
    fake, base_url = wechat
    out_trade_no = str(overrides.pop("out_trade_no", "TXN_20260510_valid01"))

    answer_code, message = sdk_order(sdk_for(fake, merchant, base_url), out_trade_no, **overrides)

    assert (answer_code, json.loads(message)["code"]) == (status, code)


def test_fake_orders_are_idempotent_by_out_trade_no(wechat, merchant):
    fake, base_url = wechat
    sdk = sdk_for(fake, merchant, base_url)

    first = json.loads(sdk_order(sdk, "TXN_idem_0001")[1])
    again = json.loads(sdk_order(sdk, "TXN_idem_0001")[1])
    code, message = sdk_order(sdk, "TXN_idem_0001", amount={"total": 200})

    assert first == again
    assert (code, json.loads(message)["code"]) == (403, "OUT_TRADE_NO_USED")


def test_wechat_control_api_over_http(merchant):
    fake = FakeWechatPay()
    receiver = NotifyReceiver()
    with running(fake) as base_url, running(receiver) as notify_base:
        platform = requests.get(f"{base_url}/__fake__/platform", timeout=5).json()
        assert platform["public_key_id"] == fake.public_key_id and "PUBLIC KEY" in platform["public_key"]
        registration = {
            "mchid": SP_MCHID,
            "serial_no": merchant["serial"],
            "public_key": merchant["keys"].public_pem,
            "api_v3_key": merchant["api_v3_key"],
        }
        assert requests.post(f"{base_url}/__fake__/merchants", json=registration, timeout=5).ok
        config = requests.post(
            f"{base_url}/__fake__/config", json={"require_https_notify_url": False}, timeout=5
        )
        assert config.json()["require_https_notify_url"] is False
        sdk = sdk_for(fake, merchant, base_url)
        sdk_order(sdk, "TXN_ctl_0001", notify_url=f"{notify_base}/notify")

        paid = requests.post(f"{base_url}/__fake__/pay/TXN_ctl_0001", json={}, timeout=10).json()
        orders = requests.get(f"{base_url}/__fake__/orders", timeout=5).json()["orders"]
        deliveries = requests.get(f"{base_url}/__fake__/deliveries", timeout=5).json()["deliveries"]
        requests.post(
            f"{base_url}/__fake__/fail_next", json={"status": 503, "code": "SERVICE_UNAVAILABLE"}, timeout=5
        )
        failed = sdk_order(sdk, "TXN_ctl_0002")
        missing = requests.post(f"{base_url}/__fake__/pay/TXN_nope", json={}, timeout=5)
        requests.post(f"{base_url}/__fake__/reset", timeout=5)
        after_reset = requests.get(f"{base_url}/__fake__/orders", timeout=5).json()["orders"]

    assert paid["status"] == 204
    assert [(o["out_trade_no"], o["trade_state"]) for o in orders] == [("TXN_ctl_0001", "SUCCESS")]
    assert deliveries[0]["status"] == 204
    assert failed[0] == 503 and json.loads(failed[1])["code"] == "SERVICE_UNAVAILABLE"
    assert missing.status_code == 400
    assert after_reset == []


# -- Alipay fake ------------------------------------------------------------------------------------------


@pytest.fixture
def alipay() -> Iterator[tuple[FakeAlipay, str, TestKeyPair]]:
    app_keys = key_pair("alipay-app")
    fake = FakeAlipay()
    fake.register_app(ALIPAY_APP_ID, app_keys.public_pem, "2088101117955611")
    with running(fake) as base_url:
        yield fake, base_url + "/gateway.do", app_keys


def alipay_sdk(fake: FakeAlipay, gateway: str, app_keys: TestKeyPair) -> AliPay:
    sdk = AliPay(
        appid=ALIPAY_APP_ID,
        app_private_key_string=app_keys.private_pem,
        alipay_public_key_string=fake.public_key_pem,
        sign_type="RSA2",
    )
    sdk._gateway = gateway
    return sdk


def test_python_alipay_sdk_creates_queries_and_closes_against_the_fake(alipay):
    fake, gateway, app_keys = alipay
    sdk = alipay_sdk(fake, gateway, app_keys)

    # The SDK sends GET with a query string and verifies the fake's signed answer itself.
    created = sdk.api_alipay_trade_create("洗衣", "TXN_ali_0001", "20.00", buyer_id="2088102177846880")
    queried = sdk.api_alipay_trade_query(out_trade_no="TXN_ali_0001")
    closed = sdk.api_alipay_trade_close(out_trade_no="TXN_ali_0001")

    assert created["code"] == "10000" and created["trade_no"]
    assert queried["trade_status"] == "WAIT_BUYER_PAY" and queried["total_amount"] == "20.00"
    assert closed["code"] == "10000" and fake.find_trade("TXN_ali_0001").trade_status == "TRADE_CLOSED"


def test_python_alipay_sdk_verifies_the_fakes_notification(alipay):
    fake, gateway, app_keys = alipay
    sdk = alipay_sdk(fake, gateway, app_keys)
    sdk.api_alipay_trade_create("洗衣", "TXN_ali_0002", "9.90", buyer_id="2088102177846880")
    trade = fake.find_trade("TXN_ali_0002")

    form = fake.build_notification(trade, passback_params="")
    signature = form.pop("sign")

    assert sdk.verify(dict(form), signature)
    assert not sdk.verify({**form, "total_amount": "0.01"}, signature)


def test_alipay_pay_posts_a_form_and_wants_success():
    app_keys = key_pair("alipay-app")
    fake = FakeAlipay()
    fake.register_app(ALIPAY_APP_ID, app_keys.public_pem)
    receiver = NotifyReceiver()
    with running(fake) as base_url, running(receiver) as notify_base:
        sdk = alipay_sdk(fake, base_url + "/gateway.do", app_keys)
        sdk.api_alipay_trade_create(
            "洗衣", "TXN_ali_0003", "20.00", buyer_id="2088102177846880", notify_url=f"{notify_base}/notify"
        )
        delivery = fake.pay("TXN_ali_0003")  # the receiver answers 204, not "success"

    assert delivery.status == 204 and not delivery.acknowledged
    assert receiver.received[0].form["trade_status"] == "TRADE_SUCCESS"
    assert receiver.received[0].form["out_trade_no"] == "TXN_ali_0003"


def test_alipay_fake_refuses_bad_calls(alipay):
    fake, gateway, _ = alipay

    wrong_key = alipay_sdk(fake, gateway, new_key_pair())
    refused = wrong_key.api_alipay_trade_query(out_trade_no="TXN_1")  # signed refusals come back as data
    assert (refused["code"], refused["sub_code"]) == ("40002", "isv.invalid-signature")

    missing = requests.post(gateway, data={"app_id": ALIPAY_APP_ID}, timeout=5).json()
    assert missing["error_response"]["sub_code"] == "isv.missing-method"
    unknown = requests.post(
        gateway, data={"app_id": "2021000000000009", "method": "alipay.trade.query"}, timeout=5
    )
    assert unknown.json()["alipay_trade_query_response"]["sub_code"] == "isv.invalid-app-id"


def test_alipay_control_api_over_http():
    app_keys = key_pair("alipay-app")
    fake = FakeAlipay()
    with running(fake) as base_url:
        platform = requests.get(f"{base_url}/__fake__/platform", timeout=5).json()
        app = requests.post(
            f"{base_url}/__fake__/apps",
            json={"app_id": ALIPAY_APP_ID, "public_key": app_keys.public_pem},
            timeout=5,
        ).json()
        sdk = alipay_sdk(fake, base_url + "/gateway.do", app_keys)
        sdk.api_alipay_trade_create("洗衣", "TXN_ali_ctl", "1.00", buyer_id="2088102177846880")
        orders = requests.get(f"{base_url}/__fake__/orders", timeout=5).json()["orders"]
        requests.post(
            f"{base_url}/__fake__/fail_next", json={"status": 200, "sub_code": "ACQ.SYSTEM_ERROR"}, timeout=5
        )
        failed = sdk.api_alipay_trade_query(out_trade_no="TXN_ali_ctl")
        no_notify_url = requests.post(f"{base_url}/__fake__/pay/TXN_ali_ctl", json={}, timeout=5)

    assert platform["alipay_public_key"] == fake.public_key_pem
    assert app["app_id"] == ALIPAY_APP_ID and app["seller_id"].startswith("2088")
    assert [o["out_trade_no"] for o in orders] == ["TXN_ali_ctl"]
    assert (failed["code"], failed["sub_code"]) == ("20000", "ACQ.SYSTEM_ERROR")
    assert no_notify_url.status_code == 400


# -- as processes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "probe"),
    [("tests.fakes.wechatpay", "public_key_id"), ("tests.fakes.alipay", "alipay_public_key")],
)
def test_fakes_run_as_processes(module, probe):
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip().rstrip("/")
        deadline = time.monotonic() + 10
        while True:
            try:
                platform = requests.get(f"{base_url}/__fake__/platform", timeout=2).json()
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert platform[probe]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
