"""Each operation is one unit of work: one that fails midway leaves nothing of itself behind, and one that
commits in steps keeps the steps done before the failure."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import func, select

from shared.envelope import BadRequestError
from sms_service.accepting import idempotency, sending, templates
from sms_service.delivery import dispatch, receipts, reconciliation
from sms_service.models import LimitCounter, Message
from sms_service.providers import DeliveryReport
from tests.conftest import REDIS_URL

VARIABLES = {"code": "123456", "minutes": "5"}


@pytest.fixture
def tenant(sms_tenant):
    return sms_tenant[0]


def accept(session, tenant, template, mobiles, **extra):
    return sending.send(session, tenant.id, template.id, mobiles, VARIABLES, **extra)


def messages_of(session, tenant) -> list[Message]:
    session.expire_all()
    return list(session.scalars(select(Message).where(Message.tenant_id == tenant.id).order_by(Message.id)))


def test_a_template_update_refused_after_a_change_leaves_the_template_as_it_was(sms_db, tenant, template):
    content = template.content
    with pytest.raises(BadRequestError):  # the content is changed, then the codes are refused
        templates.update_template(
            sms_db, tenant.id, template.id, {"content": "新内容${code}", "provider_codes": {"unknown": "1"}}
        )
    templates.create_template(
        sms_db, tenant.id, {"name": "另一个", "content": "${code}", "sign_name": "洗衣云"}
    )
    sms_db.expire_all()
    assert templates.get_template(sms_db, tenant.id, template.id).content == content


def test_a_receipt_push_whose_second_report_fails_applies_none_and_publishes_nothing(
    sms_db, tenant, template, configure, monkeypatch, published
):
    configure(PROVIDERS="sandbox", CALLBACK_ALLOW_PRIVATE=True)
    accept(sms_db, tenant, template, ["13800138000", "13900139000"], callback_url="http://127.0.0.1/cb")
    sent = messages_of(sms_db, tenant)
    dispatch.deliver(sms_db, [m.id for m in sent])
    reports = [DeliveryReport("sandbox", None, m.mobile, True, None, None, None, out_id=m.id) for m in sent]
    finish = receipts.finish
    calls = []

    def fails_on_the_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return finish(*args, **kwargs)

    monkeypatch.setattr(receipts, "finish", fails_on_the_second)
    published.clear()
    with pytest.raises(RuntimeError):
        receipts.apply_reports(sms_db, reports)
    assert [m.status for m in messages_of(sms_db, tenant)] == ["submitted", "submitted"]
    assert published == []  # the first report's callback was never due


def test_reconciliation_keeps_the_messages_done_before_one_that_fails(
    sms_db, tenant, template, configure, monkeypatch
):
    configure(PROVIDERS="sandbox", SANDBOX_DELAY_MS=0)
    dispatch.deliver(sms_db, accept(sms_db, tenant, template, ["13800138000", "13900139000"])["message_ids"])
    sandbox = dispatch.provider_named("sandbox")
    answer = sandbox.query
    calls = []

    def fails_on_the_second(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return answer(**kwargs)

    monkeypatch.setattr(sandbox, "query", fails_on_the_second)
    with pytest.raises(RuntimeError):
        reconciliation.poll(sms_db)
    assert sorted(m.status for m in messages_of(sms_db, tenant)) == ["submitted", "success"]


def test_the_claim_is_committed_before_the_upstream_is_called(
    sms_db, tenant, template, configure, monkeypatch
):
    configure(PROVIDERS="sandbox")
    ids = accept(sms_db, tenant, template, ["13800138000"])["message_ids"]

    def dies_mid_call(messages):
        raise SystemExit("worker killed during the upstream call")

    monkeypatch.setattr(dispatch.provider_named("sandbox"), "send", dies_mid_call)
    with pytest.raises(SystemExit):
        dispatch.deliver(sms_db, ids)
    [message] = messages_of(sms_db, tenant)
    # Left to the sweep as maybe sent (never sent again blindly), not queued as if nothing had been called.
    assert (message.status, message.provider, message.attempts) == ("sending", "sandbox", 1)


def _replay_after_losing_the_race(monkeypatch, session, tenant, template):
    """A second request with the key of the first, which checked the key just before the first committed."""
    first = accept(session, tenant, template, ["13800138000"], idempotency_key="order-1")
    real = idempotency.first_answer
    checks = []

    def not_yet_on_the_first_check(*args):
        checks.append(args)
        return None if len(checks) == 1 else real(*args)

    monkeypatch.setattr(idempotency, "first_answer", not_yet_on_the_first_check)
    again = accept(session, tenant, template, ["13900139000"], idempotency_key="order-1")
    return first, again


def test_a_key_that_lost_the_insert_race_answers_the_first_answer_and_stores_nothing(
    sms_db, tenant, template, monkeypatch, published
):
    first, again = _replay_after_losing_the_race(monkeypatch, sms_db, tenant, template)
    assert again == first
    assert [m.id for m in messages_of(sms_db, tenant)] == first["message_ids"]
    quota = select(func.sum(LimitCounter.used)).where(
        LimitCounter.tenant_id == tenant.id, LimitCounter.name == "daily_quota"
    )
    assert sms_db.scalar(quota) == 1
    assert published.delivered_ids() == first["message_ids"]


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")
def test_a_key_that_lost_the_insert_race_gives_its_redis_counters_back(
    sms_db, tenant, template, configure, monkeypatch
):
    configure(REDIS_URL=REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    pattern = f"sms:limits:{{{tenant.id}}}:*"
    try:
        first, again = _replay_after_losing_the_race(monkeypatch, sms_db, tenant, template)
        assert again == first
        quota = [key for key in client.keys(pattern) if b":daily_quota:" in key]
        assert [int(client.hget(key, "-")) for key in quota] == [1]
    finally:
        for key in client.keys(pattern):
            client.delete(key)
        client.close()
