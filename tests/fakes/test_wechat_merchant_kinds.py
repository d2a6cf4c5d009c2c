"""The WeChat Pay fake tells a service provider from a direct merchant, as WeChat does: each places only
its own kind of order. Merchants are registered through the control API, as the local sandbox does."""

from __future__ import annotations

import json

import pytest
import requests
from wechatpayv3 import WeChatPay, WeChatPayType

from tests.fakes.keys import fake_api_v3_key, fake_serial_no, new_key_pair
from tests.fakes.payment_server import running
from tests.fakes.wechatpay import FakeWechatPay

MCHID, SUB_MCHID, APPID = "1900000301", "1900000302", "wx6666666666666666"
NOTIFY_URL = "https://pay.example.com/notify/wechat"


def registered_sdk(base_url: str, fake: FakeWechatPay, kind: str, *, partner_mode: bool) -> WeChatPay:
    keys, serial, api_v3_key = new_key_pair(), fake_serial_no(), fake_api_v3_key()
    registration = {
        "mchid": MCHID,
        "serial_no": serial,
        "public_key": keys.public_pem,
        "api_v3_key": api_v3_key,
        "appids": [APPID],
        "kind": kind,
    }
    answer = requests.post(f"{base_url}/__fake__/merchants", json=registration, timeout=5)
    assert answer.status_code == 200, answer.text
    sdk = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=MCHID,
        private_key=keys.private_pem,
        cert_serial_no=serial,
        appid=APPID,
        apiv3_key=api_v3_key,
        partner_mode=partner_mode,
        public_key=fake.public_key_pem,
        public_key_id=fake.public_key_id,
    )
    sdk._core._gate_way = base_url
    return sdk


def direct_order(sdk: WeChatPay, out_trade_no: str) -> tuple[int, str]:
    return sdk.pay(
        description="自助洗衣",
        out_trade_no=out_trade_no,
        amount={"total": 100},
        payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        notify_url=NOTIFY_URL,
    )


def partner_order(sdk: WeChatPay, out_trade_no: str) -> tuple[int, str]:
    return sdk.pay(
        description="自助洗衣",
        out_trade_no=out_trade_no,
        amount={"total": 100},
        payer={"sp_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        sub_mchid=SUB_MCHID,
        notify_url=NOTIFY_URL,
    )


@pytest.mark.parametrize(
    ("kind", "partner_mode", "place", "refused"),
    [
        ("direct", False, direct_order, partner_order),
        ("service_provider", True, partner_order, direct_order),
    ],
)
def test_each_kind_of_merchant_places_only_its_own_orders(kind, partner_mode, place, refused):
    fake = FakeWechatPay()
    with running(fake) as base_url:
        own = place(registered_sdk(base_url, fake, kind, partner_mode=partner_mode), "TXN_kind_0001")
        other = refused(registered_sdk(base_url, fake, kind, partner_mode=not partner_mode), "TXN_kind_0002")

    assert own[0] == 200 and json.loads(own[1])["prepay_id"].startswith("wx")
    assert other[0] == 403 and json.loads(other[1])["code"] == "NO_AUTH"
    assert [order.out_trade_no for order in fake.orders.values()] == ["TXN_kind_0001"]


def test_an_unknown_kind_of_merchant_is_refused():
    with running(FakeWechatPay()) as base_url:
        answer = requests.post(
            f"{base_url}/__fake__/merchants",
            json={"mchid": MCHID, "serial_no": "1", "public_key": "", "api_v3_key": "", "kind": "bank"},
            timeout=5,
        )
    assert answer.status_code == 400 and "kind" in answer.json()["error"]
