"""Payment notifications: which key signed one, its resource decrypted (AEAD_AES_256_GCM with the APIv3 key)
and read as a PaidNotice for one merchant, and the answer WeChat Pay expects back.
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
from payment_service.channels.wechat.credentials import WechatCredentials
from payment_service.channels.wechat.signing import SignatureInvalid, lower_keys, verify_signed_message
from payment_service.channels.wechat.transactions import amount_total, parse_rfc3339

__all__ = ["decrypt_resource", "notification_key_id", "notification_reply", "read_paid_notice"]

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
    try:
        verify_signed_message(wechatpay_key, credentials.wechatpay_public_key_id, headers, raw_body, now)
    except SignatureInvalid as exc:
        raise NotificationRejected(f"signature check failed: {exc}") from None
    try:
        payload = json.loads(raw_body)
        resource = payload["resource"]
        plaintext = decrypt_resource(resource, credentials.api_key)
        data = json.loads(plaintext)
    except NotificationRejected:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise NotificationRejected("notification body is not a WeChat Pay encrypted resource") from None
    if not isinstance(data, dict):
        raise NotificationRejected("decrypted resource is not an object")

    merchant_ids = _merchant_ids(data, partner)
    expected = (
        {"sp_mchid": credentials.mch_id, "sub_mchid": credentials.sub_mch_id}
        if partner
        else {"mchid": credentials.mch_id}
    )
    if any(merchant_ids.get(key) != value for key, value in expected.items()):
        raise NotificationRejected("notification is for another merchant")
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


def _merchant_ids(data: Mapping[str, Any], partner: bool) -> dict[str, str]:
    keys = ("sp_mchid", "sub_mchid", "sp_appid", "sub_appid") if partner else ("mchid", "appid")
    return {key: str(data[key]) for key in keys if data.get(key)}
