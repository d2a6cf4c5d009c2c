"""Celery tasks of the SMS service: thin, they take ids and call the domain."""

from __future__ import annotations

import logging

from sms_service import queues
from sms_service.accepting import retention
from sms_service.delivery import callbacks, dispatch, reconciliation, sweeps
from sms_service.extensions import celery, db
from sms_service.stats import facts

logger = logging.getLogger(__name__)


@celery.task(
    name="sms.deliver",
    bind=True,
    queue=queues.SEND,
    autoretry_for=(dispatch.DispatchDeferred,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    # The message rows count their own attempts (SMS_DISPATCH_MAX_ATTEMPTS) and are failed when they run out.
    max_retries=None,
)
def deliver(self, message_ids: list[str]) -> dict:
    report = dispatch.deliver(db.session, message_ids)
    return report.__dict__


@celery.task(name="sms.callback", bind=True, queue=queues.CALLBACKS, max_retries=None)
def send_callback(self, message_id: str, attempt: int) -> str | None:
    result = callbacks.deliver_callback(db.session, message_id, attempt)
    if result is not None and result.outcome == callbacks.RETRY:
        raise self.retry(args=[message_id, attempt + 1], countdown=result.next_delay)
    return result.outcome if result else None


@celery.task(name="sms.sweep", queue=queues.PERIODIC)
def sweep() -> dict:
    return {**sweeps.sweep(db.session), "purged": retention.purge_expired(db.session)}


@celery.task(name="sms.poll_receipts", queue=queues.RECEIPTS)
def poll_receipts() -> dict:
    return reconciliation.poll(db.session)


@celery.task(name="sms.rebuild_stats", queue=queues.PERIODIC)
def rebuild_stats() -> dict:
    return facts.rebuild_recent(db.session)
