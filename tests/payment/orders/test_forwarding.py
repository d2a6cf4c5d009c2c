"""Forwarding payment.result to the business: signed by Standard Webhooks (checked by the reference library),
retried on the shared schedule, DNS failures retried, each attempt recorded, the notify secret rotated."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from payment_service.models import ForwardAttempt, OrderForward, Tenant
from payment_service.orders.forwarding import deliver_forward
from shared.db import utcnow
from tests.fakes.dns import FakeDns
from tests.fakes.payment_server import Answer, NotifyReceiver, running
from tests.payment.orders.helpers import WECHAT_SITE, order_of, placed


@pytest.fixture
def allow_private(payment_app, monkeypatch):
    monkeypatch.setitem(payment_app.config, "NOTIFY_ALLOW_PRIVATE", True)


def verifies(secret: str, received) -> bool:
    try:
        Webhook(secret).verify(received.body, received.headers)
    except WebhookVerificationError:
        return False
    return True


def paid_order(client, api_key, wechat, notify_url: str) -> str:
    transaction_id = placed(client, api_key, amount=20, out_order_no="BIZ-F", notify_url=notify_url)[
        "transaction_id"
    ]
    assert wechat.pay(transaction_id).status == 204
    return transaction_id


def make_due(session, transaction_id: str) -> None:
    forward = session.query(OrderForward).filter_by(order_id=transaction_id).one()
    forward.next_attempt_at = utcnow()
    session.commit()


def test_result_is_posted_signed_with_the_tenant_secret(
    payment_client, admin, payment_db, payment_tenant, fakes, sites, published, allow_private
):
    wechat, _ = fakes
    receiver = NotifyReceiver(lambda notification: Answer(200, b"ok"))
    with running(receiver) as url:
        transaction_id = paid_order(payment_client, admin, wechat, url + "/pay/callback")
        assert deliver_forward(payment_db, transaction_id) is None

    [received] = receiver.received
    assert received.path == "/pay/callback"
    secret = payment_db.get(Tenant, payment_tenant[0].id).notify_secret
    assert verifies(secret, received)
    assert received.headers["Webhook-Id"] == f"payment_result_{transaction_id}"
    payload = json.loads(received.body)
    order = order_of(payment_client, admin, transaction_id)
    assert payload == {
        "event": "payment.result",
        "data": {
            "transaction_id": transaction_id,
            "out_order_no": "BIZ-F",
            "site_id": WECHAT_SITE,
            "channel": "wechat",
            "amount": 20.0,
            "status": "paid",
            "paid_at": order["paid_at"],
            "channel_transaction_id": order["channel_transaction_id"],
        },
    }
    assert order["forwarding"]["status"] == "delivered" and order["forwarding"]["attempts"] == 1
    assert deliver_forward(payment_db, transaction_id) is None
    assert len(receiver.received) == 1


def test_failures_are_retried_with_backoff_and_every_attempt_is_recorded(
    payment_client, admin, payment_db, fakes, sites, published, allow_private
):
    wechat, _ = fakes
    answers = iter([Answer(500), Answer(429, content_type="text/plain"), Answer(204)])
    receiver = NotifyReceiver(lambda notification: next(answers))
    with running(receiver) as url:
        transaction_id = paid_order(payment_client, admin, wechat, url + "/cb")
        first_delay = deliver_forward(payment_db, transaction_id)
        assert 4.5 <= first_delay <= 5.5  # the first retry within a minute
        assert deliver_forward(payment_db, transaction_id) is None  # not due yet: nothing posted
        assert len(receiver.received) == 1
        make_due(payment_db, transaction_id)
        second_delay = deliver_forward(payment_db, transaction_id)
        assert 54 <= second_delay <= 66
        make_due(payment_db, transaction_id)
        assert deliver_forward(payment_db, transaction_id) is None

    forward = payment_db.query(OrderForward).filter_by(order_id=transaction_id).one()
    attempts = (
        payment_db.query(ForwardAttempt)
        .filter_by(forward_id=forward.id)
        .order_by(ForwardAttempt.attempt)
        .all()
    )
    assert [(a.attempt, a.status_code, a.error, a.outcome) for a in attempts] == [
        (1, 500, "HTTP 500", "retry"),
        (2, 429, "HTTP 429", "retry"),
        (3, 204, None, "delivered"),
    ]
    assert forward.status == "delivered" and len(receiver.received) == 3
    ids = {received.headers["Webhook-Id"] for received in receiver.received}
    assert ids == {f"payment_result_{transaction_id}"}  # one event: the same id on every retry


@pytest.mark.parametrize("status", [302, 404])
def test_a_3xx_or_other_4xx_is_not_retried(
    payment_client, admin, payment_db, fakes, sites, published, allow_private, status
):
    wechat, _ = fakes
    receiver = NotifyReceiver(lambda notification: Answer(status, content_type="text/plain"))
    with running(receiver) as url:
        transaction_id = paid_order(payment_client, admin, wechat, url + "/cb")
        assert deliver_forward(payment_db, transaction_id) is None
    forwarding = order_of(payment_client, admin, transaction_id)["forwarding"]
    assert (forwarding["status"], forwarding["attempts"], forwarding["last_http_status"]) == (
        "failed",
        1,
        status,
    )


def test_a_notify_host_that_does_not_resolve_is_retried_then_delivered_once_it_does(
    payment_client,
    admin,
    payment_db,
    payment_app,
    payment_tenant,
    fakes,
    sites,
    published,
    allow_private,
    monkeypatch,
):
    wechat, _ = fakes
    dns = FakeDns().install(monkeypatch)
    receiver = NotifyReceiver(lambda notification: Answer(200, b"ok"))
    with running(receiver) as url:
        port = url.rsplit(":", 1)[1]
        transaction_id = paid_order(payment_client, admin, wechat, f"http://{FakeDns.NAME}:{port}/cb")
        monkeypatch.setitem(payment_app.config, "NOTIFY_ALLOW_PRIVATE", False)
        delay = deliver_forward(payment_db, transaction_id)
        assert delay is not None and delay <= 60
        forwarding = order_of(payment_client, admin, transaction_id)["forwarding"]
        assert forwarding["status"] == "pending" and forwarding["last_error"].startswith("DNS: ")
        dns.address = "127.0.0.1"  # resolves now, to the receiver (on loopback, hence allowed here)
        monkeypatch.setitem(payment_app.config, "NOTIFY_ALLOW_PRIVATE", True)
        make_due(payment_db, transaction_id)
        assert deliver_forward(payment_db, transaction_id) is None
    [received] = receiver.received
    assert verifies(payment_db.get(Tenant, payment_tenant[0].id).notify_secret, received)
    assert order_of(payment_client, admin, transaction_id)["forwarding"]["status"] == "delivered"


def test_forwarding_gives_up_after_the_last_scheduled_retry(
    payment_client, admin, payment_db, payment_app, fakes, sites, published, allow_private, monkeypatch
):
    wechat, _ = fakes
    monkeypatch.setitem(payment_app.config, "FORWARD_RETRY_SCHEDULE", (0.1,))
    receiver = NotifyReceiver(lambda notification: Answer(503))
    with running(receiver) as url:
        transaction_id = paid_order(payment_client, admin, wechat, url + "/cb")
        assert deliver_forward(payment_db, transaction_id) is not None
        make_due(payment_db, transaction_id)
        assert deliver_forward(payment_db, transaction_id) is None
    forwarding = order_of(payment_client, admin, transaction_id)["forwarding"]
    assert (
        forwarding["status"] == "failed"
        and forwarding["attempts"] == 2
        and forwarding["last_http_status"] == 503
    )


def test_unreachable_receiver_is_recorded_as_an_error(
    payment_client, admin, payment_db, fakes, sites, published, allow_private
):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, "http://127.0.0.1:9/cb")
    assert deliver_forward(payment_db, transaction_id) is not None
    forwarding = order_of(payment_client, admin, transaction_id)["forwarding"]
    assert forwarding["last_http_status"] is None and forwarding["last_error"].startswith("ConnectionError")


def test_a_private_address_is_refused_again_at_delivery_time(
    payment_client, admin, payment_db, payment_app, fakes, sites, published, allow_private, monkeypatch
):
    wechat, _ = fakes
    receiver = NotifyReceiver()
    with running(receiver) as url:
        transaction_id = paid_order(payment_client, admin, wechat, url + "/cb")
        monkeypatch.setitem(payment_app.config, "NOTIFY_ALLOW_PRIVATE", False)
        assert deliver_forward(payment_db, transaction_id) is None
    assert receiver.received == []
    forwarding = order_of(payment_client, admin, transaction_id)["forwarding"]
    assert forwarding["status"] == "failed" and "内网" in forwarding["last_error"]


def test_sweep_publishes_overdue_forwards_again(
    payment_client, admin, payment_db, fakes, sites, published, allow_private
):
    from payment_service.orders.reconciliation import sweep_stuck_work
    from payment_service.outbox import FORWARD_TASK, PROFIT_SHARING_TASK

    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, "http://127.0.0.1:9/cb")
    assert sweep_stuck_work(payment_db) == 0
    assert sweep_stuck_work(payment_db, now=utcnow() + timedelta(minutes=6)) == 2  # the forward and the split
    assert published.of(FORWARD_TASK) == [transaction_id, transaction_id]
    assert published.of(PROFIT_SHARING_TASK) == [transaction_id, transaction_id]


def test_several_paid_orders_go_out_in_one_task_and_the_worker_fans_it_out(monkeypatch, published):
    from payment_service import outbox
    from payment_service.tasks import forward_many

    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(
        outbox.celery, "send_task", lambda name, args, queue, **_options: sent.append((name, args))
    )
    assert outbox.publish_forwards(["PAY_1", "PAY_2", "PAY_3"])
    assert sent == [(outbox.FORWARD_MANY_TASK, [["PAY_1", "PAY_2", "PAY_3"]])]
    assert published.tasks == []

    assert outbox.publish_forwards(["PAY_4"])  # alone: its own forward task, as before
    assert published.of(outbox.FORWARD_TASK) == ["PAY_4"]

    # The worker: one forward task per order, each retried on its own row's schedule.
    assert forward_many.run(["PAY_1", "PAY_2", "PAY_3"]) == 3
    assert published.of(outbox.FORWARD_TASK) == ["PAY_4", "PAY_1", "PAY_2", "PAY_3"]


def test_orders_paid_within_the_linger_share_one_publish(
    payment_app, payment_client, admin, fakes, sites, monkeypatch, allow_private
):
    import threading

    from payment_service import outbox

    sent: list[tuple[str, list]] = []
    done = threading.Event()

    def send_task(name, args, queue, **_options):
        if name in (outbox.FORWARD_TASK, outbox.FORWARD_MANY_TASK):
            sent.append((name, args))
            done.set()

    monkeypatch.setattr(outbox.celery, "send_task", send_task)
    monkeypatch.setitem(payment_app.config, "PUBLISH_LINGER_MS", 1000)
    monkeypatch.delitem(payment_app.extensions, "payment_forward_publisher", raising=False)
    wechat, _ = fakes
    first = paid_order(payment_client, admin, wechat, "http://127.0.0.1:9/a")
    assert done.wait(10)  # after a quiet spell: at once, on its own
    assert sent == [(outbox.FORWARD_TASK, [first])]
    done.clear()
    later = []
    for number in (1, 2):
        order = placed(
            payment_client, admin, amount=30, out_order_no=f"BIZ-G{number}", notify_url="http://127.0.0.1:9/b"
        )
        assert wechat.pay(order["transaction_id"]).status == 204
        later.append(order["transaction_id"])
    assert len(sent) == 1  # the notifications were answered without waiting for the broker
    assert done.wait(10)  # paid within the linger of that publish: together, in the next one
    assert sent[1:] == [(outbox.FORWARD_MANY_TASK, [later])]
    payment_app.extensions.pop("payment_forward_publisher")


def test_rotated_notify_secret_both_sign_during_the_overlap_then_only_the_new_one(
    payment_app, payment_client, admin, payment_db, payment_tenant, fakes, sites, published, allow_private
):
    wechat, _ = fakes
    tenant_id = payment_tenant[0].id
    old = payment_db.get(Tenant, tenant_id).notify_secret
    result = payment_app.test_cli_runner().invoke(args=["tenant", "rotate-secret", "--tenant", tenant_id])
    assert result.exit_code == 0, result.output
    new = json.loads(result.output)["notify_secret"]
    assert new.startswith("whsec_") and new != old

    receiver = NotifyReceiver(lambda notification: Answer(200, b"ok"))
    with running(receiver) as url:
        during = paid_order(payment_client, admin, wechat, url + "/cb")
        assert deliver_forward(payment_db, during) is None
        tenant = payment_db.get(Tenant, tenant_id)
        tenant.previous_notify_secret_expires_at = utcnow() - timedelta(seconds=1)
        payment_db.commit()
        after = placed(payment_client, admin, amount=21, out_order_no="BIZ-R", notify_url=url + "/cb")
        assert wechat.pay(after["transaction_id"]).status == 204
        assert deliver_forward(payment_db, after["transaction_id"]) is None
    first, second = receiver.received
    assert verifies(old, first) and verifies(new, first)
    assert verifies(new, second) and not verifies(old, second)


def test_tenant_create_prints_a_whsec_notify_secret(payment_app, payment_db):
    result = payment_app.test_cli_runner().invoke(args=["tenant", "create", "--name", "华南加盟商"])
    secret = json.loads(result.output)["notify_secret"]
    assert secret.startswith("whsec_") and Webhook(secret)
