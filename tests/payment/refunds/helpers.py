"""Paid orders and refund requests for the refund tests."""

from __future__ import annotations

from typing import Any

from tests.payment.conftest import headers_of
from tests.payment.orders.helpers import ORDERS_URL, placed

REFUNDS_URL = "/api/v1/payment/refunds"


def paid_order(client, api_key: str, fake, **overrides: Any) -> str:
    """Place an order and let the payer pay it through the fake (its notification marks it paid)."""
    transaction_id = placed(client, api_key, **overrides)["transaction_id"]
    delivery = fake.pay(transaction_id)
    assert delivery.status in (200, 204), delivery
    return transaction_id


def ask_refund(client, api_key: str, transaction_id: str, **body: Any):
    body.setdefault("amount", 5.00)
    return client.post(f"{ORDERS_URL}/{transaction_id}/refunds", json=body, headers=headers_of(api_key))


def refunded(client, api_key: str, transaction_id: str, **body: Any) -> dict[str, Any]:
    answer = ask_refund(client, api_key, transaction_id, **body)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["data"]


def refund_of(client, api_key: str, refund_id: str) -> dict[str, Any]:
    answer = client.get(f"{REFUNDS_URL}/{refund_id}", headers=headers_of(api_key))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["data"]
