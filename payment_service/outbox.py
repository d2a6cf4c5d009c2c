"""Publishing follow-up work to the broker after the database commit; the rows, not the broker, are the truth.

A publish that fails (broker down) is logged and swallowed: the row stays pending and the beat sweep
(``reconciliation.sweep_stuck_work``) publishes it again. Tasks are named, not imported, so domain modules
never depend on ``tasks.py``.
"""

from __future__ import annotations

import logging

from flask import current_app

from payment_service import queues
from payment_service.extensions import celery
from shared.publishing import CoalescingPublisher
from shared.tasks import publish_ids

logger = logging.getLogger(__name__)

FORWARD_TASK = "payment.forward_result"
FORWARD_MANY_TASK = "payment.forward_many"
#: Order ids per ``forward_many`` task: the worker publishes one forward task for each.
FORWARD_MANY_SIZE = 100
PROFIT_SHARING_TASK = "payment.profit_sharing"
REFUND_TASK = "payment.refund"
REFUND_FORWARD_TASK = "payment.forward_refund"


def publish_forward(order_id: str, countdown: float = 0) -> bool:
    return _publish(FORWARD_TASK, order_id, queues.NOTIFY, countdown)


def forward_soon(order_id: str) -> None:
    """Enqueue the forward of a just-paid order: with other requests' within ``PAYMENT_PUBLISH_LINGER_MS``.

    A notification's handler publishing its own forward task spent a quarter of its CPU on it; several
    requests' orders go out in one ``forward_many`` task, which a worker turns into one forward task each
    (so a slow business endpoint holds up only its own orders, each retried on its own schedule).
    """
    publisher = current_app.extensions.get("payment_forward_publisher")
    if publisher is None:
        linger = current_app.config["PUBLISH_LINGER_MS"] / 1000
        publisher = CoalescingPublisher(linger, publish_forwards, name="forward-publisher")
        current_app.extensions["payment_forward_publisher"] = publisher
    publisher.submit([order_id])


def publish_forwards(order_ids: list[str]) -> bool:
    """One order: its forward task; several: ``forward_many`` tasks of up to ``FORWARD_MANY_SIZE``."""
    if len(order_ids) == 1:
        return publish_forward(order_ids[0])
    for start in range(0, len(order_ids), FORWARD_MANY_SIZE):
        group = order_ids[start : start + FORWARD_MANY_SIZE]
        try:
            publish_ids(celery, FORWARD_MANY_TASK, group, queues.NOTIFY)
        except Exception as exc:  # the forward rows stay pending: the sweep publishes them again
            logger.warning(
                "broker unavailable (%s): the forwards of %d order(s) wait for the sweep",
                type(exc).__name__,
                len(order_ids) - start,
            )
            return False
    return True


def publish_profit_sharing(order_id: str, countdown: float = 0) -> bool:
    return _publish(PROFIT_SHARING_TASK, order_id, queues.PROFIT_SHARING, countdown)


def publish_refund(refund_id: str, countdown: float = 0) -> bool:
    """Advance a refund (returns, the refund call, a query) ``countdown`` seconds from now."""
    return _publish(REFUND_TASK, refund_id, queues.REFUNDS, countdown)


def publish_refund_forward(refund_id: str, countdown: float = 0) -> bool:
    return _publish(REFUND_FORWARD_TASK, refund_id, queues.NOTIFY, countdown)


def _publish(task: str, order_id: str, queue: str, countdown: float) -> bool:
    try:
        celery.send_task(task, args=[order_id], queue=queue, countdown=countdown or None)
    except Exception as exc:  # any broker failure: the sweep publishes the pending row again
        logger.warning(
            "broker unavailable (%s): %s of %s waits for the sweep", type(exc).__name__, task, order_id
        )
        return False
    return True
