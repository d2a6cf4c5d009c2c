"""Dispatch through the providers: batching, isolation of a bad number, failover, circuit breaker, unknown
outcomes, and the guarded transitions that make duplicate tasks harmless."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sms_service.accepting import sending
from sms_service.delivery import dispatch
from sms_service.models import Message
from tests.sms.conftest import create_template

VARIABLES = {"code": "123456", "minutes": "5"}


def accept(session, tenant, template, mobiles, variables=VARIABLES, **extra):
    return sending.send(session, tenant.id, template.id, mobiles, variables, **extra)["message_ids"]


def statuses(session, ids):
    session.expire_all()
    rows = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids))).all()}
    return [rows[mid].status for mid in ids], rows


@pytest.fixture
def tenant(sms_tenant):
    return sms_tenant[0]


def test_sandbox_submits_without_network(sms_db, tenant, template, configure):
    configure(PROVIDERS="sandbox")
    ids = accept(sms_db, tenant, template, ["13800138000"])
    report = dispatch.deliver(sms_db, ids)
    assert report.submitted == 1
    states, rows = statuses(sms_db, ids)
    assert states == ["submitted"] and rows[ids[0]].provider == "sandbox"
    assert rows[ids[0]].biz_id == "SANDBOX-" + ids[0] and rows[ids[0]].sent_at is not None


def test_aliyun_single_send_keeps_request_and_biz_ids(sms_db, tenant, template, aliyun):
    ids = accept(sms_db, tenant, template, ["13800138000"])
    dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    [sent] = aliyun.accepted()
    assert states == ["submitted"]
    assert (rows[ids[0]].req_id, rows[ids[0]].biz_id) == (sent.request_id, sent.biz_id)
    assert sent.reference == ids[0] and sent.template_code == "SMS_100" and sent.sign_name == "洗衣云"
    assert sent.params == {"code": "123456", "minutes": "5"}


def test_one_task_sends_a_whole_request_with_one_batch_call(sms_db, tenant, template, aliyun):
    ids = accept(sms_db, tenant, template, [f"138{n:08d}" for n in range(100)])
    report = dispatch.deliver(sms_db, ids[:1])  # its siblings are claimed too
    assert report.submitted == 100
    assert len({m.request_id for m in aliyun.accepted()}) == 1
    assert set(statuses(sms_db, ids)[0]) == {"submitted"}


def test_a_duplicate_task_sends_nothing_twice(sms_db, tenant, template, aliyun):
    ids = accept(sms_db, tenant, template, ["13800138000", "13900139000"])
    dispatch.deliver(sms_db, ids)
    second = dispatch.deliver(sms_db, ids)
    assert second.submitted == 0 and len(aliyun.accepted()) == 2 and aliyun.duplicates() == []


def test_a_bad_number_in_a_batch_fails_alone(sms_db, tenant, template, aliyun):
    aliyun.error_for_number("13900139000", "isv.MOBILE_NUMBER_ILLEGAL")
    ids = accept(sms_db, tenant, template, ["13800138000", "13900139000", "15000150000"])
    dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    assert states == ["submitted", "failed", "submitted"]
    assert rows[ids[1]].error_code == "isv.MOBILE_NUMBER_ILLEGAL" and rows[ids[1]].error_message
    assert {m.mobile for m in aliyun.accepted()} == {"13800138000", "15000150000"}


def test_permanent_refusal_fails_with_the_upstream_code_without_retry(sms_db, tenant, template, aliyun):
    aliyun.credentials = {"someone-else": "x"}  # every call now refused: InvalidAccessKeyId.NotFound
    ids = accept(sms_db, tenant, template, ["13800138000"])
    report = dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    assert states == ["failed"] and report.deferred == []
    assert rows[ids[0]].error_code == "InvalidAccessKeyId.NotFound"


def test_5xx_is_retried_on_the_same_provider_first(sms_db, tenant, template, aliyun):
    aliyun.fail_next(1, status=503)
    ids = accept(sms_db, tenant, template, ["13800138000"])
    dispatch.deliver(sms_db, ids)
    assert statuses(sms_db, ids)[0] == ["submitted"] and len(aliyun.accepted()) == 1


def test_fails_over_to_the_next_provider_when_the_first_answers_5xx(
    sms_db, tenant, template, aliyun, tencent, configure
):
    configure(PROVIDERS="aliyun,tencent")
    aliyun.fail_for(60, status=500)
    ids = accept(sms_db, tenant, template, ["13800138000", "13900139000"])
    dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    assert states == ["submitted", "submitted"]
    assert {rows[mid].provider for mid in ids} == {"tencent"}
    assert aliyun.accepted() == [] and len(tencent.accepted()) == 2
    assert all(rows[mid].biz_id for mid in ids)


def test_open_circuit_skips_a_dead_provider(sms_db, tenant, template, aliyun, tencent, configure):
    configure(PROVIDERS="aliyun,tencent", CIRCUIT_FAILURE_THRESHOLD=2, CIRCUIT_OPEN_SECONDS=60)
    aliyun.fail_for(60, status=502)
    first = accept(sms_db, tenant, template, ["13800138000"])
    dispatch.deliver(sms_db, first)
    assert not dispatch.breaker().allows("aliyun")
    aliyun.fail_for(0)
    second = accept(sms_db, tenant, template, ["13900139000"])
    dispatch.deliver(sms_db, second)
    assert statuses(sms_db, second)[1][second[0]].provider == "tencent"
    assert aliyun.accepted() == []  # healthy again, but still skipped while the circuit is open


def test_once_open_seconds_pass_one_delivery_probes_and_its_success_brings_the_provider_back(
    sms_app, sms_db, tenant, template, aliyun, tencent, configure
):
    from sms_service.delivery.circuit_breaker import CircuitBreaker

    configure(PROVIDERS="aliyun,tencent")
    now = [1000.0]
    circuit = CircuitBreaker(failure_threshold=2, open_seconds=60, clock=lambda: now[0])
    sms_app.extensions["sms_circuit_breaker"] = circuit
    aliyun.fail_for(60, status=502)
    dispatch.deliver(sms_db, accept(sms_db, tenant, template, ["13800138000"]))
    assert not circuit.allows("aliyun")
    aliyun.fail_for(0)
    now[0] += 60
    probe = accept(sms_db, tenant, template, ["13900139000"])
    dispatch.deliver(sms_db, probe)
    assert statuses(sms_db, probe)[1][probe[0]].provider == "aliyun"
    after = accept(sms_db, tenant, template, ["15000150000"])
    dispatch.deliver(sms_db, after)
    assert statuses(sms_db, after)[1][after[0]].provider == "aliyun"  # closed again, for every caller


def test_all_providers_down_queues_again_and_the_task_retries(sms_db, tenant, template, aliyun):
    aliyun.fail_for(60, status=500)
    ids = accept(sms_db, tenant, template, ["13800138000"])
    with pytest.raises(dispatch.DispatchDeferred):
        dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    assert states == ["queued"] and rows[ids[0]].attempts == 1 and rows[ids[0]].provider is None


def test_messages_fail_when_dispatch_attempts_run_out(sms_db, tenant, template, aliyun, configure, published):
    configure(DISPATCH_MAX_ATTEMPTS=2)
    aliyun.fail_for(60, status=500)
    ids = accept(sms_db, tenant, template, ["13800138000"], callback_url="https://8.8.8.8/cb")
    for _ in range(2):
        with pytest.raises(dispatch.DispatchDeferred):
            dispatch.deliver(sms_db, ids)
    dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    assert states == ["failed"] and rows[ids[0]].error_code == dispatch.ATTEMPTS_EXHAUSTED
    assert ("sms.callback", [ids[0], 1]) in [(name, args) for name, args, _ in published]


def test_timeout_after_the_request_left_is_not_resent(sms_db, tenant, template, aliyun, configure):
    configure(PROVIDER_TIMEOUT_SECONDS=0.3)
    aliyun.timeout_next(1, seconds=1.0)
    ids = accept(sms_db, tenant, template, ["13800138000"])
    report = dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    assert report.unknown == 1 and states == ["sending"]
    assert rows[ids[0]].outcome_unknown and rows[ids[0]].provider == "aliyun"
    dispatch.deliver(sms_db, ids)  # a redelivered task must not send it again
    assert len(aliyun.accepted()) == 1


def test_template_without_a_code_for_any_provider_fails(sms_db, tenant, aliyun):
    template = create_template(sms_db, tenant.id, provider_codes={"tencent": "1000"})
    ids = accept(sms_db, tenant, template, ["13800138000"])
    dispatch.deliver(sms_db, ids)
    states, rows = statuses(sms_db, ids)
    assert states == ["failed"] and rows[ids[0]].error_code == dispatch.NO_PROVIDER
