"""Fakes, sites and order helpers shared by the order, notification, forwarding and sharing tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes import alipay as alipay_fake_module
from tests.fakes import wechatpay as wechat_fake_module
from tests.fakes.alipay import FakeAlipay
from tests.fakes.payment_server import running
from tests.fakes.wechatpay import FakeWechatPay
from tests.payment.conftest import API_V3_KEY, alipay_app_keys, bind, create_config, headers_of, merchant_keys

ORDER_URL = "/api/v1/payment/order"
ORDERS_URL = "/api/v1/payment/orders"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092024101000000000"
SP_MCHID, SUB_MCHID, DIRECT_MCHID = "1900000109", "1900000110", "1900000200"
SP_APPID, DIRECT_APPID = "wx8888888888888888", "wx7777777777777777"
ALIPAY_APP_ID, ALIPAY_SELLER_ID = "2021000117650001", "2088101117955611"
PLATFORM_RECEIVER = "1001"
WECHAT_SITE, DIRECT_SITE, ALIPAY_SITE = "SITE_W", "SITE_D", "SITE_A"


def wechat_fake_app() -> FakeWechatPay:
    """The WeChat Pay fake knowing the test merchants (provider and direct), over plain http."""
    fake = FakeWechatPay(require_https_notify_url=False, public_key_id=PUBLIC_KEY_ID)
    public_pem = merchant_keys().public_pem
    fake.register_merchant(SP_MCHID, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", public_pem, API_V3_KEY)
    fake.register_merchant(DIRECT_MCHID, "6157F09EFDC096DE15EBE81A47057A7232F1B8E2", public_pem, API_V3_KEY)
    return fake


def alipay_fake_app() -> FakeAlipay:
    fake = FakeAlipay()
    fake.register_app(ALIPAY_APP_ID, alipay_app_keys().public_pem, ALIPAY_SELLER_ID)
    return fake


@dataclass
class Deliveries:
    """What the fakes' notifications got back from our notify endpoints (through the Flask test client)."""

    answers: list[Any] = field(default_factory=list)


def route_notifications_to(client, wechat: FakeWechatPay | None, alipay: FakeAlipay | None) -> None:
    """Make the fakes post notifications into the test client instead of over the network."""

    if wechat is not None:

        def deliver_wechat(url: str, headers: dict[str, str], body: bytes, out_trade_no: str = ""):
            answer = client.post(urlsplit(url).path, data=body, headers=headers)
            delivery = wechat_fake_module.Delivery(
                url, answer.status_code, answer.get_data(as_text=True), out_trade_no
            )
            wechat.deliveries.append(delivery)
            return delivery

        wechat.deliver = deliver_wechat
    if alipay is not None:

        def deliver_alipay(url: str, form: dict[str, str], out_trade_no: str = ""):
            answer = client.post(urlsplit(url).path, data=form)
            delivery = alipay_fake_module.Delivery(
                url, answer.status_code, answer.get_data(as_text=True), out_trade_no
            )
            alipay.deliveries.append(delivery)
            return delivery

        alipay.deliver = deliver_alipay


def order_body(site_id: str = WECHAT_SITE, channel: str = "wechat", **overrides: Any) -> dict[str, Any]:
    body = {
        "site_id": site_id,
        "channel": channel,
        "amount": 20.00,
        "description": "自助洗衣-标准洗-30分钟",
        "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" if channel == "wechat" else "2088102146225135",
    }
    body.update(overrides)
    return body


def place(client, api_key: str, **overrides: Any):
    return client.post(ORDER_URL, json=order_body(**overrides), headers=headers_of(api_key))


def placed(client, api_key: str, **overrides: Any) -> dict[str, Any]:
    response = place(client, api_key, **overrides)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def order_of(client, api_key: str, transaction_id: str) -> dict[str, Any]:
    response = client.get(f"{ORDERS_URL}/{transaction_id}", headers=headers_of(api_key))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def set_up_sites(client, api_key: str) -> dict[str, str]:
    """wechat_split at WECHAT_SITE (15 % to the platform), wechat_direct at DIRECT_SITE, alipay at ALIPAY_SITE
    and WECHAT_SITE; returns the config ids by mode."""
    split = create_config(client, api_key, "wechat_split")["config_id"]
    direct = create_config(client, api_key, "wechat_direct", wechatpay_public_key_id=PUBLIC_KEY_ID)[
        "config_id"
    ]
    alipay = create_config(client, api_key, "alipay_direct")["config_id"]
    for site, config_id in (
        (WECHAT_SITE, split),
        (DIRECT_SITE, direct),
        (ALIPAY_SITE, alipay),
        (WECHAT_SITE, alipay),
    ):
        assert bind(client, api_key, site, config_id).status_code == 200
    return {"wechat_split": split, "wechat_direct": direct, "alipay_direct": alipay}


@pytest.fixture
def served_fakes(payment_app, monkeypatch) -> Iterator[tuple[FakeWechatPay, FakeAlipay]]:
    wechat, alipay = wechat_fake_app(), alipay_fake_app()
    with running(wechat) as wechat_url, running(alipay) as alipay_url:
        monkeypatch.setitem(payment_app.config, "WECHATPAY_BASE_URL", wechat_url)
        monkeypatch.setitem(payment_app.config, "ALIPAY_GATEWAY_URL", alipay_url + "/gateway.do")
        yield wechat, alipay


@pytest.fixture
def fakes(served_fakes, payment_client) -> tuple[FakeWechatPay, FakeAlipay]:
    """Both fakes served on loopback, their notifications posted into the test client."""
    route_notifications_to(payment_client, *served_fakes)
    return served_fakes


@pytest.fixture
def sites(payment_client, admin) -> dict[str, str]:
    return set_up_sites(payment_client, admin)


@dataclass
class Published:
    tasks: list[tuple[str, str, float]] = field(default_factory=list)

    def of(self, task: str) -> list[str]:
        return [order_id for name, order_id, _countdown in self.tasks if name == task]


@pytest.fixture
def published(monkeypatch) -> Published:
    """Records what would be published to the broker after commits (the test broker cannot take it)."""
    from payment_service import outbox

    record = Published()

    def publish(task: str, order_id: str, queue: str, countdown: float) -> bool:
        record.tasks.append((task, order_id, countdown))
        return True

    monkeypatch.setattr(outbox, "_publish", publish)
    return record
