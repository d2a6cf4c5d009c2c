"""Which tenants a reply is for: by its sign name when it carries one, else by recent marketing.

The upstreams tell only the mobile, the text and (usually) the sign the mobile replied to. Every tenant
whose templates use that sign gets the reply (templates marked deleted included: their messages may still be
answered). Without a sign, the reply goes to every tenant that sent the mobile a marketing message (one that
reached an upstream, test traffic excluded) within ``RECENT_MARKETING``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from sms_service.models import MARKETING, Message, Template

RECENT_MARKETING = timedelta(days=30)


def bare_sign(sign_name: str | None) -> str | None:
    """The sign without the 【】 some pushes wrap it in; None when there is none."""
    bare = (sign_name or "").strip().strip("【】[]").strip()
    return bare or None


def tenants_for(session: Session, mobile: str, sign_name: str | None, now: datetime) -> list[str]:
    if sign_name:
        return tenants_by_sign(session, sign_name)
    return tenants_by_recent_marketing(session, mobile, now - RECENT_MARKETING)


def tenants_by_sign(session: Session, sign_name: str) -> list[str]:
    rows = session.scalars(
        select(Template.tenant_id)
        .where(Template.sign_name.in_([sign_name, f"【{sign_name}】"]))
        .distinct()
        .order_by(Template.tenant_id)
    )
    return list(rows)


def tenants_by_recent_marketing(session: Session, mobile: str, since: datetime) -> list[str]:
    # Tenant by tenant (those with a marketing template), so each probe uses the messages' index on
    # (tenant_id, mobile, created_at); the messages table has no index led by the mobile.
    marketers = select(Template.tenant_id).where(Template.category == MARKETING).distinct().subquery()
    sent = exists(
        select(Message.id)
        .join(Template, Template.id == Message.template_id)
        .where(
            Message.tenant_id == marketers.c.tenant_id,
            Message.mobile == mobile,
            Message.created_at >= since,
            Message.provider.is_not(None),
            Message.test.is_(False),
            Template.category == MARKETING,
        )
    )
    return list(session.scalars(select(marketers.c.tenant_id).where(sent).order_by(marketers.c.tenant_id)))
