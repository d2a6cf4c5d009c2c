"""schemathesis against both services in-process (WSGI): at least 1,000 generated cases per service, with a
valid and an invalid key; no 5xx, nothing outside the OpenAPI document or the envelope."""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode

from tests.factories import create_payment_tenant, create_sms_tenant
from tests.reliability.fuzzing import Pass, fuzz

pytestmark = pytest.mark.reliability

INVALID_KEY = "sk_live_" + "x" * 43
MIN_CASES = 1000


def passes(valid_key: str) -> list[Pass]:
    return [
        Pass(GenerationMode.POSITIVE, valid_key, 40),
        Pass(GenerationMode.NEGATIVE, valid_key, 30),
        Pass(GenerationMode.POSITIVE, INVALID_KEY, 10),
    ]


def assert_clean(report, service: str) -> None:
    print(f"\n{service}: {report.cases} cases, statuses {dict(sorted(report.by_status.items()))}")
    assert report.cases >= MIN_CASES, report.cases
    assert not report.failures, f"{len(report.failures)} failure(s):\n" + "\n".join(report.failures[:25])


def test_sms_service_survives_fuzzing(sms_app, sms_db):
    _, api_key = create_sms_tenant(sms_db)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", sms_app)
    assert_clean(fuzz(schema, passes(api_key)), "sms")


def test_payment_service_survives_fuzzing(payment_app, payment_db):
    _, api_key = create_payment_tenant(payment_db)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", payment_app)
    assert_clean(fuzz(schema, passes(api_key)), "payment")
