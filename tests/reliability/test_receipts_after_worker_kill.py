"""A worker killed while 500 messages are in flight at Aliyun: the pushed receipts settle the messages of the
calls that never answered (matched by call reference and mobile), within seconds and without polling."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.reliability.stacks import assert_logs_clean, elapsed, mobiles, wait_for
from tests.reliability.test_sms_faults import FINAL, batch_send

pytestmark = pytest.mark.reliability


def _in_flight(stack, tenant_id) -> list[sa.Row]:
    with stack.engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT id, call_ref FROM messages WHERE tenant_id = :tenant AND status = 'sending' "
                    "AND provider IS NOT NULL AND biz_id IS NULL"
                ),
                {"tenant": tenant_id},
            )
        )


def test_worker_killed_with_500_in_flight_receipts_settle_them_without_polling(sms_stack_factory):
    stack = sms_stack_factory(PROVIDERS="aliyun", RECEIPT_POLL_AFTER_SECONDS=2)
    stack.aliyun.latency_ms = 3000  # each call's answer takes long: the kill lands while calls are in flight
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    numbers = mobiles("1397000", 500)
    batch_send(stack, tenant, template_id, numbers)

    worker = stack.start_worker("worker-1", concurrency=5)
    wait_for(lambda: len(_in_flight(stack, tenant["tenant_id"])) >= 500, 60, "all 500 in flight")
    time.sleep(0.3)
    worker.kill(signal.SIGKILL)
    worker.popen.wait(10)
    in_flight = _in_flight(stack, tenant["tenant_id"])
    calls = {row.call_ref for row in in_flight}
    wait_for(lambda: len(stack.aliyun.accepted()) >= len(in_flight), 10, "the killed calls at the upstream")
    stack.aliyun.latency_ms = 0

    started = time.monotonic()
    stack.push_receipts()  # the API alone settles them: no worker is running
    settled_in = elapsed(started)
    ids = {row.id for row in in_flight}
    by_id = {row.id: row for row in stack.messages(tenant["tenant_id"])}
    assert {by_id[message_id].status for message_id in ids} == {"success"}

    stack.start_worker("worker-2")
    stack.start_beat()

    def settled() -> bool:
        stack.push_receipts()
        return set(stack.statuses(tenant["tenant_id"])) <= FINAL

    wait_for(settled, 90, "every message success or failed", interval=1)
    took = elapsed(started)
    time.sleep(4)  # polls and sweeps meanwhile: nothing asked about twice, nothing sent twice
    rows = stack.messages(tenant["tenant_id"])
    accepted = stack.accepted_mobiles()
    print(
        f"\nworker killed with {len(in_flight)} messages in {len(calls)} calls in flight: receipts settled "
        f"them in {settled_in}s; all 500 final in {took}s; {stack.aliyun.queries} QuerySendDetails calls; "
        f"{dict(Counter(row.status for row in rows))}"
    )
    assert stack.aliyun.queries <= len(calls)
    assert settled_in < 10
    assert [mobile for mobile, count in accepted.items() if count > 1] == []
    assert sorted(accepted) == sorted(numbers)
    assert {row.status for row in rows} == {"success"}
    assert_logs_clean(stack.logs(), stack.watched, ["1397000"])
