"""Dispatch: ``queued → sending → submitted | failed`` through the providers, in failover order.

A delivery task claims its messages (and, up to one upstream call's worth, other queued messages of the same
tenant and template) with one guarded UPDATE, so the upstream gets batches instead of one call per message
and a duplicate task finds nothing left to claim. Each provider gets a few quick attempts on timeouts, 5xx
and throttling before the next one is tried; a provider that keeps failing is skipped for a while (circuit
breaker). When the upstream may have accepted a call that never answered, nothing is resent: the messages
wait for a receipt or for reconciliation through the upstream's query API. Messages sent with a test key
never reach a provider: the simulated delivery takes them (``delivery.simulated``).
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.transactions import atomic
from sms_service.delivery import outbox, simulated
from sms_service.delivery.circuit_breaker import Breaker, build_breaker
from sms_service.delivery.receipts import apply_held
from sms_service.delivery.routing import failover_order
from sms_service.delivery.transitions import finish, submit
from sms_service.models import FAILED, QUEUED, SENDING, Message, Template
from sms_service.providers import (
    OutcomeUnknownError,
    OutgoingSms,
    PermanentProviderError,
    RetryableProviderError,
    SendOutcome,
    SmsProvider,
    build_providers,
)

logger = logging.getLogger(__name__)

NO_PROVIDER = "NO_PROVIDER"
ATTEMPTS_EXHAUSTED = "DISPATCH_ATTEMPTS_EXHAUSTED"


class DispatchDeferred(Exception):
    """No provider could take some messages now; they are queued again and the task retries later."""


def providers() -> list[SmsProvider]:
    """The configured providers in failover order, made once per process."""
    built = current_app.extensions.get("sms_providers")
    if built is None:
        built = make_providers(current_app.config)
        current_app.extensions["sms_providers"] = built
    return built


def make_providers(config) -> list[SmsProvider]:
    prefixed = {f"SMS_{name}": value for name, value in config.items() if isinstance(name, str)}
    return build_providers(config["PROVIDER_NAMES"], prefixed)


def breaker() -> Breaker:
    """The providers' circuit breaker, made once per process: shared by the workers through Redis if set."""
    circuit = current_app.extensions.get("sms_circuit_breaker")
    if circuit is None:
        config = current_app.config
        circuit = build_breaker(
            config["CIRCUIT_FAILURE_THRESHOLD"],
            config["CIRCUIT_OPEN_SECONDS"],
            # A probe that has not answered by then is given up (its worker may be gone): the next one goes.
            probe_seconds=max(config["CIRCUIT_OPEN_SECONDS"], config["PROVIDER_TIMEOUT_SECONDS"]),
            redis_url=config.get("REDIS_URL") or "",
            key_prefix=config["REDIS_KEY_PREFIX"],
        )
        current_app.extensions["sms_circuit_breaker"] = circuit
    return circuit


def provider_named(name: str | None) -> SmsProvider | None:
    return next((provider for provider in providers() if provider.name == name), None)


@dataclass
class DispatchSummary:
    """What one delivery task did, for its logs and tests."""

    submitted: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: list[str] = field(default_factory=list)


def deliver(session: Session, message_ids: list[str]) -> DispatchSummary:
    """Claim and send; raises :class:`DispatchDeferred` when messages had to be queued again."""
    report = DispatchSummary()
    claimed = claim(session, message_ids, current_app.config["DISPATCH_BATCH_SIZE"])
    tests = simulated.deliver(session, [message for message in claimed if message.test])
    report.submitted, report.failed, callbacks = tests.submitted, tests.failed, tests.callbacks
    groups: dict[tuple[str, str], list[Message]] = defaultdict(list)
    for message in claimed:
        if not message.test:
            groups[(message.tenant_id, message.template_id)].append(message)
    for messages in groups.values():
        template = session.get(Template, messages[0].template_id)
        _send_group(session, template, messages, report, callbacks)
    _publish_callbacks(callbacks)
    if report.deferred:
        raise DispatchDeferred(f"{len(report.deferred)} message(s) queued again")
    return report


def claim(session: Session, message_ids: list[str], limit: int) -> list[Message]:
    """``queued → sending`` for the given messages plus queued siblings (same tenant, template and kind: live
    or test)."""
    # Committed before any upstream call: a duplicate task finds nothing left, a crash leaves them sending.
    with atomic(session):
        own = session.execute(
            select(Message.id, Message.tenant_id, Message.template_id, Message.test)
            .where(Message.id.in_(message_ids), Message.status == QUEUED)
            .with_for_update(skip_locked=True)
        ).all()
        ids = [row.id for row in own]
        if own and len(ids) < limit:
            ids += session.scalars(
                select(Message.id)
                .where(
                    Message.tenant_id == own[0].tenant_id,
                    Message.template_id == own[0].template_id,
                    Message.test == own[0].test,
                    Message.status == QUEUED,
                    Message.id.not_in(ids),
                )
                .order_by(Message.created_at)
                .limit(limit - len(ids))
                .with_for_update(skip_locked=True)
            ).all()
        if not ids:
            return []
        return list(
            session.scalars(
                update(Message)
                .where(Message.id.in_(ids), Message.status == QUEUED)
                .values(status=SENDING, attempts=Message.attempts + 1, provider=None, updated_at=utcnow())
                .returning(Message)
                .execution_options(synchronize_session=False, populate_existing=True)
            ).all()
        )


def _send_group(
    session: Session,
    template: Template,
    messages: list[Message],
    report: DispatchSummary,
    callbacks: list[str],
) -> None:
    """Send one template's messages, provider after provider.

    Each step is a transaction of its own, so that no transaction is open while an upstream is called and
    what one upstream answered is on record before the next is asked.
    """
    config = current_app.config
    exhausted = [m for m in messages if m.attempts > config["DISPATCH_MAX_ATTEMPTS"]]
    if exhausted:
        # Its own transaction: failed for good, whatever becomes of the others.
        with atomic(session):
            callbacks += _fail(session, exhausted, ATTEMPTS_EXHAUSTED, "多次尝试后仍无可用渠道", report)
        messages = [m for m in messages if m.attempts <= config["DISPATCH_MAX_ATTEMPTS"]]
    pending = {m.id: m for m in messages}
    last_permanent: PermanentProviderError | None = None
    could_send = retry_later = False
    circuit = breaker()
    for provider in failover_order(providers(), config.get("ROUTING_WEIGHTS")):
        if not pending:
            break
        code = _template_code(template, provider.name)
        if code is None:
            continue
        could_send = True
        if not circuit.allows(provider.name):
            logger.info("provider %s skipped: circuit open", provider.name)
            retry_later = True
            continue
        outgoing = [_outgoing(message, template, code) for message in pending.values()]
        # Committed before the call: if this process dies mid-call, reconciliation asks this upstream.
        with atomic(session):
            _mark_provider(session, provider.call_references(outgoing), provider.name)
        try:
            outcomes = _send_with_retries(provider, outgoing, circuit)
        except OutcomeUnknownError as exc:
            # Committed at once: the upstream may have the messages, so nothing may send them again.
            with atomic(session):
                _mark_unknown(session, list(pending), provider.name, exc)
            report.unknown += len(pending)
            return
        except RetryableProviderError:
            retry_later = True
            continue
        except PermanentProviderError as exc:
            last_permanent = exc
            continue
        # Committed before the next provider is called: what this one accepted is never sent again.
        with atomic(session):
            callbacks += _apply_outcomes(session, provider.name, outcomes, pending, report)
        retry_later = retry_later or bool(pending)
    if not pending:
        return
    # The messages no provider took, failed or queued again in one last transaction.
    with atomic(session):
        if not could_send:
            callbacks += _fail(
                session, list(pending.values()), NO_PROVIDER, "模板未配置任何已启用渠道的模板编号", report
            )
        elif last_permanent is not None and not retry_later:
            # Every provider that could take the messages refused them for good: the upstream's reason.
            callbacks += _fail(
                session, list(pending.values()), last_permanent.code, last_permanent.message, report
            )
        else:
            _requeue(session, list(pending))
            report.deferred += list(pending)


def _send_with_retries(provider: SmsProvider, outgoing: list[OutgoingSms], circuit: Breaker):
    attempts = max(1, current_app.config["PROVIDER_ATTEMPTS"])
    delay = current_app.config["PROVIDER_RETRY_DELAY_SECONDS"]
    for attempt in range(attempts):
        try:
            outcomes = provider.send(outgoing)
        except OutcomeUnknownError:
            circuit.record_failure(provider.name)
            raise
        except RetryableProviderError as exc:
            circuit.record_failure(provider.name)
            logger.warning(
                "provider %s failed (%s), attempt %d/%d", provider.name, exc.code, attempt + 1, attempts
            )
            if attempt + 1 == attempts or not circuit.allows(provider.name):
                raise
            time.sleep(delay * (2**attempt) * random.uniform(0.8, 1.2))
            continue
        except PermanentProviderError as exc:
            # The upstream answered: it is up (and a probe must report back, or its slot stays taken).
            circuit.record_success(provider.name)
            logger.warning("provider %s refused the call: %s %s", provider.name, exc.code, exc.message)
            raise
        circuit.record_success(provider.name)
        return outcomes
    raise AssertionError("unreachable")  # the loop returns or raises


def _apply_outcomes(
    session: Session,
    provider: str,
    outcomes: list[SendOutcome],
    pending: dict[str, Message],
    report: DispatchSummary,
) -> list[str]:
    accepted: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
    callbacks: list[str] = []
    unknown: list[str] = []
    for outcome in outcomes:
        if outcome.accepted:
            accepted[(outcome.req_id, outcome.biz_id)].append(outcome.message_id)
        elif outcome.outcome_unknown:
            unknown.append(outcome.message_id)
        elif outcome.retryable:
            continue  # stays pending for the next provider
        else:
            moved = finish(
                session,
                [outcome.message_id],
                FAILED,
                from_statuses=(SENDING,),
                error_code=outcome.error_code,
                error_message=outcome.error_message,
                provider=provider,
                req_id=outcome.req_id,
            )
            callbacks += [message_id for message_id, has_callback in moved if has_callback]
            report.failed += len(moved)
        pending.pop(outcome.message_id, None)
    for (req_id, biz_id), ids in accepted.items():
        report.submitted += submit(session, ids, provider, req_id, biz_id)
    if accepted:
        # Receipts that came before this answer (held: no biz_id to match them by then).
        callbacks += apply_held(session, provider, [i for ids in accepted.values() for i in ids])
    if unknown:
        _mark_unknown(session, unknown, provider, None)
        report.unknown += len(unknown)
    return callbacks


def _fail(
    session: Session, messages: list[Message], code: str, text: str, report: DispatchSummary
) -> list[str]:
    moved = finish(
        session,
        [m.id for m in messages],
        FAILED,
        from_statuses=(SENDING,),
        error_code=code,
        error_message=text,
    )
    report.failed += len(moved)
    logger.warning("%d message(s) failed: %s", len(moved), code)
    return [message_id for message_id, has_callback in moved if has_callback]


def _mark_provider(session: Session, references: dict[str, str], provider: str) -> None:
    """Record which upstream is about to be called, and each message's call reference (message id → ref).

    If this process dies mid-call, reconciliation asks that upstream, matching by the reference. One UPDATE
    per distinct reference; the caller commits them together before the call.
    """
    by_reference: dict[str, list[str]] = defaultdict(list)
    for message_id, reference in references.items():
        by_reference[reference].append(message_id)
    now = utcnow()
    for reference, ids in by_reference.items():
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == SENDING)
            .values(provider=provider, call_ref=reference, sent_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _mark_unknown(session: Session, ids: list[str], provider: str, exc: Exception | None) -> None:
    logger.warning(
        "provider %s: outcome of %d message(s) unknown (%s); reconciling instead of resending",
        provider,
        len(ids),
        type(exc).__name__ if exc else "partial answer",
    )
    session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.status == SENDING)
        .values(provider=provider, outcome_unknown=True, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _requeue(session: Session, ids: list[str]) -> None:
    session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.status == SENDING)
        .values(status=QUEUED, provider=None, call_ref=None, sent_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    logger.warning("%d message(s) queued again: no provider could take them now", len(ids))


def _template_code(template: Template, provider: str) -> str | None:
    codes = template.provider_codes or {}
    if provider == "sandbox":
        return codes.get("sandbox") or template.id
    return codes.get(provider) or None


def _outgoing(message: Message, template: Template, code: str) -> OutgoingSms:
    return OutgoingSms(
        message_id=message.id,
        mobile=message.mobile,
        sign_name=template.sign_name,
        template_code=code,
        params={name: str(message.variables.get(name, "")) for name in template.variables},
    )


def _publish_callbacks(message_ids: list[str]) -> None:
    for message_id in message_ids:
        outbox.publish_callback(message_id, 1)
