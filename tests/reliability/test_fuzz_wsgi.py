"""schemathesis against both services in-process (WSGI): at least 1,000 generated cases per service, with a
valid and an invalid key; no 5xx, nothing outside the OpenAPI document or the envelope."""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.factories import create_payment_tenant, create_sms_tenant
from tests.fakes.payment_server import running
from tests.payment.conftest import create_config, params_for
from tests.payment.orders.helpers import (
    WECHAT_SITE,
    alipay_fake_app,
    published,  # noqa: F401  (fixture)
    set_up_sites,
    wechat_fake_app,
)
from tests.reliability.fuzzing import Pass, fuzz
from tests.reliability.notify_cases import upstream_notifications

pytestmark = pytest.mark.reliability

INVALID_KEY = "sk_live_" + "x" * 43
MIN_CASES = 1000


def passes(
    valid_key: str, existing: dict | None = None, supplied: dict | None = None, signed: dict | None = None
) -> list[Pass]:
    return [
        Pass(
            GenerationMode.POSITIVE,
            valid_key,
            40,
            expects_acceptance=True,
            existing=existing or {},
            supplied=supplied or {},
            signed_by_upstream=signed or {},
        ),
        Pass(GenerationMode.NEGATIVE, valid_key, 30),
        Pass(GenerationMode.POSITIVE, INVALID_KEY, 10),
    ]


def assert_clean(report, service: str) -> None:
    print(f"\n{service}: {report.cases} cases, statuses {dict(sorted(report.by_status.items()))}")
    assert report.cases >= MIN_CASES, report.cases
    assert not report.failures, f"{len(report.failures)} failure(s):\n" + "\n".join(report.failures[:25])
    print("refused as invalid:", {op: counts for op, counts in report.accepting.items() if 400 in counts})
    assert not report.validation_mismatches(), report.validation_mismatches()


def sms_templates(client, api_key: str) -> dict[str, dict[str, str]]:
    """A template to send with and one to update, so that valid sends and updates can succeed."""
    ids = []
    for name in ("fuzz-send", "fuzz-update"):
        body = {"name": name, "content": "洗衣完成, 请取衣", "sign_name": "洗衣云", "provider_codes": {}}
        answer = client.post("/api/v1/sms/templates", json=body, headers={"X-Api-Key": api_key})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        ids.append(answer.get_json()["data"]["template_id"])
    send, update = ids
    return {
        "POST /api/v1/sms/send": {"template_id": send},
        "POST /api/v1/sms/batch-send": {"template_id": send},
        "PUT /api/v1/sms/templates/{template_id}": {"template_id": update},
    }


def test_sms_service_survives_fuzzing(sms_app, sms_db):
    _, api_key = create_sms_tenant(sms_db)
    existing = sms_templates(sms_app.test_client(), api_key)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", sms_app)
    assert_clean(fuzz(schema, passes(api_key, existing)), "sms")


# RSA keys are documented (type, description), but no generator makes one that parses: real ones replace them.
PAYMENT_KEYS = {
    "merchant_private_key": params_for("wechat_direct")["merchant_private_key"],
    "wechatpay_public_key": params_for("wechat_direct")["wechatpay_public_key"],
    "app_private_key": params_for("alipay_direct")["app_private_key"],
    "alipay_public_key": params_for("alipay_direct")["alipay_public_key"],
}


@pytest.mark.usefixtures("published")  # paid orders' follow-up work is recorded, not sent to a broker
def test_payment_service_survives_fuzzing(payment_app, payment_db, monkeypatch):
    _, api_key = create_payment_tenant(payment_db)
    client = payment_app.test_client()
    config = create_config(client, api_key, "wechat_direct", name="fuzz-update")
    existing = {
        "PUT /api/v1/payment/configs/{config_id}": {"config_id": config["config_id"]},
        # A site bound to WeChat Pay (split) and Alipay: generated orders are placed with the fakes.
        "POST /api/v1/payment/order": {"site_id": WECHAT_SITE},
    }
    # Orders are placed with the WeChat Pay and Alipay fakes over loopback, as the upstreams would place them.
    wechat, alipay = wechat_fake_app(), alipay_fake_app()
    with running(wechat) as wechat_url, running(alipay) as alipay_url:
        monkeypatch.setitem(payment_app.config, "WECHATPAY_BASE_URL", wechat_url)
        monkeypatch.setitem(payment_app.config, "ALIPAY_GATEWAY_URL", alipay_url + "/gateway.do")
        configs = set_up_sites(client, api_key)
        # The notify endpoints take only what WeChat Pay or Alipay signed: their cases become that.
        signed = upstream_notifications(client, api_key, wechat, alipay, configs)
        schema = schemathesis.openapi.from_wsgi("/openapi.json", payment_app)
        report = fuzz(schema, passes(api_key, existing, PAYMENT_KEYS, signed))
    assert_clean(report, "payment")
    print("notifications:", {operation: report.accepting[operation] for operation in signed})
    for operation in signed:  # real notifications are acknowledged (a redelivery too)
        counts = report.accepting[operation]
        assert sum(n for status, n in counts.items() if status < 300) >= 0.9 * sum(counts.values()), counts
