"""Opt-outs: a tenant's marketing messages never reach a mobile that opted out of them.

Read from the database on every marketing send (no cache), so an opt-out or an opt-in applies to the next
send. Verification and notification templates ignore opt-outs.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import fetch_page, read_alone, utcnow
from shared.envelope import NotFoundError
from shared.transactions import atomic
from sms_service.mobiles import mask_mobile
from sms_service.models import OptOut

API = "api"
OPTED_OUT = "OPTED_OUT"
OPTED_OUT_MESSAGE = "该号码已退订此租户的营销短信"


def opt_out(
    session: Session, tenant_id: str, mobile: str, source: str = API, reason: str | None = None
) -> OptOut:
    """Opt ``mobile`` out; opting out again keeps the first record (its source, reason and time)."""
    with atomic(session):
        add_opt_outs(session, [tenant_id], mobile, source, reason)
        return session.get(OptOut, (tenant_id, mobile), populate_existing=True)


def add_opt_outs(
    session: Session, tenant_ids: list[str], mobile: str, source: str, reason: str | None
) -> None:
    """Opt ``mobile`` out of each tenant's marketing, in the caller's transaction (first records stand)."""
    if not tenant_ids:
        return
    now = utcnow()
    session.execute(
        insert(OptOut)
        .values(
            [
                {
                    "tenant_id": tenant_id,
                    "mobile": mobile,
                    "source": source,
                    "reason": reason,
                    "created_at": now,
                }
                for tenant_id in tenant_ids
            ]
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "mobile"])
    )


def opt_in(session: Session, tenant_id: str, mobile: str) -> None:
    """Take ``mobile`` off the tenant's opt-outs; 404 when it was not on them."""
    with atomic(session):
        removed = session.execute(
            delete(OptOut).where(OptOut.tenant_id == tenant_id, OptOut.mobile == mobile)
        ).rowcount
    if not removed:
        raise NotFoundError("该号码未退订", data={"mobile": mask_mobile(mobile)})


def list_opt_outs(session: Session, tenant_id: str, page: int, size: int) -> tuple[list[OptOut], int]:
    return fetch_page(
        session,
        OptOut,
        [OptOut.tenant_id == tenant_id],
        page,
        size,
        order_by=(OptOut.created_at.desc(), OptOut.mobile),
    )


def opted_out(session: Session, tenant_id: str, mobiles: list[str]) -> set[str]:
    """Which of ``mobiles`` opted out of the tenant's marketing messages (one query, no transaction)."""
    rows = read_alone(
        session, select(OptOut.mobile).where(OptOut.tenant_id == tenant_id, OptOut.mobile.in_(mobiles))
    )
    return {row[0] for row in rows}
