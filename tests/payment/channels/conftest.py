"""Credentials, throwaway keys and loopback fakes for the channel tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alipay import AliPay
from wechatpayv3 import utils as wxutils

from payment_service.channels.alipay import AlipayClient, AlipayCredentials
from payment_service.channels.wechat import WechatCredentials, WechatPayClient
from payment_service.channels.wechat import signing as wechat_signing
from tests.fakes.alipay import FakeAlipay
from tests.fakes.keys import TestKeyPair, key_pair
from tests.fakes.payment_server import running
from tests.fakes.wechatpay import FakeWechatPay

SP_MCHID = "1900000109"
SUB_MCHID = "1900000110"
SP_APPID = "wx8888888888888888"
SUB_APPID = "wx9999999999999999"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
API_V3_KEY = "a" * 16 + "B" * 8 + "0123456X"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092024101000000000"
WECHAT_BASE = "https://api.mch.weixin.qq.com"

FROZEN_TIME = 1715328000
FROZEN_NONCE = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"

ALIPAY_APP_ID = "2021000117650001"
ALIPAY_SELLER_ID = "2088101117955611"
ALIPAY_GATEWAY = "https://openapi.alipay.com/gateway.do"


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Freeze our WeChat timestamp and nonce, and wechatpayv3's timestamp, to the same values."""
    monkeypatch.setattr(wechat_signing, "_unix_time", lambda: FROZEN_TIME)
    monkeypatch.setattr(wechat_signing, "_new_nonce", lambda: FROZEN_NONCE)
    monkeypatch.setattr(wxutils.time, "time", lambda: FROZEN_TIME)


@pytest.fixture(scope="session")
def merchant_keys() -> TestKeyPair:
    return key_pair("merchant")


@pytest.fixture(scope="session")
def platform_keys() -> TestKeyPair:
    return key_pair("wechatpay-platform")


@pytest.fixture(scope="session")
def app_keys() -> TestKeyPair:
    return key_pair("alipay-app")


@pytest.fixture(scope="session")
def alipay_keys() -> TestKeyPair:
    return key_pair("alipay-platform")


@pytest.fixture
def app_side_sdk(app_keys: TestKeyPair, alipay_keys: TestKeyPair) -> AliPay:
    """python-alipay-sdk as our app: signs with the app key, verifies with Alipay's public key."""
    return AliPay(
        appid=ALIPAY_APP_ID,
        app_private_key_string=app_keys.private_pem,
        alipay_public_key_string=alipay_keys.public_pem,
        sign_type="RSA2",
    )


@pytest.fixture
def alipay_side_sdk(app_keys: TestKeyPair, alipay_keys: TestKeyPair) -> AliPay:
    """python-alipay-sdk with the keys swapped: its `_sign` is what Alipay's own signature would be."""
    return AliPay(
        appid=ALIPAY_APP_ID,
        app_private_key_string=alipay_keys.private_pem,
        alipay_public_key_string=app_keys.public_pem,
        sign_type="RSA2",
    )


def make_wechat_credentials(
    merchant_keys: TestKeyPair, platform_keys: TestKeyPair, **overrides: object
) -> WechatCredentials:
    values: dict[str, object] = {
        "mch_id": SP_MCHID,
        "app_id": SP_APPID,
        "api_key": API_V3_KEY,
        "merchant_serial_no": MERCHANT_SERIAL,
        "merchant_private_key": merchant_keys.private_pem,
        "wechatpay_public_key_id": PUBLIC_KEY_ID,
        "wechatpay_public_key": platform_keys.public_pem,
        "sub_mch_id": SUB_MCHID,
    }
    values.update(overrides)
    return WechatCredentials(**values)  # type: ignore[arg-type]


@pytest.fixture
def partner_client(merchant_keys: TestKeyPair, platform_keys: TestKeyPair) -> WechatPayClient:
    return WechatPayClient(make_wechat_credentials(merchant_keys, platform_keys), "wechat_split", WECHAT_BASE)


@pytest.fixture
def direct_client(merchant_keys: TestKeyPair, platform_keys: TestKeyPair) -> WechatPayClient:
    credentials = make_wechat_credentials(merchant_keys, platform_keys, sub_mch_id=None)
    return WechatPayClient(credentials, "wechat_direct", WECHAT_BASE)


@pytest.fixture
def alipay_client(app_keys: TestKeyPair, alipay_keys: TestKeyPair) -> AlipayClient:
    credentials = AlipayCredentials(
        ALIPAY_APP_ID, app_keys.private_pem, alipay_keys.public_pem, ALIPAY_SELLER_ID
    )
    return AlipayClient(credentials, ALIPAY_GATEWAY)


@pytest.fixture
def fake_wechat(
    merchant_keys: TestKeyPair, platform_keys: TestKeyPair
) -> Iterator[tuple[FakeWechatPay, str]]:
    """The WeChat Pay fake on loopback, with our merchant registered; yields (fake, base_url)."""
    fake = FakeWechatPay(
        require_https_notify_url=False, platform_keys=platform_keys, public_key_id=PUBLIC_KEY_ID
    )
    fake.register_merchant(SP_MCHID, MERCHANT_SERIAL, merchant_keys.public_pem, API_V3_KEY)
    with running(fake) as base_url:
        yield fake, base_url


@pytest.fixture
def fake_alipay(app_keys: TestKeyPair, alipay_keys: TestKeyPair) -> Iterator[tuple[FakeAlipay, str]]:
    """The Alipay gateway fake on loopback, with our app registered; yields (fake, gateway_url)."""
    fake = FakeAlipay(alipay_keys=alipay_keys)
    fake.register_app(ALIPAY_APP_ID, app_keys.public_pem, ALIPAY_SELLER_ID)
    with running(fake) as base_url:
        yield fake, base_url + "/gateway.do"
