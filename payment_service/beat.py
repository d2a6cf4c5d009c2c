"""The periodic work celery beat runs for the payment service (``create_app`` hands it to ``bind_celery``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payment_service import queues

CLOSE_EXPIRED_TASK = "payment.close_expired_orders"
QUERY_PENDING_TASK = "payment.query_pending_orders"
SWEEP_TASK = "payment.sweep_stuck_work"
# Refunds processing longer than PAYMENT_REFUND_QUERY_AFTER_SECONDS, and refund forwards left behind.
QUERY_REFUNDS_TASK = "payment.query_processing_refunds"
PERIODIC_TASKS = (CLOSE_EXPIRED_TASK, QUERY_PENDING_TASK, SWEEP_TASK, QUERY_REFUNDS_TASK)


def beat_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every periodic task once per ``PAYMENT_RECONCILE_INTERVAL_SECONDS``; a run not started before the
    next one is due expires, so a backlog never piles up."""
    interval = float(settings["RECONCILE_INTERVAL_SECONDS"])
    return {
        "beat_schedule": {
            name.removeprefix("payment."): {
                "task": name,
                "schedule": interval,
                "options": {"queue": queues.PERIODIC, "expires": interval},
            }
            for name in PERIODIC_TASKS
        }
    }
