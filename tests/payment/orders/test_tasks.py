"""Task names, queues and the beat schedule: every queue the code publishes to is one a worker consumes."""

from __future__ import annotations

from payment_service import queues, tasks
from payment_service.beat import PERIODIC_TASKS
from payment_service.extensions import celery
from payment_service.outbox import FORWARD_TASK, PROFIT_SHARING_TASK


def test_tasks_are_registered_under_their_names_on_known_queues(payment_app):
    expected = {
        FORWARD_TASK: queues.NOTIFY,
        PROFIT_SHARING_TASK: queues.PROFIT_SHARING,
        **dict.fromkeys(PERIODIC_TASKS, queues.PERIODIC),
    }
    for name, queue in expected.items():
        assert celery.tasks[name].queue == queue
        assert queue in queues.ALL
    assert tasks.forward_result.name == FORWARD_TASK


def test_beat_runs_each_periodic_task_on_the_periodic_queue(payment_app):
    schedule = celery.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == set(PERIODIC_TASKS)
    for entry in schedule.values():
        assert entry["schedule"] == payment_app.config["RECONCILE_INTERVAL_SECONDS"]
        assert entry["options"]["queue"] == queues.PERIODIC


def test_a_task_retries_on_the_rows_schedule_without_a_retry_cap(payment_app):
    assert tasks.forward_result.max_retries is None and tasks.profit_sharing.max_retries is None
    assert tasks.forward_result.acks_late or celery.conf.task_acks_late
