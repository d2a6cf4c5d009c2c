"""``Idempotency-Key``: a retried request with the same key gets the first answer and sends nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shared.envelope import BadRequestError
from sms_service.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequestError(
            f"Idempotency-Key 长度须为 1–{MAX_KEY_LENGTH} 个字符",
            data={"errors": {"Idempotency-Key": ["长度不合法"]}},
        )
    return key


def first_answer(session: Session, tenant_id: str, endpoint: str, key: str) -> dict[str, Any] | None:
    return session.scalar(
        select(IdempotencyRecord.response).where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.endpoint == endpoint,
            IdempotencyRecord.key == key,
        )
    )


def remember_answer(
    session: Session, tenant_id: str, endpoint: str, key: str, answer: dict[str, Any]
) -> None:
    """Insert first, in the request's transaction: a concurrent twin waits on the key, then fails on it."""
    session.execute(
        insert(IdempotencyRecord).values(tenant_id=tenant_id, endpoint=endpoint, key=key, response=answer)
    )
