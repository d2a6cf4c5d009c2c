"""The Celery side: task names and queues, the beat schedule, every queue published to is consumed."""

from __future__ import annotations

from sms_service import queues, tasks
from sms_service.extensions import celery


def test_tasks_have_explicit_names_on_the_services_queues(sms_app):
    expected = {
        "sms.deliver": queues.SEND,
        "sms.callback": queues.CALLBACKS,
        "sms.sweep": queues.PERIODIC,
        "sms.poll_receipts": queues.RECEIPTS,
    }
    for name, queue in expected.items():
        assert celery.tasks[name].queue == queue
    assert tasks.deliver.name == "sms.deliver"


def test_beat_runs_the_sweep_the_receipt_poll_and_the_usage_rebuild(sms_app):
    schedule = celery.conf.beat_schedule
    tasks = {entry["task"] for entry in schedule.values()}
    assert tasks == {"sms.sweep", "sms.poll_receipts", "sms.rebuild_stats"}
    assert {entry["options"]["queue"] for entry in schedule.values()} <= set(queues.ALL)
    consumed = {queue.name for queue in celery.conf.task_queues}
    assert consumed == set(queues.ALL)


def test_deliver_task_runs_the_dispatch(sms_db, sms_tenant, template, configure):
    from sms_service.accepting import sending

    tenant, _ = sms_tenant
    configure(PROVIDERS="sandbox")
    ids = sending.send(sms_db, tenant.id, template.id, ["13800138000"], {"code": "1", "minutes": "5"})[
        "message_ids"
    ]
    assert tasks.deliver.run(ids)["submitted"] == 1
    assert tasks.sweep.run()["republished"] == 0
