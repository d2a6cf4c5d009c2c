"""Publish work to the broker after the database commit; the rows, not the broker, are the source of truth.

A publish that fails (broker down) is logged and swallowed: the row stays ``queued`` (or its callback stays
``pending``) and the beat sweep publishes it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import current_app

from shared.publishing import CoalescingPublisher
from shared.tasks import publish_ids
from sms_service import queues
from sms_service.extensions import celery

logger = logging.getLogger(__name__)

DELIVER_TASK = "sms.deliver"
CALLBACK_TASK = "sms.callback"


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def publish_deliveries(message_ids: list[str], size: int | None = None) -> bool:
    """Enqueue delivery of messages, in groups the upstream can take at once, now."""
    size = size or current_app.config["DISPATCH_BATCH_SIZE"]
    for group in chunks(message_ids, size):
        try:
            publish_ids(celery, DELIVER_TASK, group, queues.SEND)
        except Exception as exc:  # any broker failure: the sweep re-publishes queued rows
            logger.warning(
                "broker unavailable (%s): %d message(s) stay queued for the sweep",
                type(exc).__name__,
                len(message_ids),
            )
            return False
    return True


def deliver_soon(message_ids: list[str]) -> None:
    """Enqueue delivery of just-accepted messages: with other requests' within ``SMS_PUBLISH_LINGER_MS``."""
    publisher = current_app.extensions.get("sms_delivery_publisher")
    if publisher is None:
        config = current_app.config
        publisher = CoalescingPublisher(
            config["PUBLISH_LINGER_MS"] / 1000,
            lambda ids: publish_deliveries(ids, config["DISPATCH_BATCH_SIZE"]),
            name="delivery-publisher",
        )
        current_app.extensions["sms_delivery_publisher"] = publisher
    publisher.submit(message_ids)


def publish_callback(message_id: str, attempt: int, countdown: float = 0) -> bool:
    try:
        celery.send_task(
            CALLBACK_TASK, args=[message_id, attempt], queue=queues.CALLBACKS, countdown=countdown or None
        )
    except Exception as exc:
        logger.warning(
            "broker unavailable (%s): callback of %s stays pending for the sweep",
            type(exc).__name__,
            message_id,
        )
        return False
    return True
