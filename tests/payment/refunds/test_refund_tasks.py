"""Refund tasks and settings: named, on queues a worker consumes, beat asks on the reconciliation schedule."""

from __future__ import annotations

import pytest

from payment_service import queues, tasks
from payment_service.beat import PERIODIC_TASKS, QUERY_REFUNDS_TASK
from payment_service.extensions import celery
from payment_service.outbox import REFUND_FORWARD_TASK, REFUND_TASK
from payment_service.settings import load_config
from shared.settings import ConfigurationError


def test_refund_tasks_are_registered_on_consumed_queues(payment_app):
    assert celery.tasks[REFUND_TASK].queue == queues.REFUNDS
    assert celery.tasks[REFUND_FORWARD_TASK].queue == queues.NOTIFY
    assert celery.tasks[QUERY_REFUNDS_TASK].queue == queues.PERIODIC
    assert {queues.REFUNDS, queues.NOTIFY, queues.PERIODIC} <= set(queues.ALL)
    assert QUERY_REFUNDS_TASK in PERIODIC_TASKS
    assert tasks.forward_refund.max_retries is None


def test_refund_settings_have_their_defaults_and_refuse_negatives():
    settings = load_config({"ENV": "testing"})
    assert (
        settings["REFUND_QUERY_AFTER_SECONDS"],
        settings["REFUND_RETRY_SECONDS"],
        settings["REFUND_RESEND_AFTER_SECONDS"],
    ) == (300, 60.0, 10.0)
    with pytest.raises(ConfigurationError, match="PAYMENT_REFUND_RETRY_SECONDS"):
        load_config({"ENV": "testing", "REFUND_RETRY_SECONDS": -1})
