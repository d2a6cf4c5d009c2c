"""Publishing follow-up work to the broker after the database commit; the rows, not the broker, are the truth.

A publish that fails (broker down) is logged and swallowed: the row stays pending and the beat sweep
(``reconciliation.sweep_stuck_work``) publishes it again. Tasks are named, not imported, so domain modules
never depend on ``tasks.py``.
"""

from __future__ import annotations

import logging

from payment_service import queues
from payment_service.extensions import celery

logger = logging.getLogger(__name__)

FORWARD_TASK = "payment.forward_result"
PROFIT_SHARING_TASK = "payment.profit_sharing"


def publish_forward(order_id: str, countdown: float = 0) -> bool:
    return _publish(FORWARD_TASK, order_id, queues.NOTIFY, countdown)


def publish_profit_sharing(order_id: str, countdown: float = 0) -> bool:
    return _publish(PROFIT_SHARING_TASK, order_id, queues.PROFIT_SHARING, countdown)


def _publish(task: str, order_id: str, queue: str, countdown: float) -> bool:
    try:
        celery.send_task(task, args=[order_id], queue=queue, countdown=countdown or None)
    except Exception as exc:  # any broker failure: the sweep publishes the pending row again
        logger.warning(
            "broker unavailable (%s): %s of %s waits for the sweep", type(exc).__name__, task, order_id
        )
        return False
    return True
