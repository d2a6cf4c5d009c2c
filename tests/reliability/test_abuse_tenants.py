"""Abuse in-process: one tenant reaching for another's ids, table-driven, for SMS and payment."""

from __future__ import annotations

import pytest

from tests.factories import create_payment_tenant
from tests.payment.conftest import headers_of
from tests.payment.orders.helpers import WECHAT_SITE, placed
from tests.reliability.abuse_helpers import (
    MOBILES,
    assert_envelope,
)

pytestmark = pytest.mark.reliability

# --- tenant isolation, table-driven -----------------------------------------------------------------------


def test_sms_tenant_a_cannot_read_or_change_tenant_b_ids(sms_client, sms_db, sms_pair):
    from sms_service.models import Template

    _, key_a, _ = sms_pair["a"]
    _, key_b, template_b = sms_pair["b"]
    as_b, as_a = {"X-Api-Key": key_b}, {"X-Api-Key": key_a}
    sent = sms_client.post(
        "/api/v1/sms/send",
        json={"template_id": template_b, "mobiles": [MOBILES[4]], "variables": {"code": "1", "minutes": "5"}},
        headers=as_b,
    )
    message_b = assert_envelope(sent, 200)["data"]["message_id"]
    items = [{"mobile": MOBILES[0], "variables": {"code": "2", "minutes": "1"}}]
    batch = sms_client.post(
        "/api/v1/sms/batch-send", json={"template_id": template_b, "items": items}, headers=as_b
    )
    batch_b = assert_envelope(batch, 200)["data"]["batch_id"]
    variables = {"code": "1", "minutes": "5"}
    cases = [
        ("GET", f"/api/v1/sms/templates/{template_b}", None),
        ("PUT", f"/api/v1/sms/templates/{template_b}", {"name": "hijacked", "status": "disabled"}),
        ("DELETE", f"/api/v1/sms/templates/{template_b}", None),
        ("GET", f"/api/v1/sms/records/{message_b}", None),
        ("GET", f"/api/v1/sms/batches/{batch_b}", None),
        ("POST", "/api/v1/sms/send",
         {"template_id": template_b, "mobiles": [MOBILES[1]], "variables": variables}),
        ("POST", "/api/v1/sms/batch-send",
         {"template_id": template_b, "items": [{"mobile": MOBILES[2], "variables": variables}]}),
    ]  # fmt: skip
    for method, path, body in cases:
        response = sms_client.open(path, method=method, json=body, headers=as_a)
        assert response.status_code == 404, (method, path, response.get_data(as_text=True)[:200])
        assert_envelope(response, 404)
    listed = sms_client.get("/api/v1/sms/records", query_string={"template_id": template_b}, headers=as_a)
    assert assert_envelope(listed, 200)["data"]["total"] == 0
    templates = sms_client.get("/api/v1/sms/templates", headers=as_a).get_json()["data"]["list"]
    assert template_b not in [t["template_id"] for t in templates]
    template = sms_db.get(Template, template_b)
    assert (template.name, template.status, template.deleted_at) == ("验证码", "enabled", None)
    assert sms_client.get(f"/api/v1/sms/records/{message_b}", headers=as_b).status_code == 200


def test_payment_tenant_a_cannot_read_or_change_tenant_b_ids(
    payment_client,
    payment_db,
    admin,
    fakes,
    sites,
    leak_watch,
):
    from payment_service.models import PaymentConfig

    _, key_a = create_payment_tenant(payment_db)
    leak_watch += [key_a, admin]
    as_a, as_b = headers_of(key_a), headers_of(admin)  # tenant B is the one with the sites and fakes
    config_b = sites["wechat_split"]
    bound = payment_client.get(f"/api/v1/sites/{WECHAT_SITE}/payment-binding", headers=as_b).get_json()
    binding_ids = [binding["binding_id"] for binding in bound["data"]["bindings"]]
    assert len(binding_ids) == 2
    transaction_b = placed(payment_client, admin, amount=12)["transaction_id"]
    cases = [
        ("GET", f"/api/v1/payment/configs/{config_b}", None),
        ("PUT", f"/api/v1/payment/configs/{config_b}", {"name": "hijacked"}),
        ("DELETE", f"/api/v1/payment/configs/{config_b}", None),
        ("PUT", f"/api/v1/payment/configs/{config_b}/status", {"status": "disabled"}),
        ("GET", f"/api/v1/payment/configs/{config_b}/history", None),
        ("POST", f"/api/v1/sites/{WECHAT_SITE}/payment-binding", {"config_id": config_b}),
        ("GET", f"/api/v1/payment/orders/{transaction_b}", None),
    ] + [("DELETE", f"/api/v1/sites/{WECHAT_SITE}/payment-binding/{bid}", None) for bid in binding_ids]
    for method, path, body in cases:
        response = payment_client.open(path, method=method, json=body, headers=as_a)
        assert response.status_code == 404, (method, path, response.get_data(as_text=True)[:200])
        assert_envelope(response, 404)
    assert payment_client.get("/api/v1/payment/orders", headers=as_a).get_json()["data"]["total"] == 0
    assert payment_client.get("/api/v1/payment/configs", headers=as_a).get_json()["data"]["total"] == 0
    config = payment_db.get(PaymentConfig, config_b)
    assert config.status == "enabled" and config.name != "hijacked"
    still_bound = payment_client.get(f"/api/v1/sites/{WECHAT_SITE}/payment-binding", headers=as_b).get_json()
    assert [binding["binding_id"] for binding in still_bound["data"]["bindings"]] == binding_ids
    assert (
        payment_client.get(f"/api/v1/sites/{WECHAT_SITE}/payment-binding", headers=as_a).get_json()["data"][
            "bindings"
        ]
        == []
    )
    assert payment_client.get(f"/api/v1/payment/orders/{transaction_b}", headers=as_b).status_code == 200
