"""WeChat Pay v3 signatures: RSA-SHA256 over our requests and pay parameters with the merchant key, and the
Wechatpay-* signature on answers and notifications checked against the WeChat Pay public key (or certificate).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "MAX_CLOCK_SKEW_SECONDS",
    "SIGNATURE_SCHEME",
    "SignatureInvalid",
    "authorization",
    "lower_keys",
    "sign",
    "sign_pay_params",
    "verify_signed_message",
]

SIGNATURE_SCHEME = "WECHATPAY2-SHA256-RSA2048"
# WeChat's own SDKs refuse signed messages whose timestamp is more than five minutes off.
MAX_CLOCK_SKEW_SECONDS = 300


def _unix_time() -> int:
    return int(time.time())


def _new_nonce() -> str:
    return secrets.token_hex(16).upper()


class SignatureInvalid(Exception):
    """A Wechatpay-* signature is missing, stale, from another key or wrong; the message says which."""


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in headers.items()}


def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def authorization(
    private_key: rsa.RSAPrivateKey, mch_id: str, serial_no: str, method: str, path_url: str, body: bytes
) -> str:
    """The Authorization header over `METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`, BODY as sent."""
    timestamp, nonce = str(_unix_time()), _new_nonce()
    message = f"{method}\n{path_url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
    signature = sign(private_key, message)
    return (
        f'{SIGNATURE_SCHEME} mchid="{mch_id}",nonce_str="{nonce}",'
        f'signature="{signature}",timestamp="{timestamp}",serial_no="{serial_no}"'
    )


def sign_pay_params(private_key: rsa.RSAPrivateKey, app_id: str, prepay_id: str) -> dict[str, str]:
    """wx.requestPayment parameters; paySign covers appId, timeStamp, nonceStr, package (not signType)."""
    params = {
        "appId": app_id,
        "timeStamp": str(_unix_time()),
        "nonceStr": _new_nonce(),
        "package": f"prepay_id={prepay_id}",
        "signType": "RSA",
    }
    message = "".join(f"{params[key]}\n" for key in ("appId", "timeStamp", "nonceStr", "package"))
    params["paySign"] = sign(private_key, message.encode("utf-8"))
    return params


def verify_signed_message(
    public_key: rsa.RSAPublicKey,
    public_key_id: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None,
) -> None:
    """Check Wechatpay-* headers over `TIMESTAMP\\nNONCE\\nBODY\\n`; responses and notifications alike."""
    fields = lower_keys(headers)
    timestamp = fields.get("wechatpay-timestamp", "")
    nonce = fields.get("wechatpay-nonce", "")
    signature = fields.get("wechatpay-signature", "")
    serial = fields.get("wechatpay-serial", "")
    if not (timestamp and nonce and signature and serial):
        raise SignatureInvalid("unsigned: Wechatpay-* signature headers missing")
    scheme = fields.get("wechatpay-signature-type")
    if scheme is not None and scheme != SIGNATURE_SCHEME:
        raise SignatureInvalid(f"unsupported signature type {scheme!r}")
    if serial != public_key_id:
        raise SignatureInvalid(f"signed by unknown key {serial!r}")
    if not timestamp.isdigit():
        raise SignatureInvalid("malformed timestamp")
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureInvalid("timestamp more than five minutes off")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        public_key.verify(
            raw_signature,
            f"{timestamp}\n{nonce}\n".encode() + body + b"\n",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        raise SignatureInvalid("signature does not match") from None
