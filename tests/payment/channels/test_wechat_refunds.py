"""WeChat Pay refunds, refund notifications and profit-sharing return orders: requests checked against
wechatpayv3's signer, answers with `responses`, notifications built without our code."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import requests
import responses
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3 import utils as wxutils

from payment_service.channels import ChannelError, NotificationRejected, RefundRequest, SharingReturn
from tests.payment.channels.conftest import (
    API_V3_KEY,
    FROZEN_NONCE,
    MERCHANT_SERIAL,
    SP_MCHID,
    SUB_MCHID,
    WECHAT_BASE,
)
from tests.payment.channels.test_wechat import add_signed, signed_headers, wechatpayv3_client

REFUNDS = f"{WECHAT_BASE}/v3/refund/domestic/refunds"
RETURNS = f"{WECHAT_BASE}/v3/profitsharing/return-orders"


def make_refund(**overrides: object) -> RefundRequest:
    values: dict[str, object] = {
        "transaction_id": "TXN_20260510_7Hq2mK9xPz",
        "refund_id": "RFD_20260510_b3Kq9Zx1",
        "amount_fen": 500,
        "total_fen": 2000,
        "reason": "洗衣机故障",
        "notify_url": "https://pay.example.com/api/v1/payment/notify/wechat/refund",
    }
    values.update(overrides)
    return RefundRequest(**values)  # type: ignore[arg-type]


def refund_object(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "refund_id": "50000000382019052709732678859",
        "out_refund_no": "RFD_20260510_b3Kq9Zx1",
        "transaction_id": "4200000985202405103345316402",
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": "2026-05-10T18:10:00+08:00",
        "status": "PROCESSING",
        "amount": {"total": 2000, "refund": 500, "payer_total": 2000, "payer_refund": 500, "currency": "CNY"},
    }
    data.update(overrides)
    return data


def sent_json() -> dict[str, object]:
    return json.loads(responses.calls[0].request.body)


# -- refunds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [{"amount_fen": 2001}, {"amount_fen": 0}, {"amount_fen": True}, {"total_fen": 5.0}]
)
def test_refund_requests_are_integer_fen_within_the_total(bad):
    with pytest.raises(ValueError):
        make_refund(**bad)
    with pytest.raises(ValueError, match="refund_id"):
        make_refund(refund_id="")


@responses.activate
def test_partner_refund_body_and_signature(frozen, partner_client, merchant_keys, platform_keys):
    add_signed(responses.mock, platform_keys, "POST", REFUNDS, refund_object())

    result = partner_client.refund(make_refund())

    assert sent_json() == {
        "sub_mchid": SUB_MCHID,
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "out_refund_no": "RFD_20260510_b3Kq9Zx1",
        "reason": "洗衣机故障",
        "notify_url": "https://pay.example.com/api/v1/payment/notify/wechat/refund",
        "amount": {"refund": 500, "total": 2000, "currency": "CNY"},
    }
    sent = responses.calls[0].request
    expected = wxutils.build_authorization(
        "/v3/refund/domestic/refunds",
        "POST",
        SP_MCHID,
        MERCHANT_SERIAL,
        wxutils.load_private_key(merchant_keys.private_pem),
        data=sent.body.decode("utf-8"),
        nonce_str=FROZEN_NONCE,
    )
    assert sent.headers["Authorization"] == expected
    assert (result.state, result.upstream_status, result.amount_fen) == ("processing", "PROCESSING", 500)
    assert result.channel_refund_id == "50000000382019052709732678859" and result.refunded_at is None


@responses.activate
def test_direct_refund_body_names_no_sub_merchant(direct_client, platform_keys):
    add_signed(responses.mock, platform_keys, "POST", REFUNDS, refund_object())

    direct_client.refund(make_refund(reason=None, notify_url=None))

    assert sent_json() == {
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "out_refund_no": "RFD_20260510_b3Kq9Zx1",
        "amount": {"refund": 500, "total": 2000, "currency": "CNY"},
    }


@pytest.mark.parametrize(
    ("status", "state"),
    [("SUCCESS", "success"), ("PROCESSING", "processing"), ("ABNORMAL", "processing"), ("CLOSED", "failed")],
)
@responses.activate
def test_refund_statuses_read_as_ours(partner_client, platform_keys, status, state):
    extra = {"success_time": "2026-05-10T18:10:05+08:00"} if status == "SUCCESS" else {}
    add_signed(responses.mock, platform_keys, "POST", REFUNDS, refund_object(status=status, **extra))

    result = partner_client.refund(make_refund())

    assert (result.state, result.upstream_status) == (state, status)
    if status == "SUCCESS":
        assert result.refunded_at == datetime(2026, 5, 10, 10, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize("answer", [refund_object(status="DONE"), refund_object(out_refund_no="RFD_other")])
@responses.activate
def test_a_refund_answer_we_cannot_read_is_a_bad_response(partner_client, platform_keys, answer):
    add_signed(responses.mock, platform_keys, "POST", REFUNDS, answer)

    with pytest.raises(ChannelError) as caught:
        partner_client.refund(make_refund())

    assert caught.value.code == "BAD_RESPONSE" and not caught.value.retryable


@responses.activate
def test_unsigned_refund_answer_is_refused(partner_client):
    responses.add("POST", REFUNDS, json=refund_object())

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.refund(make_refund())


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "FREQUENCY_LIMITED", True),
        (403, "FREQUENCY_LIMITED", True),  # retryable by its code, whatever the status
        (500, "SYSTEM_ERROR", True),
        (503, None, True),
        (403, "NOT_ENOUGH", False),
        (400, "INVALID_REQUEST", False),
        (400, "PARAM_ERROR", False),
        (404, "RESOURCE_NOT_EXISTS", False),
    ],
)
@responses.activate
def test_refund_errors_are_classified(partner_client, status, code, retryable):
    body = json.dumps({"code": code, "message": "…"}) if code else "Service Unavailable"
    responses.add("POST", REFUNDS, body=body, status=status)

    with pytest.raises(ChannelError) as caught:
        partner_client.refund(make_refund())

    assert (caught.value.code, caught.value.http_status) == (code or f"HTTP_{status}", status)
    assert caught.value.retryable is retryable


@responses.activate
def test_a_refund_timeout_is_retryable(partner_client):
    responses.add("POST", REFUNDS, body=requests.ConnectTimeout())

    with pytest.raises(ChannelError) as caught:
        partner_client.refund(make_refund())

    assert caught.value.code == "TIMEOUT" and caught.value.retryable


@responses.activate
def test_partner_query_names_the_sub_merchant(frozen, partner_client, merchant_keys, platform_keys):
    url = f"{REFUNDS}/RFD_20260510_b3Kq9Zx1"
    add_signed(responses.mock, platform_keys, "GET", url, refund_object(status="SUCCESS"))

    result = partner_client.query_refund("TXN_20260510_7Hq2mK9xPz", "RFD_20260510_b3Kq9Zx1")

    sent = responses.calls[0].request
    assert sent.path_url == f"/v3/refund/domestic/refunds/RFD_20260510_b3Kq9Zx1?sub_mchid={SUB_MCHID}"
    expected = wxutils.build_authorization(
        sent.path_url,
        "GET",
        SP_MCHID,
        MERCHANT_SERIAL,
        wxutils.load_private_key(merchant_keys.private_pem),
        nonce_str=FROZEN_NONCE,
    )
    assert sent.headers["Authorization"] == expected
    assert result is not None and result.state == "success"


@responses.activate
def test_direct_query_and_a_refund_wechat_does_not_have(direct_client, platform_keys):
    url = f"{REFUNDS}/RFD_20260510_b3Kq9Zx1"
    responses.add("GET", url, json={"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}, status=404)
    responses.add("GET", url, json={"code": "SYSTEM_ERROR", "message": "系统错误"}, status=500)

    assert direct_client.query_refund("TXN_1", "RFD_20260510_b3Kq9Zx1") is None
    assert responses.calls[0].request.path_url == "/v3/refund/domestic/refunds/RFD_20260510_b3Kq9Zx1"
    with pytest.raises(ChannelError, match="SYSTEM_ERROR"):
        direct_client.query_refund("TXN_1", "RFD_20260510_b3Kq9Zx1")


# -- refund notifications ---------------------------------------------------------------------------------


def refund_resource(**overrides: object) -> dict[str, object]:
    resource: dict[str, object] = {
        "sp_mchid": SP_MCHID,
        "sub_mchid": SUB_MCHID,
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "transaction_id": "4200000985202405103345316402",
        "out_refund_no": "RFD_20260510_b3Kq9Zx1",
        "refund_id": "50000000382019052709732678859",
        "refund_status": "SUCCESS",
        "success_time": "2026-05-10T18:10:05+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 2000, "refund": 500, "payer_total": 2000, "payer_refund": 500},
    }
    resource.update(overrides)
    return resource


def refund_notification(
    platform_keys, resource: dict[str, object], event_type: str = "REFUND.SUCCESS"
) -> tuple[dict[str, str], bytes]:
    """Built without our code: AES-GCM from cryptography with AAD "refund", signed by wechatpayv3."""
    nonce = "Wk8r2mKx9Qp1"
    ciphertext = AESGCM(API_V3_KEY.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), b"refund")
    body = json.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": "2026-05-10T18:10:06+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "退款状态",
            "resource": {
                "original_type": "refund",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": "refund",
                "nonce": nonce,
            },
        },
        ensure_ascii=False,
    ).encode()
    return signed_headers(platform_keys, body), body


def test_refund_notification_is_verified_decrypted_and_read(partner_client, merchant_keys, platform_keys):
    headers, body = refund_notification(platform_keys, refund_resource())

    notice = partner_client.parse_refund_notification(headers, body)

    assert (notice.refund_id, notice.out_trade_no) == ("RFD_20260510_b3Kq9Zx1", "TXN_20260510_7Hq2mK9xPz")
    assert (notice.amount_fen, notice.total_fen) == (500, 2000)
    assert (notice.state, notice.upstream_status) == ("success", "SUCCESS")
    assert notice.channel_refund_id == "50000000382019052709732678859"
    assert notice.merchant_ids == {"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID}
    assert notice.refunded_at == datetime(2026, 5, 10, 10, 10, 5, tzinfo=UTC)
    # wechatpayv3 reads the same bytes: the fixture is what WeChat sends.
    sdk_view = wechatpayv3_client(merchant_keys, platform_keys, "wx8888888888888888").callback(headers, body)
    assert sdk_view["resource"]["out_refund_no"] == "RFD_20260510_b3Kq9Zx1"


@pytest.mark.parametrize(("status", "state"), [("ABNORMAL", "processing"), ("CLOSED", "failed")])
def test_direct_refund_notifications_of_other_outcomes(direct_client, platform_keys, status, state):
    resource = refund_resource(mchid=SP_MCHID, refund_status=status)
    for key in ("sp_mchid", "sub_mchid", "success_time"):
        resource.pop(key)
    headers, body = refund_notification(platform_keys, resource, f"REFUND.{status}")

    notice = direct_client.parse_refund_notification(headers, body)

    assert (notice.state, notice.merchant_ids, notice.refunded_at) == (state, {"mchid": SP_MCHID}, None)


@pytest.mark.parametrize(
    ("resource", "event_type", "reason"),
    [
        (refund_resource(sub_mchid="1230000110"), "REFUND.SUCCESS", "another merchant"),
        (refund_resource(), "TRANSACTION.SUCCESS", "not a refund notification"),
        (refund_resource(refund_status="REFUNDED"), "REFUND.SUCCESS", "unknown refund_status"),
        (refund_resource(amount={"total": 2000, "refund": "5.00"}), "REFUND.SUCCESS", "amounts"),
        (refund_resource(out_refund_no=""), "REFUND.SUCCESS", "out_refund_no"),
    ],
)
def test_refund_notifications_that_are_not_ours_are_rejected(
    partner_client, platform_keys, resource, event_type, reason
):
    headers, body = refund_notification(platform_keys, resource, event_type)

    with pytest.raises(NotificationRejected, match=reason):
        partner_client.parse_refund_notification(headers, body)


def test_a_tampered_refund_notification_is_rejected(partner_client, platform_keys):
    headers, body = refund_notification(platform_keys, refund_resource())

    with pytest.raises(NotificationRejected, match="signature"):
        partner_client.parse_refund_notification(headers, body.replace(b"REFUND.SUCCESS", b"REFUND.CLOSED"))


# -- profit-sharing return orders -------------------------------------------------------------------------


def return_object(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "sub_mchid": SUB_MCHID,
        "order_id": "3008450740201411110007820472",
        "out_order_no": "PS_TXN_1",
        "out_return_no": "RT_RFD_1_1001",
        "return_id": "3008450740201411110007820473",
        "return_mchid": "1001",
        "amount": 75,
        "description": "退款回退分账",
        "result": "SUCCESS",
        "create_time": "2026-05-10T18:09:00+08:00",
        "finish_time": "2026-05-10T18:09:01+08:00",
    }
    data.update(overrides)
    return data


@responses.activate
def test_partner_return_order_body_and_query(partner_client, platform_keys):
    add_signed(responses.mock, platform_keys, "POST", RETURNS, return_object(result="PROCESSING"))
    query_url = f"{RETURNS}/RT_RFD_1_1001"
    add_signed(
        responses.mock, platform_keys, "GET", query_url, return_object(result="FAILED", fail_reason="X")
    )
    request = SharingReturn("PS_TXN_1", "RT_RFD_1_1001", "1001", 75, "退款回退分账")

    created = partner_client.create_profit_sharing_return(request)
    queried = partner_client.query_profit_sharing_return("PS_TXN_1", "RT_RFD_1_1001")

    assert sent_json() == {
        "sub_mchid": SUB_MCHID,
        "out_order_no": "PS_TXN_1",
        "out_return_no": "RT_RFD_1_1001",
        "return_mchid": "1001",
        "amount": 75,
        "description": "退款回退分账",
    }
    assert (created.state, created.result, created.amount_fen) == ("processing", "PROCESSING", 75)
    assert responses.calls[1].request.path_url == (
        f"/v3/profitsharing/return-orders/RT_RFD_1_1001?out_order_no=PS_TXN_1&sub_mchid={SUB_MCHID}"
    )
    assert (queried.state, queried.fail_reason) == ("failed", "X")


@responses.activate
def test_direct_return_order_and_an_unreadable_result(direct_client, platform_keys):
    add_signed(responses.mock, platform_keys, "POST", RETURNS, return_object(result="DONE"))

    with pytest.raises(ChannelError, match="BAD_RESPONSE"):
        direct_client.create_profit_sharing_return(SharingReturn("PS_1", "RT_1", "1001", 75, "回退"))

    assert "sub_mchid" not in sent_json()
    with pytest.raises(ValueError):
        SharingReturn("PS_1", "RT_1", "1001", 0, "回退")
