"""The OpenAPI document describes the notifications as WeChat Pay and Alipay send them (the fakes build
theirs field for field as the upstreams do)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from tests.payment.orders.helpers import ALIPAY_SITE, DIRECT_SITE
from tests.payment.refunds.helpers import paid_order, refunded

NOTIFY = "/api/v1/payment/notify"


@pytest.fixture
def document(payment_client):
    return payment_client.get("/openapi.json").get_json()


def request_of(document, path: str) -> tuple[str, Draft202012Validator, set[str]]:
    """The operation's media type, a validator of its body and the headers it requires."""
    operation = document["paths"][path]["post"]
    ((media_type, content),) = operation["requestBody"]["content"].items()
    # The body's schema with the document's components, so that its #/components/… references resolve.
    validator = Draft202012Validator({**content["schema"], "components": document["components"]})
    headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header" and p["required"]}
    return media_type, validator, headers


def errors_of(validator: Draft202012Validator, body) -> list[str]:
    return [f"{'/'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(body)]


def test_wechat_payment_and_refund_notifications_are_as_documented(
    payment_client, admin, fakes, sites, published, document
):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, site_id=DIRECT_SITE)
    refund_id = refunded(payment_client, admin, transaction_id, amount=5)["refund_id"]
    assert wechat.settle_refund(refund_id).acknowledged
    payment = wechat.build_notification(wechat.find_order(transaction_id))
    refund = wechat.build_refund_notification(wechat.find_refund(refund_id))

    for path, (headers, body) in (
        ("/wechat", payment),
        ("/wechat/{config_id}", payment),
        ("/wechat/refunds/{config_id}", refund),
    ):
        media_type, validator, required_headers = request_of(document, NOTIFY + path)
        assert headers["Content-Type"] == media_type
        assert errors_of(validator, json.loads(body)) == [], path
        assert required_headers <= set(headers), path


def test_alipay_notifications_are_as_documented(payment_client, admin, fakes, sites, published, document):
    _, alipay = fakes
    transaction_id = paid_order(payment_client, admin, alipay, site_id=ALIPAY_SITE, channel="alipay")
    form = alipay.build_notification(alipay.find_trade(transaction_id))

    for path in ("/alipay", "/alipay/{config_id}"):
        media_type, validator, _ = request_of(document, NOTIFY + path)
        assert media_type == "application/x-www-form-urlencoded"
        assert errors_of(validator, form) == [], path
