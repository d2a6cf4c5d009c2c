"""A tenant's usage over Beijing days, grouped by day, template or provider, read from ``DailyUsage`` only."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db import read_alone
from sms_service.models import QUEUED, SENDING, SUBMITTED, SUCCESS, DailyUsage

DAY = "day"
TEMPLATE = "template"
PROVIDER = "provider"
GROUPS = (DAY, TEMPLATE, PROVIDER)
MAX_DAYS = 92
# What the statistics show of each status; queued, sending and submitted are all still pending.
SHOWN_AS = {QUEUED: "pending", SENDING: "pending", SUBMITTED: "pending"}

_KEYS = {DAY: DailyUsage.day, TEMPLATE: DailyUsage.template_id, PROVIDER: DailyUsage.provider}


def usage(session: Session, tenant_id: str, *, test: bool, first: date, last: date, group_by: str) -> dict:
    """``{list: [{key, total, success, failed, pending, segments}], totals: {…}}`` for ``first``..``last``
    (both included); only messages of one kind (test or live), as a key sees only its own kind."""
    key = _KEYS[group_by]
    rows = read_alone(
        session,
        select(key, DailyUsage.status, func.sum(DailyUsage.messages), func.sum(DailyUsage.segments))
        .where(
            DailyUsage.tenant_id == tenant_id,
            DailyUsage.test == test,
            DailyUsage.day >= first,
            DailyUsage.day <= last,
        )
        .group_by(key, DailyUsage.status),
    )
    groups: dict[str, dict[str, int]] = {}
    if group_by == DAY:  # every day of the range, those without messages as zeros
        for offset in range((last - first).days + 1):
            groups[(first + timedelta(days=offset)).isoformat()] = _zero()
    totals = _zero()
    for group, status, messages, segments in rows:
        name = group.isoformat() if isinstance(group, date) else group
        for counts in (groups.setdefault(name, _zero()), totals):
            _add(counts, status, int(messages), int(segments))
    return {"list": [{"key": name, **groups[name]} for name in sorted(groups)], "totals": totals}


def _zero() -> dict[str, Any]:
    return {"total": 0, "success": 0, "failed": 0, "pending": 0, "segments": 0}


def _add(counts: dict[str, int], status: str, messages: int, segments: int) -> None:
    counts["total"] += messages
    counts[SHOWN_AS.get(status, status)] += messages
    if status == SUCCESS:  # upstreams bill the segments of delivered messages
        counts["segments"] += segments
