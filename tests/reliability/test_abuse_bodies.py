"""Abuse in-process: oversized, nested and hostile bodies and strings, huge pages, unstorable text."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.payment.conftest import headers_of
from tests.payment.orders.helpers import order_body
from tests.reliability.abuse_helpers import (
    HOSTILE_STRINGS,
    MOBILES,
    assert_envelope,
)

pytestmark = pytest.mark.reliability

# --- hostile bodies and strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/sms/send", "/api/v1/sms/templates", "/api/v1/payment/order", "/api/v1/payment/configs"]
)
def test_bodies_over_one_megabyte_answer_413(path, sms_client, payment_client, sms_pair, admin):
    client, key = (sms_client, sms_pair["a"][1]) if "/sms/" in path else (payment_client, admin)
    body = json.dumps({"name": "x" * (1024 * 1024 + 1)}).encode()
    response = client.post(path, data=body, headers={"X-Api-Key": key}, content_type="application/json")
    assert_envelope(response, 413)


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_deeply_nested_json_is_400(
    depth, opener, closer, sms_app, sms_client, payment_client, sms_pair, admin, monkeypatch
):
    monkeypatch.setitem(sms_app.config, "RECEIPT_TOKEN", "receipt-token")
    body = opener * depth + "1" + closer * depth
    for client, path, key in (
        (sms_client, "/api/v1/sms/send", sms_pair["a"][1]),
        (sms_client, "/api/v1/sms/templates", sms_pair["a"][1]),
        (payment_client, "/api/v1/payment/order", admin),
        (payment_client, "/api/v1/payment/configs", admin),
        (sms_client, "/api/v1/sms/receipts/aliyun?token=receipt-token", ""),
        (sms_client, "/api/v1/sms/receipts/tencent?token=receipt-token", ""),
    ):
        response = client.post(path, data=body, headers={"X-Api-Key": key}, content_type="application/json")
        assert_envelope(response, 400)


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_hostile_strings_in_templates_and_variables_are_stored_verbatim_or_refused(
    value, sms_client, sms_db, sms_pair
):
    from sms_service.models import Message, Template

    _, key, _ = sms_pair["a"]
    headers = {"X-Api-Key": key}
    created = sms_client.post(
        "/api/v1/sms/templates",
        json={"name": value, "content": f"{value} 验证码${{code}}", "sign_name": "洗衣云",
              "provider_codes": {"aliyun": "SMS_1"}},
        headers=headers,
    )  # fmt: skip
    template = assert_envelope(created, 200)["data"]
    shown = assert_envelope(
        sms_client.get(f"/api/v1/sms/templates/{template['template_id']}", headers=headers), 200
    )
    assert shown["data"]["name"] == value and shown["data"]["content"].startswith(value)

    sent = sms_client.post(
        "/api/v1/sms/send",
        json={"template_id": template["template_id"], "mobiles": [MOBILES[3]], "variables": {"code": value}},
        headers=headers,
    )
    if sent.status_code == 200:
        message = sms_db.get(Message, sent.get_json()["data"]["message_id"])
        assert message.variables == {"code": value}
    else:
        assert_envelope(sent, 400)  # e.g. longer than SMS_MAX_VARIABLE_LENGTH
    for query in ({"template_id": value}, {"mobile": value}, {"status": value}, {"from": value}):
        listed = sms_client.get("/api/v1/sms/records", query_string=query, headers=headers)
        assert listed.status_code in (200, 400), listed.get_data()
        assert_envelope(listed, listed.status_code)
    assert_envelope(sms_client.get(f"/api/v1/sms/records/{value}", headers=headers), 404)
    assert sms_db.execute(sa.select(sa.func.count()).select_from(Template)).scalar_one() >= 3


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_hostile_strings_in_payment_orders_are_stored_verbatim_or_refused(
    value,
    payment_client,
    admin,
    fakes,
    sites,
):
    headers = headers_of(admin)
    placed_order = payment_client.post(
        "/api/v1/payment/order", json=order_body(description=value, payer_id=value[:128]), headers=headers
    )
    if placed_order.status_code == 200:
        transaction_id = placed_order.get_json()["data"]["transaction_id"]
        shown = payment_client.get(f"/api/v1/payment/orders/{transaction_id}", headers=headers).get_json()
        assert shown["data"]["description"] == value
    else:
        assert placed_order.status_code in (400, 502), placed_order.get_data()
        assert_envelope(placed_order, placed_order.status_code)
    for query in ({"site_id": value}, {"status": value}, {"from": value}):
        listed = payment_client.get("/api/v1/payment/orders", query_string=query, headers=headers)
        assert listed.status_code in (200, 400), listed.get_data()
    for path in (f"/api/v1/payment/orders/{value}", f"/api/v1/payment/configs/{value}"):
        assert payment_client.get(path, headers=headers).status_code in (404, 405)


@pytest.mark.parametrize(
    "query",
    [
        {"size": 10**6},
        {"size": 10**30},
        {"page": 10**20},
        {"page": 10**7},
        {"size": -1},
        {"page": 0},
        {"size": "1e3"},
        {"size": "all"},
    ],
)
def test_huge_or_bad_page_sizes_are_400(query, sms_client, payment_client, sms_pair, admin):
    sms_key = sms_pair["a"][1]
    for client, path, key in (
        (sms_client, "/api/v1/sms/templates", sms_key),
        (sms_client, "/api/v1/sms/records", sms_key),
        (payment_client, "/api/v1/payment/orders", admin),
        (payment_client, "/api/v1/payment/configs", admin),
    ):
        response = client.get(path, query_string=query, headers={"X-Api-Key": key})
        assert_envelope(response, 400)


@pytest.mark.parametrize(
    "body",
    [
        "\x00",
        "a\x00b",
        "\ud800",
        "\udfff tail",
    ],
)
def test_text_the_database_cannot_store_is_400(body, sms_client, payment_client, sms_pair, admin):
    sms_key = sms_pair["a"][1]
    escaped = json.dumps(body)  # \u0000 / \ud800 escapes: valid JSON, unstorable text
    assert_envelope(
        sms_client.post(
            "/api/v1/sms/templates",
            data='{"name": ' + escaped + ', "content": "x${code}", "sign_name": "s", "provider_codes": {}}',
            headers={"X-Api-Key": sms_key},
            content_type="application/json",
        ),
        400,
    )
    assert_envelope(
        payment_client.post(
            "/api/v1/payment/order",
            data='{"site_id": '
            + escaped
            + ', "channel": "wechat", "amount": 1, "description": "d", "payer_id": "p"}',
            headers={"X-Api-Key": admin},
            content_type="application/json",
        ),
        400,
    )
    assert_envelope(sms_client.get("/api/v1/sms/records/MSG%00X", headers={"X-Api-Key": sms_key}), 400)
    assert_envelope(
        payment_client.get("/api/v1/payment/orders?site_id=%00", headers={"X-Api-Key": admin}), 400
    )


@pytest.mark.parametrize(
    "raw",
    [
        # The body is looked at for escapes before its strings are: other ways of writing NUL or a
        # surrogate must not parse. A lone surrogate as raw bytes:
        '{"name": "\ud800", "content": "x${code}", "sign_name": "s", "provider_codes": {}}'.encode(
            "utf-8", "surrogatepass"
        ),
        # UTF-16 (json.loads would take it), the escape not in ASCII bytes:
        '{"name": "a\\u0000b", "content": "x${code}", "sign_name": "s", "provider_codes": {}}'.encode(
            "utf-16"
        ),
        # And the odd text that merely looks like an escape is stored, not refused.
        None,
    ],
)
def test_unstorable_text_is_found_however_the_body_encodes_it(raw, sms_client, sms_pair):
    sms_key = sms_pair["a"][1]
    if raw is None:
        body = json.dumps({"name": "\\u0000", "content": "x${code}", "sign_name": "s", "provider_codes": {}})
        response = sms_client.post(
            "/api/v1/sms/templates",
            data=body,
            headers={"X-Api-Key": sms_key},
            content_type="application/json",
        )
        assert response.status_code == 200 and response.get_json()["data"]["name"] == "\\u0000"
        return
    response = sms_client.post(
        "/api/v1/sms/templates", data=raw, headers={"X-Api-Key": sms_key}, content_type="application/json"
    )
    assert_envelope(response, 400)
