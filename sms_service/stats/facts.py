"""The daily counts rebuilt from the messages: a day at a time, for every tenant, in one transaction.

Rebuilding a day replaces its rows with what the messages show at that moment, so a run is idempotent; runs
that overlap take the day's advisory lock in turn, and the later one writes the same rows again.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.types import Date

from shared.db import utcnow
from shared.transactions import atomic
from sms_service.models import DailyUsage, Message, Tenant

BEIJING = ZoneInfo("Asia/Shanghai")
NO_PROVIDER = "none"
# First key of the days' advisory locks (the second is the day's ordinal).
LOCK_NAMESPACE = 0x534D5355  # "SMSU"

_COLUMNS = ["tenant_id", "test", "day", "template_id", "provider", "status", "messages", "segments"]


def beijing_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(BEIJING).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants a Beijing calendar day starts and ends at (end excluded)."""
    start = datetime.combine(day, time(), tzinfo=BEIJING).astimezone(UTC)
    return start, start + timedelta(days=1)


def recent_days(today: date | None = None) -> list[date]:
    """The days whose messages can still change: today and as many days back as a receipt is waited for
    (after that the poll gives up and the message is failed), plus one for a message sent just before
    midnight."""
    back = math.ceil(current_app.config["RECEIPT_GIVE_UP_AFTER_SECONDS"] / 86_400) + 1
    today = today or beijing_today()
    return [today - timedelta(days=offset) for offset in range(back, -1, -1)]


def rebuild_recent(session: Session) -> dict[str, int]:
    """The periodic rebuild: each recent day in a transaction of its own."""
    return {day.isoformat(): rebuild_day(session, day) for day in recent_days()}


def rebuild_day(session: Session, day: date) -> int:
    """Replace one day's counts with those of its messages; returns how many count rows it holds."""
    start, end = day_bounds(day)
    with atomic(session):
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, day.toordinal())))
        session.execute(delete(DailyUsage).where(DailyUsage.day == day))
        tenant_ids = session.scalars(select(Tenant.id)).all()
        if not tenant_ids:
            return 0
        provider = func.coalesce(Message.provider, NO_PROVIDER)
        # tenant_id IN (…) with the day's range: read from ix_messages_tenant_id_created_at, never a scan.
        counts = (
            select(
                Message.tenant_id,
                Message.test,
                literal(day, Date),
                Message.template_id,
                provider,
                Message.status,
                func.count(),
                func.sum(Message.segments),
            )
            .where(Message.tenant_id.in_(tenant_ids), Message.created_at >= start, Message.created_at < end)
            .group_by(Message.tenant_id, Message.test, Message.template_id, provider, Message.status)
        )
        return session.execute(insert(DailyUsage).from_select(_COLUMNS, counts)).rowcount
