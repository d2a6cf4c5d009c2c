"""Publish work to the broker after the database commit; the rows, not the broker, are the source of truth.

A publish that fails (broker down) is logged and swallowed: the row stays ``queued`` (or its callback stays
``pending``) and the beat sweep publishes it again.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from flask import current_app

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
            celery.send_task(DELIVER_TASK, args=[group], queue=queues.SEND)
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
        )
        current_app.extensions["sms_delivery_publisher"] = publisher
    publisher.submit(message_ids)


class CoalescingPublisher:
    """Hands ids to ``publish`` from a background thread, those submitted within ``linger`` seconds together.

    A Celery publish cost an accepted send a quarter of its CPU, as much as storing the message, and the
    dispatcher claims up to a batch of queued siblings anyway: one task for the ids of several requests
    serves them as well. The ids are committed rows before they get here, so nothing is lost with them:
    ids this thread never publishes (the process died, the broker refused) stay ``queued`` and the sweep
    publishes them again. ``linger`` 0 publishes in the caller's thread.
    """

    def __init__(self, linger: float, publish: Callable[[list[str]], bool]) -> None:
        self.linger = linger
        self._publish = publish
        self._pending: list[str] = []
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, ids: list[str]) -> None:
        if self.linger <= 0:
            self._publish(list(ids))
            return
        with self._wakeup:
            if self._pid != os.getpid():  # first use in this process (a fork inherits no running thread)
                self._pid = os.getpid()
                self._pending = []  # a parent's ids are the parent's to publish
                self._thread = threading.Thread(target=self._run, name="delivery-publisher", daemon=True)
                self._thread.start()
                atexit.register(self.flush)
            self._pending.extend(ids)
            self._wakeup.notify()

    def flush(self) -> None:
        """Publish whatever is waiting, now (at exit: a graceful stop leaves nothing to the sweep)."""
        with self._wakeup:
            ids, self._pending = self._pending, []
        if ids:
            self._publish(ids)

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._pending:
                    self._wakeup.wait()
            time.sleep(self.linger)  # the requests arriving meanwhile join this publish
            try:
                self.flush()
            except Exception:  # never let the thread die: the rows wait for the sweep
                logger.exception("publishing accepted messages failed; they stay queued for the sweep")


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
