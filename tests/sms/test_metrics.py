"""The SMS service's Prometheus metrics move where the domain decides, and ``/metrics`` shows them."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from sms_service.accepting import sending
from sms_service.delivery import callbacks, dispatch, receipts
from sms_service.providers import DeliveryReport
from tests.sms.conftest import auth

VARIABLES = {"code": "123456", "minutes": "5"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return {family.name: family.samples for family in families}


def test_messages_are_counted_by_status_and_provider(sms_db, sms_tenant, template, aliyun):
    tenant, _ = sms_tenant
    before = {
        status: sample("sms_messages_total", status=status, provider=provider)
        for status, provider in (("queued", "none"), ("submitted", "aliyun"), ("success", "aliyun"))
    }
    ids = sending.send(sms_db, tenant.id, template.id, ["13800138000", "13900139000"], VARIABLES)[
        "message_ids"
    ]
    dispatch.deliver(sms_db, ids)
    receipts.apply_reports(
        sms_db,
        [
            DeliveryReport("aliyun", None, "13800138000", True, None, None, None, out_id=ids[0]),
            DeliveryReport("aliyun", None, "13800138000", True, None, None, None, out_id=ids[0]),  # duplicate
        ],
    )
    assert sample("sms_messages_total", status="queued", provider="none") - before["queued"] == 2
    assert sample("sms_messages_total", status="submitted", provider="aliyun") - before["submitted"] == 2
    assert sample("sms_messages_total", status="success", provider="aliyun") - before["success"] == 1


def test_provider_calls_are_timed_and_failures_counted(sms_db, sms_tenant, template, aliyun):
    tenant, _ = sms_tenant
    calls = sample("sms_provider_call_duration_seconds_count", provider="aliyun", action="SendSms")
    errors = sample("sms_provider_call_errors_total", provider="aliyun", error="http_5xx")
    aliyun.fail_next(1, status=503)
    ids = sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)["message_ids"]
    dispatch.deliver(sms_db, ids)  # 503, then the retry at the same provider is accepted
    assert (
        sample("sms_provider_call_duration_seconds_count", provider="aliyun", action="SendSms") - calls == 2
    )
    assert sample("sms_provider_call_errors_total", provider="aliyun", error="http_5xx") - errors == 1


def test_callback_attempts_are_counted_by_outcome(sms_db, sms_tenant, template, receiver, configure):
    configure(PROVIDERS="sandbox")
    tenant, _ = sms_tenant
    [message_id] = sending.send(
        sms_db, tenant.id, template.id, ["13800138000"], VARIABLES, callback_url=receiver.url
    )["message_ids"]
    dispatch.deliver(sms_db, [message_id])
    report = DeliveryReport("sandbox", None, "13800138000", True, None, None, None, out_id=message_id)
    receipts.apply_reports(sms_db, [report])
    retry, delivered = (
        sample("sms_callback_attempts_total", outcome="retry"),
        sample("sms_callback_attempts_total", outcome="delivered"),
    )
    receiver.statuses = [503]
    assert callbacks.deliver_callback(sms_db, message_id, 1).outcome == callbacks.RETRY
    assert callbacks.deliver_callback(sms_db, message_id, 2).outcome == callbacks.DELIVERED
    assert sample("sms_callback_attempts_total", outcome="retry") - retry == 1
    assert sample("sms_callback_attempts_total", outcome="delivered") - delivered == 1


def test_metrics_endpoint_needs_no_key_and_shows_latency_by_route(sms_client, sms_tenant):
    _, api_key = sms_tenant
    sms_client.get("/api/v1/sms/records/MSG_20260101_nope", headers=auth(api_key))
    families = scraped(sms_client)
    latency = families["http_request_duration_seconds"]
    routes = {
        (s.labels["endpoint"], s.labels["status"]) for s in latency if s.name.endswith("_count") and s.value
    }
    assert ("/api/v1/sms/records/<message_id>", "404") in routes
    assert not any("MSG_20260101_nope" in s.labels["endpoint"] for s in latency)


def test_metrics_show_the_database_backlog(sms_client, sms_db, sms_tenant, template):
    tenant, _ = sms_tenant
    sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)
    families = scraped(sms_client)
    backlog = {s.labels["status"]: s.value for s in families["sms_messages_backlog"]}
    assert backlog["queued"] >= 1
    [oldest] = families["sms_oldest_queued_age_seconds"]
    assert oldest.value >= 0


def test_metrics_answer_when_the_broker_does_not(sms_client):
    """The test broker refuses every connection: the scrape still answers and says the broker is down."""
    families = scraped(sms_client)
    assert [s.value for s in families["celery_broker_up"]] == [0.0]
    assert "celery_queue_messages" not in families
