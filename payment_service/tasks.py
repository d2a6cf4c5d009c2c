"""Celery tasks of the payment service: thin, they take ids and call the domain.

Forwarding and profit sharing decide their own next attempt (the row keeps the count; forwards follow
``shared.webhooks.schedule``, profit-sharing calls ``retry_schedule``); the task only re-schedules itself
for it. A refund's step publishes its own follow-up (``refunds.sending``).
A database hiccup is retried by Celery's own backoff.
"""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from payment_service import queues
from payment_service.beat import CLOSE_EXPIRED_TASK, QUERY_PENDING_TASK, QUERY_REFUNDS_TASK, SWEEP_TASK
from payment_service.extensions import celery, db
from payment_service.orders.forwarding import deliver_forward
from payment_service.orders.profit_sharing import run_profit_sharing
from payment_service.orders.reconciliation import close_expired_orders, query_pending_orders, sweep_stuck_work
from payment_service.outbox import (
    FORWARD_MANY_TASK,
    FORWARD_TASK,
    PROFIT_SHARING_TASK,
    REFUND_FORWARD_TASK,
    REFUND_TASK,
    publish_forward,
)
from payment_service.refunds.forwarding import deliver_refund_forward
from payment_service.refunds.reconciliation import query_processing_refunds, sweep_refund_forwards
from payment_service.refunds.sending import advance_refund

# The row caps its own attempts, so the task allows any number of scheduled retries (max_retries None);
# a database error is retried by Celery's backoff at most 8 times, then the sweep publishes the row again.
_DATABASE_RETRIES = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "retry_kwargs": {"max_retries": 8},
    "max_retries": None,
}


@celery.task(name=FORWARD_TASK, bind=True, queue=queues.NOTIFY, **_DATABASE_RETRIES)
def forward_result(self, transaction_id: str) -> None:
    """POST the paid order's result to its notify_url; retried on the row's schedule until 2xx or given up."""
    delay = deliver_forward(db.session, transaction_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@celery.task(name=FORWARD_MANY_TASK, queue=queues.NOTIFY)
def forward_many(order_ids: list[str]) -> int:
    """Publish one forward task per order (the API process sends several orders in one task)."""
    return sum(publish_forward(order_id) for order_id in order_ids)


@celery.task(name=PROFIT_SHARING_TASK, bind=True, queue=queues.PROFIT_SHARING, **_DATABASE_RETRIES)
def profit_sharing(self, transaction_id: str) -> None:
    """Add receivers, place the split, poll it until WeChat finishes it (or the attempts run out)."""
    delay = run_profit_sharing(db.session, transaction_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@celery.task(name=CLOSE_EXPIRED_TASK, queue=queues.PERIODIC)
def close_expired() -> int:
    return close_expired_orders(db.session)


@celery.task(name=QUERY_PENDING_TASK, queue=queues.PERIODIC)
def query_pending() -> int:
    return query_pending_orders(db.session)


@celery.task(name=SWEEP_TASK, queue=queues.PERIODIC)
def sweep() -> int:
    return sweep_stuck_work(db.session)


@celery.task(name=REFUND_TASK, queue=queues.REFUNDS, **_DATABASE_RETRIES)
def refund(refund_id: str) -> None:
    """Take a refund's next step (returns, the refund call, a query); the step publishes any follow-up."""
    advance_refund(db.session, refund_id)


@celery.task(name=REFUND_FORWARD_TASK, bind=True, queue=queues.NOTIFY, **_DATABASE_RETRIES)
def forward_refund(self, refund_id: str) -> None:
    """POST payment.refund to the refund's notify_url; retried on the row's schedule."""
    delay = deliver_refund_forward(db.session, refund_id)
    if delay is not None:
        raise self.retry(countdown=delay)


@celery.task(name=QUERY_REFUNDS_TASK, queue=queues.PERIODIC)
def query_refunds() -> int:
    return query_processing_refunds(db.session) + sweep_refund_forwards(db.session)
