"""WeChat Pay v3 client: signatures checked against wechatpayv3, transport with `responses`, then the fake."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3 import utils as wxutils

from payment_service.channels import CHANNEL_BY_MODE, AlipayClient, build_channel
from payment_service.channels.base import ChannelError, NotificationRejected, OrderRequest
from payment_service.channels.keys import KeyFormatError
from payment_service.channels.wechat import (
    SharingReceiver,
    SharingTransfer,
    WechatCredentials,
    WechatPayClient,
    notification_key_id,
    split_amounts,
)
from tests.fakes.keys import TestKeyPair, new_key_pair
from tests.fakes.payment_server import Answer, NotifyReceiver, ReceivedNotification, running
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

PARTNER_JSAPI = f"{WECHAT_BASE}/v3/pay/partner/transactions/jsapi"


def make_order(**overrides: object) -> OrderRequest:
    values: dict[str, object] = {
        "transaction_id": "TXN_20260510_7Hq2mK9xPz",
        "amount_fen": 2000,
        "description": "自助洗衣-标准洗-30分钟",
        "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        "notify_url": "https://pay.example.com/api/v1/payment/notify/wechat",
        "expire_at": None,
        "profit_sharing": False,
    }
    values.update(overrides)
    return OrderRequest(**values)  # type: ignore[arg-type]


def wechatpayv3_client(merchant_keys: TestKeyPair, platform_keys: TestKeyPair, appid: str) -> WeChatPay:
    # public_key + public_key_id keep the SDK offline (no /v3/certificates download).
    return WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=SP_MCHID,
        private_key=merchant_keys.private_pem,
        cert_serial_no=MERCHANT_SERIAL,
        appid=appid,
        apiv3_key=API_V3_KEY,
        partner_mode=True,
        public_key=platform_keys.public_pem,
        public_key_id=PUBLIC_KEY_ID,
    )


def signed_headers(platform_keys: TestKeyPair, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Wechatpay-* headers computed with wechatpayv3's signer, independently of our code."""
    stamp = str(timestamp if timestamp is not None else int(datetime.now(UTC).timestamp()))
    nonce = "fNYGeJxzSc8NpwyJ5YCdzjf1Lbl5bWpZ"
    message = f"{stamp}\n{nonce}\n{body.decode()}\n"
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": wxutils.rsa_sign(platform_keys.private_key, message),
        "Wechatpay-Serial": PUBLIC_KEY_ID,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def add_signed(
    rsps: responses.RequestsMock,
    platform_keys: TestKeyPair,
    method: str,
    url: str,
    payload: object,
    status=200,
) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    rsps.add(method, url, body=body, status=status, headers=signed_headers(platform_keys, body))


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


# -- transport and response verification ----------------------------------------------------------------


@responses.activate
def test_upstream_error_becomes_channel_error_with_wechat_code(partner_client, platform_keys):
    add_signed(
        responses.mock,
        platform_keys,
        "POST",
        PARTNER_JSAPI,
        {"code": "SYSTEM_ERROR", "message": "系统错误"},
        500,
    )

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert (caught.value.code, caught.value.message, caught.value.http_status) == (
        "SYSTEM_ERROR",
        "系统错误",
        500,
    )
    assert caught.value.retryable
    assert caught.value.as_details() == {
        "upstream_code": "SYSTEM_ERROR",
        "upstream_message": "系统错误",
        "http_status": 500,
    }


@responses.activate
def test_business_refusal_is_not_retryable(partner_client):
    responses.add(
        "POST", PARTNER_JSAPI, json={"code": "OUT_TRADE_NO_USED", "message": "商户订单号重复"}, status=403
    )

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "OUT_TRADE_NO_USED" and caught.value.http_status == 403
    assert not caught.value.retryable


@responses.activate
def test_error_without_json_body(partner_client):
    responses.add("POST", PARTNER_JSAPI, body="<html>bad gateway</html>", status=502)

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "HTTP_502" and caught.value.http_status == 502


@responses.activate
def test_unsigned_success_is_refused(partner_client):
    responses.add("POST", PARTNER_JSAPI, json={"prepay_id": "wx_forged"}, status=200)

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "BAD_SIGNATURE"


@responses.activate
def test_success_signed_by_another_key_is_refused(partner_client):
    body = json.dumps({"prepay_id": "wx_forged"}).encode()
    responses.add("POST", PARTNER_JSAPI, body=body, headers=signed_headers(new_key_pair(), body))

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.create_jsapi_order(make_order())


@responses.activate
def test_success_whose_body_was_altered_is_refused(partner_client, platform_keys):
    signed = b'{"prepay_id":"wx_real"}'  # what was signed; a re-spaced body is not it
    responses.add(
        "POST", PARTNER_JSAPI, body=b'{"prepay_id": "wx_real"}', headers=signed_headers(platform_keys, signed)
    )

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.create_jsapi_order(make_order())


@responses.activate
def test_stale_response_signature_is_refused(partner_client, platform_keys):
    body = json.dumps({"prepay_id": "wx_old"}).encode()
    stale = int(datetime.now(UTC).timestamp()) - 600
    responses.add("POST", PARTNER_JSAPI, body=body, headers=signed_headers(platform_keys, body, stale))

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.create_jsapi_order(make_order())


@responses.activate
def test_timeout_becomes_channel_error(partner_client):
    responses.add("POST", PARTNER_JSAPI, body=requests.exceptions.ReadTimeout("slow"))

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "TIMEOUT" and caught.value.retryable


@responses.activate
def test_connection_failure_becomes_channel_error(partner_client):
    responses.add("POST", PARTNER_JSAPI, body=requests.exceptions.ConnectionError("refused"))

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "NETWORK_ERROR"


@responses.activate
def test_missing_prepay_id_is_a_bad_response(partner_client, platform_keys):
    add_signed(responses.mock, platform_keys, "POST", PARTNER_JSAPI, {"unexpected": True})

    with pytest.raises(ChannelError, match="BAD_RESPONSE"):
        partner_client.create_jsapi_order(make_order())


@pytest.mark.parametrize(
    ("trade_state", "state"),
    [
        ("SUCCESS", "paid"),
        ("NOTPAY", "pending"),
        ("USERPAYING", "pending"),
        ("CLOSED", "closed"),
        ("REVOKED", "closed"),
        ("PAYERROR", "failed"),
        ("REFUND", "paid"),
    ],
)
@responses.activate
def test_query_maps_trade_states(partner_client, platform_keys, trade_state, state):
    url = f"{WECHAT_BASE}/v3/pay/partner/transactions/out-trade-no/TXN_1_abc"
    payload = {
        "trade_state": trade_state,
        "transaction_id": "4200000985202405103345316402",
        "amount": {"total": 2000, "payer_total": 2000},
        "success_time": "2024-05-10T16:00:05+08:00",
    }
    add_signed(responses.mock, platform_keys, "GET", url, payload)

    queried = partner_client.query_order("TXN_1_abc")

    assert queried.state == state and queried.trade_state == trade_state
    assert queried.amount_fen == 2000
    assert queried.channel_transaction_id == "4200000985202405103345316402"
    assert queried.paid_at == datetime(2024, 5, 10, 8, 0, 5, tzinfo=UTC)


@responses.activate
def test_direct_query_uses_mchid(direct_client, platform_keys):
    url = f"{WECHAT_BASE}/v3/pay/transactions/out-trade-no/TXN_1_abc"
    add_signed(responses.mock, platform_keys, "GET", url, {"trade_state": "NOTPAY", "amount": {"total": 5}})

    assert direct_client.query_order("TXN_1_abc").state == "pending"
    assert responses.calls[0].request.path_url.endswith(f"?mchid={SP_MCHID}")


@responses.activate
def test_close_accepts_a_signed_204(partner_client, platform_keys):
    url = f"{WECHAT_BASE}/v3/pay/partner/transactions/out-trade-no/TXN_1_abc/close"
    add_signed(responses.mock, platform_keys, "POST", url, None, status=204)

    partner_client.close_order("TXN_1_abc")

    assert json.loads(responses.calls[0].request.body) == {"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID}


@responses.activate
def test_close_refuses_an_unsigned_204(partner_client):
    responses.add(
        "POST", f"{WECHAT_BASE}/v3/pay/partner/transactions/out-trade-no/TXN_1_abc/close", status=204
    )

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.close_order("TXN_1_abc")


# -- profit sharing requests ----------------------------------------------------------------------------


@responses.activate
def test_add_receiver_encrypts_the_name_for_wechat(partner_client, platform_keys):
    url = f"{WECHAT_BASE}/v3/profitsharing/receivers/add"
    add_signed(responses.mock, platform_keys, "POST", url, {"type": "MERCHANT_ID", "account": "1001"})

    partner_client.add_receiver(
        SharingReceiver(account="1001", name="华北洗衣连锁有限公司", relation_type="SERVICE_PROVIDER")
    )

    sent = responses.calls[0].request
    body = json.loads(sent.body)
    assert sent.headers["Wechatpay-Serial"] == PUBLIC_KEY_ID
    assert wxutils.rsa_decrypt(body.pop("name"), platform_keys.private_key) == "华北洗衣连锁有限公司"
    assert body == {
        "sub_mchid": SUB_MCHID,
        "appid": SP_APPID,
        "type": "MERCHANT_ID",
        "account": "1001",
        "relation_type": "SERVICE_PROVIDER",
    }


@responses.activate
def test_create_and_query_profit_sharing(partner_client, platform_keys):
    answer = {
        "sub_mchid": SUB_MCHID,
        "transaction_id": "4208450740201411110007820472",
        "out_order_no": "PS_TXN_1",
        "order_id": "3008450740201411110007820472",
        "state": "PROCESSING",
        "receivers": [
            {
                "type": "MERCHANT_ID",
                "account": "1001",
                "amount": 300,
                "description": "平台佣金",
                "result": "PENDING",
                "detail_id": "36011111111111111111111",
            }
        ],
    }
    add_signed(responses.mock, platform_keys, "POST", f"{WECHAT_BASE}/v3/profitsharing/orders", answer)
    add_signed(
        responses.mock,
        platform_keys,
        "GET",
        f"{WECHAT_BASE}/v3/profitsharing/orders/PS_TXN_1",
        {**answer, "state": "FINISHED"},
    )

    created = partner_client.create_profit_sharing(
        "4208450740201411110007820472", "PS_TXN_1", [SharingTransfer("1001", 300, "平台佣金")]
    )
    queried = partner_client.query_profit_sharing("PS_TXN_1", "4208450740201411110007820472")

    assert json.loads(responses.calls[0].request.body) == {
        "sub_mchid": SUB_MCHID,
        "appid": SP_APPID,
        "transaction_id": "4208450740201411110007820472",
        "out_order_no": "PS_TXN_1",
        "receivers": [{"type": "MERCHANT_ID", "account": "1001", "amount": 300, "description": "平台佣金"}],
        "unfreeze_unsplit": True,
    }
    assert created.state == "PROCESSING" and created.receivers[0].result == "PENDING"
    assert created.receivers[0].amount_fen == 300
    assert queried.state == "FINISHED"
    assert responses.calls[1].request.path_url == (
        f"/v3/profitsharing/orders/PS_TXN_1?sub_mchid={SUB_MCHID}&transaction_id=4208450740201411110007820472"
    )


# -- notifications --------------------------------------------------------------------------------------


def transaction_resource(**overrides: object) -> dict[str, object]:
    resource: dict[str, object] = {
        "sp_appid": SP_APPID,
        "sp_mchid": SP_MCHID,
        "sub_mchid": SUB_MCHID,
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "transaction_id": "4200000985202405103345316402",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "CMC",
        "attach": "",
        "success_time": "2026-05-10T18:00:05+08:00",
        "payer": {"sp_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 2000, "payer_total": 2000, "currency": "CNY", "payer_currency": "CNY"},
    }
    resource.update(overrides)
    return resource


def notification(
    platform_keys: TestKeyPair,
    resource: dict[str, object],
    *,
    key: str = API_V3_KEY,
    timestamp: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """A notification built without our code: AES-GCM straight from cryptography, signed by wechatpayv3."""
    nonce = "fdasflkja484"
    ciphertext = AESGCM(key.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), b"transaction")
    body = json.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": "2026-05-10T18:00:06+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        },
        ensure_ascii=False,
    ).encode()
    return signed_headers(platform_keys, body, timestamp), body


def test_notification_is_verified_and_decrypted(partner_client, platform_keys, merchant_keys):
    headers, body = notification(platform_keys, transaction_resource())

    notice = partner_client.parse_notification(headers, body)

    assert notice.out_trade_no == "TXN_20260510_7Hq2mK9xPz"
    assert notice.channel_transaction_id == "4200000985202405103345316402"
    assert notice.amount_fen == 2000
    assert notice.merchant_ids == {"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID, "sp_appid": SP_APPID}
    assert notice.paid_at == datetime(2026, 5, 10, 10, 0, 5, tzinfo=UTC)
    assert notice.trade_state == "SUCCESS" and notice.paid
    # The same bytes pass wechatpayv3's own callback handling: the fixture is what WeChat sends.
    sdk = wechatpayv3_client(merchant_keys, platform_keys, SP_APPID)
    assert sdk.callback(headers, body)["resource"]["out_trade_no"] == "TXN_20260510_7Hq2mK9xPz"


def test_notification_headers_are_case_insensitive(partner_client, platform_keys):
    headers, body = notification(platform_keys, transaction_resource())
    lowered = {k.lower(): v for k, v in headers.items()}

    notice = partner_client.read_notification(lowered, body)

    assert notice.paid
    assert notification_key_id(lowered) == notification_key_id(headers) == PUBLIC_KEY_ID
    assert notification_key_id({}) is None


def test_direct_notification(direct_client, platform_keys):
    resource = transaction_resource()
    for key in ("sp_appid", "sp_mchid", "sub_mchid"):
        resource.pop(key)
    resource.update(appid=SP_APPID, mchid=SP_MCHID, payer={"openid": "o1"})
    headers, body = notification(platform_keys, resource)

    assert direct_client.parse_notification(headers, body).merchant_ids == {
        "mchid": SP_MCHID,
        "appid": SP_APPID,
    }


def tamper(headers: dict[str, str], body: bytes, which: str) -> tuple[dict[str, str], bytes]:
    headers = dict(headers)
    if which == "body":
        body = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESs")
    elif which == "serial":
        headers["Wechatpay-Serial"] = "PUB_KEY_ID_SOMEONE_ELSE"
    elif which == "unsigned":
        del headers["Wechatpay-Signature"]
    elif which == "probe":
        headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    elif which == "scheme":
        headers["Wechatpay-Signature-Type"] = "WECHATPAY2-SM2-WITH-SM3"
    return headers, body


@pytest.mark.parametrize("which", ["body", "serial", "unsigned", "probe", "scheme"])
def test_tampered_notification_is_rejected(partner_client, platform_keys, which):
    headers, body = tamper(*notification(platform_keys, transaction_resource()), which)

    with pytest.raises(NotificationRejected):
        partner_client.parse_notification(headers, body)


def test_notification_older_than_five_minutes_is_rejected(partner_client, platform_keys):
    signed_at = datetime(2026, 5, 10, 10, 0, tzinfo=UTC)
    headers, body = notification(platform_keys, transaction_resource(), timestamp=int(signed_at.timestamp()))

    assert partner_client.parse_notification(headers, body, now=signed_at + timedelta(minutes=4, seconds=59))
    with pytest.raises(NotificationRejected, match="five minutes"):
        partner_client.parse_notification(headers, body, now=signed_at + timedelta(minutes=5, seconds=1))
    with pytest.raises(NotificationRejected, match="five minutes"):
        partner_client.parse_notification(headers, body, now=signed_at - timedelta(minutes=6))


def test_notification_encrypted_with_another_key_is_rejected(partner_client, platform_keys):
    headers, body = notification(platform_keys, transaction_resource(), key="Z" * 32)

    with pytest.raises(NotificationRejected, match="decrypt"):
        partner_client.parse_notification(headers, body)


@pytest.mark.parametrize("field", ["sp_mchid", "sub_mchid"])
def test_notification_for_another_merchant_is_rejected(partner_client, platform_keys, field):
    headers, body = notification(platform_keys, transaction_resource(**{field: "1230000109"}))

    with pytest.raises(NotificationRejected, match="another merchant"):
        partner_client.parse_notification(headers, body)


def test_notification_reply_formats(partner_client):
    assert partner_client.notification_reply(True).status == 204
    assert partner_client.notification_reply(True).body == b""
    failure = partner_client.notification_reply(False)
    assert failure.status >= 400 and json.loads(failure.body) == {"code": "FAIL", "message": "失败"}


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


# -- split_amounts --------------------------------------------------------------------------------------


def receivers(*pairs: tuple[str, object]) -> list[dict[str, object]]:
    return [
        {"receiver_type": "platform", "merchant_id": merchant_id, "ratio": ratio}
        for merchant_id, ratio in pairs
    ]


def test_split_ratios_that_sum_to_exactly_one_are_accepted():
    # 0.34 + 0.56 + 0.1 is 0.9999999999999999 in binary floats and exactly 1 as decimals.
    config = receivers(("1001", 0.34), ("2001", 0.56), ("3001", 0.1))

    split = split_amounts(10000, config, SUB_MCHID)

    assert [fen for _, fen in split] == [3400, 5600, 1000]
    assert [r["merchant_id"] for r, _ in split] == ["1001", "2001", "3001"]


def test_split_floors_each_receiver_and_leaves_the_rest_to_the_sub_merchant():
    split = split_amounts(1001, receivers(("1001", "0.15"), ("2001", "0.85")), SUB_MCHID)

    assert [fen for _, fen in split] == [150, 850]  # 150.15 → 150, 850.85 → 850; 1 fen stays


def test_split_never_transfers_the_sub_merchants_own_share():
    split = split_amounts(2000, receivers(("1001", 0.15), (SUB_MCHID, 0.85)), SUB_MCHID)

    assert [(r["merchant_id"], fen) for r, fen in split] == [("1001", 300)]


def test_split_skips_receivers_that_come_to_zero_fen():
    split = split_amounts(5, receivers(("1001", Decimal("0.15")), ("2001", Decimal("0.5"))), SUB_MCHID)

    assert [(r["merchant_id"], fen) for r, fen in split] == [("2001", 2)]  # 0.75 → 0 is skipped


def test_split_of_one_fen_and_of_nothing():
    assert split_amounts(1, receivers(("1001", 0.99)), SUB_MCHID) == []
    assert split_amounts(0, receivers(("1001", 1)), SUB_MCHID) == []
    assert split_amounts(99, receivers(("1001", 1)), SUB_MCHID)[0][1] == 99


@pytest.mark.parametrize(
    "config",
    [
        receivers(("1001", 0.6), ("2001", 0.41)),
        receivers(("1001", 0)),
        receivers(("1001", -0.1)),
        receivers(("1001", 1.5)),
        receivers(("1001", "abc")),
        receivers(("1001", "NaN")),
    ],
)
def test_split_refuses_impossible_ratios(config):
    with pytest.raises(ValueError):
        split_amounts(100, config, SUB_MCHID)


# -- against the fake, over real sockets ----------------------------------------------------------------


def loopback_client(merchant_keys, platform_keys, base_url: str, **overrides: object) -> WechatPayClient:
    timeout = overrides.pop("timeout", 5.0)
    credentials = make_wechat_credentials(merchant_keys, platform_keys, **overrides)
    mode = "wechat_split" if credentials.sub_mch_id else "wechat_direct"
    return WechatPayClient(credentials, mode, base_url, timeout=timeout)  # type: ignore[arg-type]


def test_order_paid_and_notified_through_the_fake(fake_wechat, merchant_keys, platform_keys):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    notices = []

    def our_endpoint(received: ReceivedNotification) -> Answer:
        notice = client.parse_notification(received.headers, received.body)
        notices.append(notice)
        reply = client.notification_reply(True)
        return Answer(reply.status, reply.body, reply.content_type)

    receiver = NotifyReceiver(our_endpoint)
    with running(receiver) as notify_base:
        order = make_order(notify_url=f"{notify_base}/api/v1/payment/notify/wechat", profit_sharing=True)
        created = client.create_jsapi_order(order)
        assert client.query_order(order.transaction_id).state == "pending"

        delivery = fake.pay(order.transaction_id)

    assert delivery.status == 204 and delivery.acknowledged and not receiver.errors
    assert created.channel_order_ref == fake.find_order(order.transaction_id).prepay_id
    [notice] = notices
    assert (notice.out_trade_no, notice.amount_fen, notice.paid) == (order.transaction_id, 2000, True)
    queried = client.query_order(order.transaction_id)
    assert queried.state == "paid" and queried.channel_transaction_id == notice.channel_transaction_id


def test_direct_merchant_through_the_fake(fake_wechat, merchant_keys, platform_keys):
    _, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url, sub_mch_id=None)

    client.create_order(make_order(transaction_id="TXN_direct_001"))
    client.close_order("TXN_direct_001")

    assert client.query_order("TXN_direct_001").state == "closed"


def test_fake_rejects_a_request_signed_with_the_wrong_key(fake_wechat, platform_keys):
    _, base_url = fake_wechat
    client = loopback_client(new_key_pair(), platform_keys, base_url)

    with pytest.raises(ChannelError) as caught:
        client.create_jsapi_order(make_order())

    assert (caught.value.code, caught.value.http_status) == ("SIGN_ERROR", 401)


def test_fake_validates_the_order_body(fake_wechat, merchant_keys, platform_keys):
    _, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)

    with pytest.raises(ChannelError) as caught:
        client.create_jsapi_order(make_order(transaction_id="TXN#1"))

    assert (caught.value.code, caught.value.http_status) == ("PARAM_ERROR", 400)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "error", "status": 500}, "SYSTEM_ERROR"),
        ({"kind": "unsigned"}, "BAD_SIGNATURE"),
        ({"kind": "bad_signature"}, "BAD_SIGNATURE"),
        ({"kind": "delay", "delay_ms": 1500}, "TIMEOUT"),
    ],
)
def test_fake_faults_become_channel_errors(fake_wechat, merchant_keys, platform_keys, fault, code):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url, timeout=0.5)
    fake.fail_next(**fault)

    with pytest.raises(ChannelError) as caught:
        client.create_jsapi_order(make_order())

    assert caught.value.code == code


def test_profit_sharing_through_the_fake(fake_wechat, merchant_keys, platform_keys):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    config = receivers(("1001", 0.15), (SUB_MCHID, 0.85))
    with running(NotifyReceiver()) as notify_base:
        order = make_order(notify_url=f"{notify_base}/notify", profit_sharing=True)
        client.create_jsapi_order(order)
        fake.pay(order.transaction_id)
    transaction_id = fake.find_order(order.transaction_id).transaction_id

    client.add_receiver(
        SharingReceiver(account="1001", name="平台运营有限公司", relation_type="SERVICE_PROVIDER")
    )
    transfers = [
        SharingTransfer(r["merchant_id"], fen, "平台佣金")
        for r, fen in split_amounts(2000, config, SUB_MCHID)
    ]
    created = client.create_profit_sharing(transaction_id, f"PS_{order.transaction_id}", transfers)
    again = client.create_profit_sharing(transaction_id, f"PS_{order.transaction_id}", transfers)
    finished = client.query_profit_sharing(f"PS_{order.transaction_id}", transaction_id)

    assert created.state == "PROCESSING" and again.order_id == created.order_id
    assert finished.state == "FINISHED"
    assert [(r.account, r.amount_fen, r.result) for r in finished.receivers] == [("1001", 300, "SUCCESS")]
    assert fake.receivers[(SP_MCHID, SUB_MCHID, "MERCHANT_ID", "1001")]["name"] == "平台运营有限公司"


def test_profit_sharing_needs_the_flag_on_the_order(fake_wechat, merchant_keys, platform_keys):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    with running(NotifyReceiver()) as notify_base:
        order = make_order(notify_url=f"{notify_base}/notify", profit_sharing=False)
        client.create_jsapi_order(order)
        fake.pay(order.transaction_id)
    client.add_receiver(SharingReceiver(account="1001", name="平台运营有限公司"))

    with pytest.raises(ChannelError, match="非分账订单不支持分账"):
        client.create_profit_sharing(
            fake.find_order(order.transaction_id).transaction_id,
            "PS_1",
            [SharingTransfer("1001", 300, "佣金")],
        )


def test_a_platform_certificate_can_stand_in_for_the_public_key(merchant_keys, platform_keys):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform_keys.public_key)
        .serial_number(0x3775B6A45ACD588826D15E583A95F5DD)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(platform_keys.private_key, hashes.SHA256())
    )
    serial = format(certificate.serial_number, "X")
    credentials = make_wechat_credentials(
        merchant_keys,
        platform_keys,
        wechatpay_public_key_id=serial,
        wechatpay_public_key=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )
    client = WechatPayClient(credentials, "wechat_split", WECHAT_BASE)
    headers, body = notification(platform_keys, transaction_resource())

    assert client.parse_notification({**headers, "Wechatpay-Serial": serial}, body).paid


def test_build_channel_picks_the_client_by_mode(merchant_keys, platform_keys, app_keys, alipay_keys):
    wechat_params = {
        "service_mch_id": SP_MCHID,
        "sub_mch_id": SUB_MCHID,
        "app_id": SP_APPID,
        "api_key": API_V3_KEY,
        "merchant_serial_no": MERCHANT_SERIAL,
        "merchant_private_key": merchant_keys.private_pem,
        "wechatpay_public_key_id": PUBLIC_KEY_ID,
        "wechatpay_public_key": platform_keys.public_pem,
    }
    alipay_params = {
        "app_id": "2021000117650001",
        "app_private_key": app_keys.private_base64,
        "alipay_public_key": alipay_keys.public_base64,
    }

    split = build_channel("wechat_split", wechat_params, wechat_base_url="http://127.0.0.1:8601", timeout=3)
    direct = build_channel("wechat_direct", {**wechat_params, "mch_id": SP_MCHID})
    ali = build_channel("alipay_direct", alipay_params, alipay_gateway_url="http://127.0.0.1:8602/gateway.do")

    assert isinstance(split, WechatPayClient) and split.partner and split.base_url == "http://127.0.0.1:8601"
    assert isinstance(direct, WechatPayClient) and not direct.partner
    assert isinstance(ali, AlipayClient) and ali.gateway_url == "http://127.0.0.1:8602/gateway.do"
    assert {CHANNEL_BY_MODE[mode] for mode in ("wechat_split", "wechat_direct", "alipay_direct")} == {
        "wechat",
        "alipay",
    }
    with pytest.raises(ValueError):
        build_channel("paypal_direct", {})
    with pytest.raises(ValueError, match="sub_mch_id"):
        build_channel("wechat_split", {**wechat_params, "sub_mch_id": ""})
