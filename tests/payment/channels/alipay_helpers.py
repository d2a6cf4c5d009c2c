"""Shared builders for the Alipay client tests: orders, signed gateway answers, sent forms, notifications."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import responses
from alipay import AliPay

from payment_service.channels.alipay import AlipayClient, AlipayCredentials
from payment_service.channels.base import OrderRequest
from tests.fakes.keys import TestKeyPair
from tests.payment.channels.conftest import ALIPAY_APP_ID, ALIPAY_SELLER_ID

BUYER_ID = "2088102177846880"


def make_order(**overrides: object) -> OrderRequest:
    values: dict[str, object] = {
        "transaction_id": "TXN_20260510_7Hq2mK9xPz",
        "amount_fen": 2000,
        "description": "自助洗衣-标准洗-30分钟",
        "payer_id": BUYER_ID,
        "notify_url": "https://pay.example.com/api/v1/payment/notify/alipay",
    }
    values.update(overrides)
    return OrderRequest(**values)  # type: ignore[arg-type]


def gateway_answer(sdk: AliPay, root: str, result: dict[str, object], *, signed: bool = True) -> str:
    inner = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    sign = f',"sign":"{sdk._sign(inner)}"' if signed else ""
    return f'{{"{root}":{inner}{sign}}}'


def sent_form() -> dict[str, str]:
    return dict(parse_qsl(responses.calls[0].request.body, keep_blank_values=True))


def alipay_notification(sdk: AliPay, **overrides: str) -> dict[str, str]:
    """A notification signed by python-alipay-sdk with Alipay's key (sign_type excluded, empties kept)."""
    form = {
        "notify_time": "2026-05-10 18:00:06",
        "notify_type": "trade_status_sync",
        "notify_id": "2026051000222180006000521452394900",
        "charset": "utf-8",
        "version": "1.0",
        "app_id": ALIPAY_APP_ID,
        "trade_no": "2026051022001430011",
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "buyer_id": BUYER_ID,
        "seller_id": ALIPAY_SELLER_ID,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "20.00",
        "receipt_amount": "20.00",
        "gmt_payment": "2026-05-10 18:00:05",
        "subject": "自助洗衣-标准洗-30分钟",
        "passback_params": "",
        "fund_bill_list": '[{"amount":"20.00","fundChannel":"ALIPAYACCOUNT"}]',
    }
    form.update(overrides)
    unsigned = "&".join(f"{k}={v}" for k, v in sorted(form.items()))
    return {**form, "sign_type": "RSA2", "sign": sdk._sign(unsigned)}


def loopback_client(
    app_keys: TestKeyPair, alipay_keys: TestKeyPair, gateway: str, timeout: float = 5.0
) -> AlipayClient:
    credentials = AlipayCredentials(
        ALIPAY_APP_ID, app_keys.private_base64, alipay_keys.public_base64, ALIPAY_SELLER_ID
    )
    return AlipayClient(credentials, gateway, timeout=timeout)
