"""WeChat Pay v3 client: request signatures against wechatpayv3, order bodies, credentials."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import responses
from wechatpayv3 import utils as wxutils

from payment_service.channels.keys import KeyFormatError
from payment_service.channels.wechat import (
    WechatCredentials,
    WechatPayClient,
)
from tests.payment.channels.conftest import (
    API_V3_KEY,
    FROZEN_NONCE,
    FROZEN_TIME,
    MERCHANT_SERIAL,
    PUBLIC_KEY_ID,
    SP_APPID,
    SP_MCHID,
    SUB_APPID,
    SUB_MCHID,
    WECHAT_BASE,
    make_wechat_credentials,
)

# loopback_client and signed_headers are re-exported for the test_wechat_refunds modules.
from tests.payment.channels.wechat_helpers import (  # noqa: F401
    PARTNER_JSAPI,
    add_signed,
    loopback_client,
    make_order,
    signed_headers,
    wechatpayv3_client,
)

# -- signatures against wechatpayv3 -----------------------------------------------------------------------


def test_pay_sign_matches_wechatpayv3(frozen, partner_client, merchant_keys, platform_keys):
    params = partner_client.pay_params("wx201410272009395522657a690389285100")

    assert params == {
        "appId": SP_APPID,
        "timeStamp": str(FROZEN_TIME),
        "nonceStr": FROZEN_NONCE,
        "package": "prepay_id=wx201410272009395522657a690389285100",
        "signType": "RSA",
        "paySign": params["paySign"],
    }
    sdk = wechatpayv3_client(merchant_keys, platform_keys, SP_APPID)
    expected = sdk.sign(
        [SP_APPID, str(FROZEN_TIME), FROZEN_NONCE, "prepay_id=wx201410272009395522657a690389285100"]
    )
    assert params["paySign"] == expected


def test_pay_params_use_the_sub_app_when_configured(frozen, merchant_keys, platform_keys):
    credentials = make_wechat_credentials(merchant_keys, platform_keys, sub_app_id=SUB_APPID)
    client = WechatPayClient(credentials, "wechat_split", WECHAT_BASE)

    params = client.pay_params("wx1")

    assert params["appId"] == SUB_APPID
    sdk = wechatpayv3_client(merchant_keys, platform_keys, SUB_APPID)
    assert params["paySign"] == sdk.sign([SUB_APPID, str(FROZEN_TIME), FROZEN_NONCE, "prepay_id=wx1"])


@responses.activate
def test_authorization_header_matches_wechatpayv3_for_a_post(
    frozen, partner_client, merchant_keys, platform_keys
):
    add_signed(responses.mock, platform_keys, "POST", PARTNER_JSAPI, {"prepay_id": "wx1"})

    partner_client.create_jsapi_order(make_order())

    sent = responses.calls[0].request
    expected = wxutils.build_authorization(
        "/v3/pay/partner/transactions/jsapi",
        "POST",
        SP_MCHID,
        MERCHANT_SERIAL,
        wxutils.load_private_key(merchant_keys.private_pem),
        data=sent.body.decode("utf-8"),
        nonce_str=FROZEN_NONCE,
    )
    assert sent.headers["Authorization"] == expected
    assert sent.headers["Wechatpay-Serial"] == PUBLIC_KEY_ID
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"]


@responses.activate
def test_authorization_header_signs_path_and_query_for_a_get(
    frozen, partner_client, merchant_keys, platform_keys
):
    url = f"{WECHAT_BASE}/v3/pay/partner/transactions/out-trade-no/TXN_1_abc"
    add_signed(responses.mock, platform_keys, "GET", url, {"trade_state": "NOTPAY", "amount": {"total": 1}})

    partner_client.query_order("TXN_1_abc")

    sent = responses.calls[0].request
    assert (
        sent.path_url
        == f"/v3/pay/partner/transactions/out-trade-no/TXN_1_abc?sp_mchid={SP_MCHID}&sub_mchid={SUB_MCHID}"
    )
    expected = wxutils.build_authorization(
        sent.path_url,
        "GET",
        SP_MCHID,
        MERCHANT_SERIAL,
        wxutils.load_private_key(merchant_keys.private_pem),
        nonce_str=FROZEN_NONCE,
    )
    assert sent.headers["Authorization"] == expected
    assert sent.body is None


# -- order bodies ---------------------------------------------------------------------------------------


@responses.activate
def test_partner_order_body_and_pay_params(partner_client, platform_keys):
    add_signed(
        responses.mock,
        platform_keys,
        "POST",
        PARTNER_JSAPI,
        {"prepay_id": "wx26112221580621e9b071c00d9e093b0000"},
    )
    expire_at = datetime(2026, 5, 10, 2, 30, tzinfo=UTC)

    created = partner_client.create_jsapi_order(make_order(expire_at=expire_at, profit_sharing=True))

    assert json.loads(responses.calls[0].request.body) == {
        "sp_appid": SP_APPID,
        "sp_mchid": SP_MCHID,
        "sub_mchid": SUB_MCHID,
        "description": "自助洗衣-标准洗-30分钟",
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "notify_url": "https://pay.example.com/api/v1/payment/notify/wechat",
        "time_expire": "2026-05-10T10:30:00+08:00",
        "amount": {"total": 2000, "currency": "CNY"},
        "payer": {"sp_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "settle_info": {"profit_sharing": True},
    }
    assert created.channel_order_ref == "wx26112221580621e9b071c00d9e093b0000"
    assert created.pay_params["package"] == "prepay_id=wx26112221580621e9b071c00d9e093b0000"
    assert list(created.pay_params) == ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign"]


@responses.activate
def test_partner_order_with_sub_app_pays_with_sub_openid(merchant_keys, platform_keys):
    client = WechatPayClient(
        make_wechat_credentials(merchant_keys, platform_keys, sub_app_id=SUB_APPID),
        "wechat_split",
        WECHAT_BASE,
    )
    add_signed(responses.mock, platform_keys, "POST", PARTNER_JSAPI, {"prepay_id": "wx1"})

    client.create_jsapi_order(make_order())

    body = json.loads(responses.calls[0].request.body)
    assert body["sub_appid"] == SUB_APPID
    assert body["payer"] == {"sub_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    assert "settle_info" not in body and "time_expire" not in body


@responses.activate
def test_direct_order_body(direct_client, platform_keys):
    add_signed(
        responses.mock,
        platform_keys,
        "POST",
        f"{WECHAT_BASE}/v3/pay/transactions/jsapi",
        {"prepay_id": "wx2"},
    )

    created = direct_client.create_order(make_order())

    sent = responses.calls[0].request
    assert json.loads(sent.body) == {
        "appid": SP_APPID,
        "mchid": SP_MCHID,
        "description": "自助洗衣-标准洗-30分钟",
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "notify_url": "https://pay.example.com/api/v1/payment/notify/wechat",
        "amount": {"total": 2000, "currency": "CNY"},
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    }
    assert 'mchid="1900000109"' in sent.headers["Authorization"]
    assert created.pay_params["appId"] == SP_APPID


# -- credentials ----------------------------------------------------------------------------------------


def test_credentials_from_config_params(merchant_keys, platform_keys):
    params = {
        "service_mch_id": SP_MCHID,
        "sub_mch_id": SUB_MCHID,
        "app_id": SP_APPID,
        "sub_app_id": SUB_APPID,
        "api_key": API_V3_KEY,
        "merchant_serial_no": MERCHANT_SERIAL,
        "merchant_private_key": merchant_keys.private_pkcs1_pem,
        "wechatpay_public_key_id": PUBLIC_KEY_ID,
        "wechatpay_public_key": platform_keys.public_base64,
    }
    credentials = WechatCredentials.from_params("wechat_split", params)

    assert (credentials.mch_id, credentials.sub_mch_id, credentials.sub_app_id) == (
        SP_MCHID,
        SUB_MCHID,
        SUB_APPID,
    )
    assert API_V3_KEY not in repr(credentials) and "PRIVATE" not in repr(credentials)
    direct = WechatCredentials.from_params("wechat_direct", {**params, "mch_id": "1230000109"})
    assert (direct.mch_id, direct.sub_mch_id, direct.sub_app_id) == ("1230000109", None, None)


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"api_key": "short"}, ValueError),
        ({"merchant_private_key": "not a key"}, KeyFormatError),
        (
            {"wechatpay_public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
            KeyFormatError,
        ),
        ({"mch_id": ""}, ValueError),
    ],
)
def test_bad_credentials_fail_early(merchant_keys, platform_keys, override, error):
    with pytest.raises(error):
        make_wechat_credentials(merchant_keys, platform_keys, **override)


def test_split_mode_needs_a_sub_merchant(merchant_keys, platform_keys):
    with pytest.raises(ValueError, match="sub_mch_id"):
        WechatPayClient(
            make_wechat_credentials(merchant_keys, platform_keys, sub_mch_id=None), "wechat_split"
        )
    with pytest.raises(ValueError, match="timeout"):
        WechatPayClient(make_wechat_credentials(merchant_keys, platform_keys), "wechat_split", timeout=30)
