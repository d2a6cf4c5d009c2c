"""Shared builders for the WeChat Pay client tests: orders, sdk clients, signed answers, notifications."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import responses
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3 import utils as wxutils

from payment_service.channels.base import OrderRequest
from payment_service.channels.wechat import (
    WechatPayClient,
)
from tests.fakes.keys import TestKeyPair
from tests.payment.channels.conftest import (
    API_V3_KEY,
    MERCHANT_SERIAL,
    PUBLIC_KEY_ID,
    SP_APPID,
    SP_MCHID,
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


def receivers(*pairs: tuple[str, object]) -> list[dict[str, object]]:
    return [
        {"receiver_type": "platform", "merchant_id": merchant_id, "ratio": ratio}
        for merchant_id, ratio in pairs
    ]


def loopback_client(merchant_keys, platform_keys, base_url: str, **overrides: object) -> WechatPayClient:
    timeout = overrides.pop("timeout", 5.0)
    credentials = make_wechat_credentials(merchant_keys, platform_keys, **overrides)
    mode = "wechat_split" if credentials.sub_mch_id else "wechat_direct"
    return WechatPayClient(credentials, mode, base_url, timeout=timeout)  # type: ignore[arg-type]
