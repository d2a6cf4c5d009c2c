"""WeChat Pay client: notification verification, decryption, rejection and replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from payment_service.channels.base import NotificationRejected
from payment_service.channels.wechat import (
    notification_key_id,
)
from tests.payment.channels.conftest import (
    PUBLIC_KEY_ID,
    SP_APPID,
    SP_MCHID,
    SUB_MCHID,
)
from tests.payment.channels.wechat_helpers import (
    notification,
    transaction_resource,
    wechatpayv3_client,
)

# -- notifications --------------------------------------------------------------------------------------


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
