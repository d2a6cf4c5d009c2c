"""What every endpoint of the WeChat Pay fake shares: its error answer and reply, field checks, ids and times,
and the encrypted envelope of a notification (payment or refund alike)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SIGNATURE_SCHEME = "WECHATPAY2-SHA256-RSA2048"
BEIJING = timezone(timedelta(hours=8))
ALNUM = string.ascii_letters + string.digits
# out_refund_no and out_return_no: 1-64 of digits, letters and _-|*@
MERCHANT_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")


class WechatError(Exception):
    """Becomes WeChat's error answer: HTTP status + {"code", "message"}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Reply:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def now_rfc3339() -> str:
    return datetime.now(BEIJING).isoformat(timespec="seconds")


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def require_str(body: dict[str, Any], name: str, max_length: int | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise WechatError(400, "PARAM_ERROR", f"{name} 必填且须为字符串")
    if max_length is not None and len(value) > max_length:
        raise WechatError(400, "PARAM_ERROR", f"{name} 长度超过 {max_length}")
    return value


def require_fen(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise WechatError(400, "PARAM_ERROR", f"{name} 须为正整数（分）")
    return value


def require_merchant_no(body: dict[str, Any], name: str) -> str:
    """A merchant-side number such as out_refund_no or out_return_no."""
    value = require_str(body, name)
    if not MERCHANT_NO.match(value):
        raise WechatError(400, "PARAM_ERROR", f"{name} 须为 1-64 位数字、大小写字母或_-|*@")
    return value


def notification_body(
    api_v3_key: str, resource: dict[str, Any], *, event_type: str, summary: str, original_type: str
) -> bytes:
    """A notification envelope whose resource is AEAD_AES_256_GCM-encrypted with the merchant's APIv3 key.

    The associated data is the resource's original type ("transaction", "refund"), as WeChat sends it.
    """
    nonce = random_string(ALNUM, 12)
    ciphertext = AESGCM(api_v3_key.encode()).encrypt(nonce.encode(), dumps(resource), original_type.encode())
    return dumps(
        {
            "id": str(uuid.uuid4()),
            "create_time": now_rfc3339(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
    )
