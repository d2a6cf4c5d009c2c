"""Payment and refund notifications: which key signed one, its resource decrypted (AEAD_AES_256_GCM with
the APIv3 key) and read as a PaidNotice or a RefundNotice for one merchant, and the answer WeChat expects.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payment_service.channels.base import NotificationRejected, NotifyReply, PaidNotice
from payment_service.channels.refunds import RefundNotice
from payment_service.channels.wechat.credentials import WechatCredentials
from payment_service.channels.wechat.refunds import REFUND_STATES, refund_amounts
from payment_service.channels.wechat.signing import SignatureInvalid, lower_keys, verify_signed_message
from payment_service.channels.wechat.transactions import amount_total, parse_rfc3339

__all__ = [
    "decrypt_resource",
    "notification_key_id",
    "notification_reply",
    "read_paid_notice",
    "read_refund_notice",
]

_FAIL_BODY = json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False).encode()


def notification_key_id(headers: Mapping[str, str]) -> str | None:
    """Which WeChat Pay key signed a notification (its Wechatpay-Serial), before anything is verified.

    The notify URL is shared by every config, so this is how the caller narrows down the configs that
    can verify and decrypt it: those whose wechatpay_public_key_id matches.
    """
    return lower_keys(headers).get("wechatpay-serial") or None


def read_paid_notice(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    credentials: WechatCredentials,
    wechatpay_key: rsa.RSAPublicKey,
    partner: bool,
    now: datetime | None = None,
) -> PaidNotice:
    """Verify, decrypt and read a payment notification. Pass the raw body bytes, never re-dumped JSON.

    Raises NotificationRejected for a bad or missing signature, a timestamp more than five minutes off,
    a resource that does not decrypt with our APIv3 key, or a notification for another merchant.
    """
    _, data = _verified_resource(headers, raw_body, credentials, wechatpay_key, now)
    merchant_ids = _merchant_ids(data, partner, credentials)
    total = amount_total(data)
    if isinstance(total, bool) or not isinstance(total, int) or not data.get("out_trade_no"):
        raise NotificationRejected("notification lacks out_trade_no or amount.total")
    trade_state = str(data.get("trade_state", ""))
    return PaidNotice(
        out_trade_no=str(data["out_trade_no"]),
        channel_transaction_id=data.get("transaction_id"),
        amount_fen=total,
        merchant_ids=merchant_ids,
        paid_at=parse_rfc3339(data.get("success_time")),
        trade_state=trade_state,
        paid=trade_state == "SUCCESS",
        raw=data,
    )


def read_refund_notice(
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    credentials: WechatCredentials,
    wechatpay_key: rsa.RSAPublicKey,
    partner: bool,
    now: datetime | None = None,
) -> RefundNotice:
    """Verify, decrypt and read a refund notification (REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED).

    The same checks as a payment notification, and it must be a refund event: a payment notification posted
    to the refund endpoint is rejected rather than read as a refund.
    """
    payload, data = _verified_resource(headers, raw_body, credentials, wechatpay_key, now)
    if not str(payload.get("event_type", "")).startswith("REFUND."):
        raise NotificationRejected(f"not a refund notification: {payload.get('event_type')!r}")
    merchant_ids = _merchant_ids(data, partner, credentials)
    amounts = refund_amounts(data)
    if amounts is None or not data.get("out_refund_no") or not data.get("out_trade_no"):
        raise NotificationRejected("refund notification lacks out_refund_no, out_trade_no or amounts")
    status = str(data.get("refund_status", ""))
    if status not in REFUND_STATES:
        raise NotificationRejected(f"unknown refund_status {status!r}")
    return RefundNotice(
        out_trade_no=str(data["out_trade_no"]),
        refund_id=str(data["out_refund_no"]),
        channel_refund_id=data.get("refund_id"),
        channel_transaction_id=data.get("transaction_id"),
        amount_fen=amounts[0],
        total_fen=amounts[1],
        merchant_ids=merchant_ids,
        state=REFUND_STATES[status],
        upstream_status=status,
        refunded_at=parse_rfc3339(data.get("success_time")),
        raw=data,
    )


def _verified_resource(
    headers: Mapping[str, str],
    raw_body: bytes,
    credentials: WechatCredentials,
    wechatpay_key: rsa.RSAPublicKey,
    now: datetime | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The notification's envelope and its decrypted resource, once the signature has checked out."""
    try:
        verify_signed_message(wechatpay_key, credentials.wechatpay_public_key_id, headers, raw_body, now)
    except SignatureInvalid as exc:
        raise NotificationRejected(f"signature check failed: {exc}") from None
    try:
        payload = json.loads(raw_body)
        plaintext = decrypt_resource(payload["resource"], credentials.api_key)
        data = json.loads(plaintext)
    except NotificationRejected:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise NotificationRejected("notification body is not a WeChat Pay encrypted resource") from None
    if not isinstance(data, dict):
        raise NotificationRejected("decrypted resource is not an object")
    return payload, data


def decrypt_resource(resource: Mapping[str, Any], api_key: str) -> str:
    """AEAD_AES_256_GCM with the APIv3 key; the nonce is the UTF-8 of the 12-character nonce string."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise NotificationRejected(f"unsupported resource algorithm {resource.get('algorithm')!r}")
    try:
        ciphertext = base64.b64decode(resource["ciphertext"], validate=True)
        plaintext = AESGCM(api_key.encode("utf-8")).decrypt(
            str(resource["nonce"]).encode("utf-8"),
            ciphertext,
            str(resource.get("associated_data") or "").encode("utf-8"),
        )
        return plaintext.decode("utf-8")
    except (InvalidTag, ValueError, KeyError, TypeError):
        raise NotificationRejected("resource does not decrypt with this merchant's APIv3 key") from None


def notification_reply(accepted: bool) -> NotifyReply:
    """WeChat wants 204 with no body for success; any 4xx/5xx with code FAIL makes it redeliver."""
    if accepted:
        return NotifyReply(204, b"", None)
    return NotifyReply(400, _FAIL_BODY, "application/json")


def _merchant_ids(data: Mapping[str, Any], partner: bool, credentials: WechatCredentials) -> dict[str, str]:
    """The merchant ids a notification names; NotificationRejected unless they are this merchant's."""
    keys = ("sp_mchid", "sub_mchid", "sp_appid", "sub_appid") if partner else ("mchid", "appid")
    merchant_ids = {key: str(data[key]) for key in keys if data.get(key)}
    expected = (
        {"sp_mchid": credentials.mch_id, "sub_mchid": credentials.sub_mch_id}
        if partner
        else {"mchid": credentials.mch_id}
    )
    if any(merchant_ids.get(key) != value for key, value in expected.items()):
        raise NotificationRejected("notification is for another merchant")
    return merchant_ids
