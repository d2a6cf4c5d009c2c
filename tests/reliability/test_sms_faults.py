"""Faults under the SMS service with real processes: a worker killed mid-dispatch, the broker down, PostgreSQL
restarted, an upstream failing for 30 s, a callback receiver down. Nothing accepted is lost; nothing is sent
twice. Figures are printed (run with -s) and recorded in docs/reliability.md."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.reliability.proxy import TcpProxy
from tests.reliability.stacks import (
    VARIABLES,
    CallbackServer,
    PrivatePostgres,
    assert_logs_clean,
    auth,
    elapsed,
    mobiles,
    wait_for,
)

pytestmark = pytest.mark.reliability

FINAL = {"success", "failed"}


def batch_send(stack, tenant, template_id, numbers) -> str:
    items = [{"mobile": number, "variables": VARIABLES} for number in numbers]
    response = requests.post(
        stack.base_url + "/api/v1/sms/batch-send",
        json={"template_id": template_id, "items": items},
        headers=auth(tenant),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["batch_id"]


def test_worker_killed_while_dispatching_2000_messages_loses_and_repeats_nothing(sms_stack_factory):
    stack = sms_stack_factory(PROVIDERS="aliyun")
    stack.aliyun.latency_ms = 150  # calls in flight most of the time, so the kill lands inside one
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    numbers = mobiles("1391000", 2000)
    for start in (0, 1000):
        batch_send(stack, tenant, template_id, numbers[start : start + 1000])
    assert stack.statuses(tenant["tenant_id"]) == {"queued": 2000}

    started = time.monotonic()
    worker = stack.start_worker("worker-1")
    wait_for(lambda: len(stack.aliyun.accepted()) >= 600, 60, "600 messages at the upstream")
    worker.kill(signal.SIGKILL)
    worker.popen.wait(10)
    at_kill = len(stack.aliyun.accepted())
    stack.aliyun.latency_ms = 0
    stack.start_worker("worker-2")
    stack.start_beat()

    def settled() -> bool:
        stack.push_receipts()
        return set(stack.statuses(tenant["tenant_id"])) <= FINAL

    wait_for(settled, 120, "every message success or failed", interval=1)
    took = elapsed(started)
    time.sleep(3)  # a few more sweeps and polls: nothing may be sent again
    rows = stack.messages(tenant["tenant_id"])
    accepted = stack.accepted_mobiles()
    statuses = Counter(row.status for row in rows)
    print(f"\nSIGKILL: {at_kill} accepted upstream at the kill; settled in {took}s; {dict(statuses)}")

    assert len(rows) == 2000 and set(statuses) <= FINAL
    assert [mobile for mobile, count in accepted.items() if count > 1] == []  # nothing sent twice
    assert set(accepted) <= set(numbers)
    failed = [row for row in rows if row.status == "failed"]
    # Only messages caught in the killed calls may fail, and only as "outcome unknown" (never resent).
    assert {row.error_code for row in failed} <= {"OUTCOME_UNKNOWN"} and len(failed) <= 2 * 100
    # The killed calls' messages the upstream took are found by their call reference: success, not failed.
    assert {row.mobile for row in rows if row.status == "success"} == set(accepted)
    assert not {row.mobile for row in failed} & set(accepted)
    # None is missing: every message reached the upstream once, or is reported failed.
    assert set(accepted) | {row.mobile for row in failed} == set(numbers)
    assert_logs_clean(stack.logs(), stack.watched, ["1391000"])


def test_broker_down_while_500_sends_are_accepted_then_each_is_delivered_once(sms_stack_factory, broker_url):
    parts = urlsplit(broker_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5672)
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username or 'guest'}:{parts.password or 'guest'}"
                                        f"@127.0.0.1:{proxy.port}"))  # fmt: skip
    try:
        stack = sms_stack_factory(BROKER_URL=proxied, PROVIDERS="aliyun")
        tenant = stack.tenant()
        template_id = stack.template(tenant)
        stack.start_worker()
        stack.start_beat()
        numbers = mobiles("1392000", 500)

        proxy.cut()
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: stack.send(tenant, template_id, [n]), numbers))
        accept_seconds = elapsed(started)
        assert [answer.status_code for answer in answers] == [200] * 500, answers[0].text
        assert stack.aliyun.accepted() == []  # nothing could have been published
        assert stack.statuses(tenant["tenant_id"]) == {"queued": 500}
        down_for = elapsed(started)
        proxy.restore()

        restored = time.monotonic()
        wait_for(lambda: len(stack.aliyun.accepted()) >= 500, 90, "all 500 at the upstream", interval=0.5)
        delivered_in = elapsed(restored)
        time.sleep(4)  # more sweeps: nothing may be published and sent again
        accepted = stack.accepted_mobiles()
        print(
            f"\nbroker down {down_for}s: 500 accepted in {accept_seconds}s, delivered {delivered_in}s after"
        )
        assert sorted(accepted) == sorted(numbers) and set(accepted.values()) == {1}
        assert stack.statuses(tenant["tenant_id"]) == {"submitted": 500}
        assert_logs_clean(stack.logs(), stack.watched, ["1392000"])
    finally:
        proxy.cut()


def test_postgresql_restarted_under_traffic_answers_503_recovers_and_loses_nothing(sms_stack_factory):
    postgres = PrivatePostgres()
    try:
        stack = sms_stack_factory(
            database_url=postgres.create_database("sms_restart"), PROVIDERS="aliyun", DISPATCH_BATCH_SIZE=1
        )
        tenant = stack.tenant()
        template_id = stack.template(tenant)
        stack.start_worker()
        stack.start_beat()
        numbers = iter(mobiles("1393000", 10_000))
        answers: list[tuple[float, int, dict | str]] = []
        lock, stop = threading.Lock(), threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                with lock:
                    number = next(numbers)
                try:
                    response = stack.send(tenant, template_id, [number], timeout=15)
                    body = (
                        response.json()
                        if response.headers.get("Content-Type", "").startswith("application/json")
                        else response.text
                    )
                    outcome = (time.monotonic(), response.status_code, body, number)
                except requests.RequestException as exc:
                    outcome = (time.monotonic(), 0, type(exc).__name__, number)
                with lock:
                    answers.append(outcome)
                time.sleep(0.02)

        threads = [threading.Thread(target=traffic, daemon=True) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        stopped_at = time.monotonic()
        postgres.stop()
        time.sleep(4)
        ready_during_outage = requests.get(stack.base_url + "/readyz", timeout=10)
        postgres.start()
        started_at = time.monotonic()
        wait_for(
            lambda: any(at > started_at and status == 200 for at, status, _, _ in list(answers)),
            30,
            "recovery",
        )
        recovered_in = round(min(at for at, status, _, _ in answers if at > started_at and status == 200)
                             - started_at, 2)  # fmt: skip
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(20)

        during = [(status, body) for at, status, body, _ in answers if stopped_at < at < started_at]
        print(
            f"\nPostgreSQL restart: {len(answers)} requests, {Counter(s for _, s, _, _ in answers)}; "
            f"{len(during)} while down; first 200 {recovered_in}s after start"
        )
        assert ready_during_outage.status_code == 503
        assert {status for _, status, _, _ in answers} <= {200, 503}
        assert any(status == 503 for status, _ in during)
        for status, body in during:
            if status == 503:
                assert set(body) == {"code", "data", "message"} and body["code"] == 503, body
                assert "Traceback" not in str(body) and "psycopg2" not in str(body)
        assert recovered_in < 10

        accepted = {
            number: body["data"]["message_id"] for _, status, body, number in answers if status == 200
        }

        def settled() -> bool:
            rows = stack.messages(tenant["tenant_id"])
            return len(rows) == len(accepted) and all(row.status in FINAL | {"submitted"} for row in rows)

        wait_for(settled, 90, "every accepted message submitted or final", interval=1)
        rows = {row.id: row for row in stack.messages(tenant["tenant_id"])}
        assert set(rows) == set(accepted.values())  # no accepted message lost, none stored without a 200
        upstream = stack.accepted_mobiles()
        assert [mobile for mobile, count in upstream.items() if count > 1] == []
        assert {row.mobile for row in rows.values() if row.status == "submitted"} <= set(upstream)
        assert {row.error_code for row in rows.values() if row.status == "failed"} <= {"OUTCOME_UNKNOWN"}
        assert_logs_clean(stack.logs(), stack.watched, ["1393000"])
    finally:
        postgres.destroy()


def test_upstream_failing_for_30_seconds_fails_over_and_comes_back(sms_stack_factory):
    stack = sms_stack_factory(
        DISPATCH_BATCH_SIZE=1,
        PROVIDER_TIMEOUT_SECONDS=1,
        CIRCUIT_FAILURE_THRESHOLD=2,
        CIRCUIT_OPEN_SECONDS=2,
        # Calls that timed out are reconciled by query after the hang (a poll run during it would hold a
        # worker process for its whole batch of timing-out queries).
        RECEIPT_POLL_AFTER_SECONDS=15,
        RECEIPT_GIVE_UP_AFTER_SECONDS=120,
    )
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    stack.start_worker()
    stack.start_beat()
    numbers = iter(mobiles("1394000", 1000))
    sent: list[tuple[float, str, str]] = []

    def send_for(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            number = next(numbers)
            response = stack.send(tenant, template_id, [number])
            assert response.status_code == 200, response.text
            sent.append((time.monotonic(), number, response.json()["data"]["message_id"]))
            time.sleep(0.4)

    send_for(2)
    five_xx_from = time.monotonic()
    stack.aliyun.fail_for(30, status=503)
    send_for(30)
    timeouts_from = time.monotonic()
    stack.aliyun.latency_ms = 2500  # above the 1 s read timeout: the upstream hangs
    send_for(10)
    stack.aliyun.latency_ms = 0
    healthy_from = time.monotonic()
    send_for(8)

    def settled() -> bool:
        stack.push_receipts()
        rows = stack.messages(tenant["tenant_id"])
        return len(rows) == len(sent) and all(row.status in FINAL | {"submitted"} for row in rows)

    wait_for(settled, 60, "every message submitted or final", interval=1)
    rows = {row.id: row for row in stack.messages(tenant["tenant_id"])}
    by_phase = Counter()
    for at, _, message_id in sent:
        phase = "before" if at < five_xx_from else "5xx" if at < timeouts_from else (
            "timeouts" if at < healthy_from else "after")  # fmt: skip
        by_phase[(phase, rows[message_id].provider)] += 1
    print(f"\nupstream outage: {dict(by_phase)}")

    upstream = stack.accepted_mobiles()
    assert [mobile for mobile, count in upstream.items() if count > 1] == []
    assert all(rows[message_id].status in {"submitted", "success"} for _, _, message_id in sent), Counter(
        row.status for row in rows.values()
    )
    # During the 30 s of 5xx every message went out through Tencent.
    assert by_phase[("5xx", "aliyun")] == 0 and by_phase[("5xx", "tencent")] >= 30
    # While Aliyun hangs, at most the calls before the circuit opened wait for reconciliation there.
    assert by_phase[("timeouts", "tencent")] > by_phase[("timeouts", "aliyun")]
    # Once Aliyun answers again (and the circuit's 2 s passed), it is the first provider again.
    late = [message_id for at, _, message_id in sent if at > healthy_from + 3]
    assert late and all(rows[message_id].provider == "aliyun" for message_id in late)
    assert_logs_clean(stack.logs(), stack.watched, ["1394000"])


def test_callback_receiver_down_for_a_while_then_back_gets_the_result_once(sms_stack_factory):
    receiver = CallbackServer()
    stack = sms_stack_factory(PROVIDERS="aliyun", CALLBACK_RETRY_DELAYS="1,1,2,2")
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    stack.start_worker()
    stack.start_beat()
    try:
        receiver.stop()  # down: connections refused
        down_id = stack.send(tenant, template_id, ["13950000001"], callback_url=receiver.url()).json()[
            "data"
        ]["message_id"]
        always = stack.send(
            tenant, template_id, ["13950000002"], callback_url=receiver.url("sms/always-fails")
        )
        always_id = always.json()["data"]["message_id"]
        wait_for(lambda: len(stack.aliyun.accepted()) == 2, 30, "both submitted")
        stack.push_receipts()
        wait_for(lambda: _message(stack, tenant, down_id).callback_attempts >= 2, 30, "two refused attempts")
        receiver.start()
        wait_for(lambda: _message(stack, tenant, down_id).callback_status == "delivered", 30, "delivered")
        wait_for(lambda: _message(stack, tenant, always_id).callback_status == "failed", 60, "given up")
        time.sleep(3)  # nothing after giving up, nothing twice after delivering

        delivered = _callback_record(stack, tenant, down_id)
        outcomes = [attempt["outcome"] for attempt in delivered["attempts"]]
        print(f"\ncallback receiver down then back: {outcomes}")
        assert outcomes[-1] == "delivered" and set(outcomes[:-1]) == {"retry"} and len(outcomes) >= 3
        assert all(attempt["error"] for attempt in delivered["attempts"][:-1])
        assert len(receiver.bodies_for("message_id", down_id, tenant["callback_secret"])) == 1
        # Always failing: the first attempt and one retry per configured delay (4), then it gives up.
        failing = _callback_record(stack, tenant, always_id)
        codes = [attempt["status_code"] for attempt in failing["attempts"]]
        assert (
            len(codes) == 5 and set(codes) <= {None, 500} and codes[-1] == 500
        )  # refused while down, then 500
        assert [attempt["outcome"] for attempt in failing["attempts"]] == ["retry"] * 4 + ["gave_up"]
        failing_bodies = receiver.bodies_for("message_id", always_id, tenant["callback_secret"])
        assert len(failing_bodies) == codes.count(500)
        assert_logs_clean(stack.logs(), stack.watched, ["1395000"])
    finally:
        receiver.stop()


def _message(stack, tenant, message_id):
    return next(row for row in stack.messages(tenant["tenant_id"]) if row.id == message_id)


def _callback_record(stack, tenant, message_id) -> dict:
    url = f"{stack.base_url}/api/v1/sms/records/{message_id}"
    return requests.get(url, headers=auth(tenant), timeout=5).json()["data"]["callback"]
