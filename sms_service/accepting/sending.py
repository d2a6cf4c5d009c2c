"""Accepting a send or batch-send: validate, check limits, store the messages as ``queued``, then publish.

Everything a request changes happens in one transaction (idempotency key, messages, limit counters), so a
request over a limit, or a replay of an ``Idempotency-Key``, stores and sends nothing. A test key's request is
checked the same way but stored as test messages, which count against no limit (nothing is sent or billed) and
whose idempotency keys are apart from the live ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.driver import insert_alone, insert_rows
from shared.envelope import BadRequestError
from shared.ids import new_id
from shared.transactions import atomic
from shared.webhooks import UrlRefused, check_public_url
from sms_service.accepting import idempotency
from sms_service.accepting.limits import DatabaseCounters, limit_exceeded, limit_store, plan_counters
from sms_service.accepting.opt_outs import OPTED_OUT, OPTED_OUT_MESSAGE, opted_out
from sms_service.accepting.segments import billed_segments, rendered
from sms_service.accepting.send_profiles import SendProfile, sendable_profile
from sms_service.accepting.templates import check_variables
from sms_service.delivery import outbox
from sms_service.metrics import count_messages
from sms_service.mobiles import mask_mobile, normalise_mobile
from sms_service.models import CALLBACK_PENDING, CALLBACK_WAITING, FAILED, MARKETING, QUEUED, Batch, Message

logger = logging.getLogger(__name__)

SEND = "send"
BATCH_SEND = "batch-send"


@dataclass(frozen=True)
class Recipient:
    mobile: str  # normalised
    variables: dict[str, str]  # the template's variables, checked


def send(
    session: Session,
    tenant_id: str,
    template_id: str,
    mobiles: list[str],
    variables: dict[str, Any],
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    *,
    test: bool = False,
) -> dict[str, Any]:
    """One message per mobile with the same variables; the answer lists their ids in request order."""
    key = idempotency.check_key(idempotency_key)
    endpoint = _endpoint(SEND, test)
    if key and (answer := idempotency.first_answer(session, tenant_id, endpoint, key)) is not None:
        return answer
    numbers = normalise_mobiles(mobiles, current_app.config["MAX_MOBILES_PER_SEND"])
    profile = sendable_profile(session, tenant_id, template_id)
    values = check_variables(profile, variables or {}, current_app.config["MAX_VARIABLE_LENGTH"])
    check_callback(callback_url)
    recipients = [Recipient(mobile, values) for mobile in numbers]
    ids = [new_id("MSG") for _ in recipients]
    answer = {"message_id": ids[0], "message_ids": ids, "status": QUEUED}
    return _accept(session, profile, recipients, ids, callback_url, None, (endpoint, key), answer, test)


def batch_send(
    session: Session,
    tenant_id: str,
    template_id: str,
    items: list[dict[str, Any]],
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    *,
    test: bool = False,
) -> dict[str, Any]:
    """One message per item, each with its own variables, grouped under a batch id."""
    key = idempotency.check_key(idempotency_key)
    endpoint = _endpoint(BATCH_SEND, test)
    if key and (answer := idempotency.first_answer(session, tenant_id, endpoint, key)) is not None:
        return answer
    limit = current_app.config["MAX_BATCH_ITEMS"]
    if not 1 <= len(items) <= limit:
        raise BadRequestError(
            f"items 数量须为 1–{limit} 条", data={"errors": {"items": [f"数量须为 1–{limit} 条"]}}
        )
    numbers = normalise_mobiles([item["mobile"] for item in items], limit, field="items")
    profile = sendable_profile(session, tenant_id, template_id)
    max_length = current_app.config["MAX_VARIABLE_LENGTH"]
    recipients, errors = [], {}
    for index, (mobile, item) in enumerate(zip(numbers, items, strict=True)):
        try:
            recipients.append(
                Recipient(mobile, check_variables(profile, item.get("variables") or {}, max_length))
            )
        except BadRequestError as exc:
            errors[str(index)] = exc.data["errors"]
    if errors:
        first = next(iter(errors))
        raise BadRequestError(
            f"第 {int(first) + 1} 条的模板变量不合法: {', '.join(_names(errors[first]['variables']))}",
            data={"errors": {"items": errors}},
        )
    check_callback(callback_url)
    ids = [new_id("MSG") for _ in recipients]
    batch_id = new_id("BATCH")
    answer = {"batch_id": batch_id, "total": len(ids), "status": QUEUED}
    return _accept(session, profile, recipients, ids, callback_url, batch_id, (endpoint, key), answer, test)


def normalise_mobiles(raw: list[str], limit: int, field: str = "mobiles") -> list[str]:
    """Validate and normalise; 400 on a bad count, a bad number or a number given twice."""
    if not 1 <= len(raw) <= limit:
        raise BadRequestError(
            f"手机号数量须为 1–{limit} 个", data={"errors": {field: [f"数量须为 1–{limit} 个"]}}
        )
    numbers: list[str] = []
    invalid: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    duplicates: dict[str, list[str]] = {}
    for index, value in enumerate(raw):
        number = normalise_mobile(value) if isinstance(value, str) else None
        if number is None:
            invalid[str(index)] = ["手机号格式不正确 (须为中国大陆手机号)"]
        elif number in seen:
            duplicates[str(index)] = [f"手机号重复: {mask_mobile(number)} (与第 {seen[number] + 1} 个相同)"]
        else:
            seen[number] = index
        numbers.append(number or "")
    if invalid:
        raise BadRequestError(
            f"手机号格式不正确: 第 {', '.join(str(int(i) + 1) for i in invalid)} 个",
            data={"errors": {field: _nest(field, invalid)}},
        )
    if duplicates:
        shown = sorted({mask_mobile(numbers[int(i)]) for i in duplicates})
        raise BadRequestError(
            f"同一请求中手机号重复: {', '.join(shown)}",
            data={"errors": {field: _nest(field, duplicates)}, "duplicates": shown},
        )
    return numbers


def check_callback(url: str | None) -> None:
    if url is None:
        return
    try:
        check_public_url(url, current_app.config["CALLBACK_ALLOW_PRIVATE"])
    except UrlRefused as exc:
        raise BadRequestError(str(exc), data={"errors": {"callback_url": [str(exc)]}}) from None


def _accept(
    session: Session,
    profile: SendProfile,
    recipients: list[Recipient],
    ids: list[str],
    callback_url: str | None,
    batch_id: str | None,
    idempotency_scope: tuple[str, str | None],
    answer: dict[str, Any],
    test: bool,
) -> dict[str, Any]:
    now = utcnow()
    store = limit_store()
    blocked = _opted_out(session, profile, recipients)
    counted = [] if test else [r.mobile for r in recipients if r.mobile not in blocked]
    counters = plan_counters(profile, counted, now) if counted else []
    in_database = isinstance(store, DatabaseCounters)
    endpoint, key = idempotency_scope
    if (
        counters
        and not in_database
        and (hit := store.consume(session, profile.tenant_id, counters)) is not None
    ):
        raise limit_exceeded(hit, now)
    # Rows go in through the driver (shared.driver): the ORM's bulk path cost more CPU than the round trip.
    try:
        rows = _message_rows(profile, recipients, ids, callback_url, batch_id, now, blocked, test)
        if key or batch_id or in_database:
            # One transaction: the key, the batch, the messages and the counters stored together, or none.
            with atomic(session):
                if key:
                    idempotency.remember_answer(session, profile.tenant_id, endpoint, key, answer)
                if batch_id:
                    session.execute(
                        insert(Batch.__table__),
                        dict(
                            id=batch_id,
                            tenant_id=profile.tenant_id,
                            template_id=profile.template_id,
                            total=len(ids),
                            created_at=now,
                            test=test,
                        ),
                    )
                insert_rows(session, Message.__table__, rows)
                if (
                    counters
                    and in_database
                    and (hit := store.consume(session, profile.tenant_id, counters)) is not None
                ):
                    raise limit_exceeded(hit, now)
        else:
            # A plain send is one statement, a transaction by itself on the autocommit engine: no BEGIN and
            # COMMIT round trips, and no session made, for the commonest request.
            insert_alone(session, Message.__table__, rows)
    except IntegrityError:
        # The block above rolled back: a concurrent twin's key is committed and its answer can be read.
        if counters and not in_database:
            store.release(profile.tenant_id, counters)
        replayed = idempotency.first_answer(session, profile.tenant_id, endpoint, key) if key else None
        if replayed is None:
            raise
        return replayed
    except BaseException:
        if counters and not in_database:
            store.release(profile.tenant_id, counters)
        raise
    # DEBUG: at INFO this line cost a sixth of a send's CPU, and each message's row already records it.
    logger.debug(
        "accepted %d message(s) of %s for tenant %s: %s",
        len(ids),
        profile.template_id,
        profile.tenant_id,
        ", ".join(mask_mobile(r.mobile) for r in recipients[:3]) + (" …" if len(recipients) > 3 else ""),
    )
    refused = [row["id"] for row in rows if row["status"] == FAILED]
    count_messages(QUEUED, None, len(ids) - len(refused))
    outbox.deliver_soon([row["id"] for row in rows if row["status"] == QUEUED])
    if refused:
        count_messages(FAILED, None, len(refused))
        if callback_url:
            for message_id in refused:
                outbox.publish_callback(message_id, 1)
    return answer


def _opted_out(session: Session, profile: SendProfile, recipients: list[Recipient]) -> set[str]:
    """The mobiles a marketing send must not reach; other categories ignore opt-outs."""
    if profile.category != MARKETING:
        return set()
    return opted_out(session, profile.tenant_id, [r.mobile for r in recipients])


def _endpoint(endpoint: str, test: bool) -> str:
    """The idempotency scope: a test key's keys never replay a live answer, nor the reverse."""
    return f"{endpoint}:test" if test else endpoint


def _message_rows(
    profile, recipients, ids, callback_url, batch_id, now, blocked, test
) -> list[dict[str, Any]]:
    """The messages' rows: queued, or already failed for a mobile that opted out (its callback due now)."""
    rows = [
        {
            "id": message_id,
            "tenant_id": profile.tenant_id,
            "template_id": profile.template_id,
            "batch_id": batch_id,
            "mobile": recipient.mobile,
            "variables": recipient.variables,
            "segments": billed_segments(rendered(profile.sign_name, profile.content, recipient.variables)),
            "callback_url": callback_url,
            "status": QUEUED,
            "attempts": 0,
            "outcome_unknown": False,
            # A microsecond apart: lists show a request's messages in request order.
            "created_at": now + timedelta(microseconds=index),
            "updated_at": now,
            "callback_status": CALLBACK_WAITING if callback_url else None,
            "callback_attempts": 0,
            "test": test,
        }
        for index, (message_id, recipient) in enumerate(zip(ids, recipients, strict=True))
    ]
    if not blocked:
        return rows
    for row in rows:  # COPY takes one set of columns for every row
        row.update(error_code=None, error_message=None, completed_at=None, callback_next_at=None)
        if row["mobile"] in blocked:
            row.update(
                status=FAILED,
                error_code=OPTED_OUT,
                error_message=OPTED_OUT_MESSAGE,
                completed_at=now,
                callback_status=CALLBACK_PENDING if callback_url else None,
                callback_next_at=now if callback_url else None,
            )
    return rows


def _nest(field: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    """Batch items report errors under ``items.<index>.mobile``, sends under ``mobiles.<index>``."""
    if field == "items":
        return {index: {"mobile": messages} for index, messages in errors.items()}
    return errors


def _names(errors: dict[str, Any]) -> list[str]:
    return list(errors)
