"""Store what an uplink push carried, once, and act on it: attribute each reply and apply opt-out keywords.

A push delivered again (the upstreams re-push until they get their answer) stores nothing new: each reply has
a ``dedupe_key``, unique in the table. Aliyun's carries ``sequence_id``, so its key is the provider, the
mobile and that id; Tencent's carries no id, so its key is the provider, the mobile, the reply's time and its
text. A mobile sending the same text twice within one second to Tencent is therefore kept once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import isoformat, utcnow
from shared.transactions import atomic
from sms_service.accepting.opt_outs import add_opt_outs
from sms_service.mobiles import mask_mobile
from sms_service.models import Reply, ReplyTenant
from sms_service.replies.attribution import bare_sign, tenants_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingReply:
    provider: str
    mobile: str
    text: str
    sign_name: str | None = None
    extension: str | None = None
    upstream_id: str | None = None
    replied_at: datetime | None = None

    def dedupe_key(self) -> str:
        if self.upstream_id:
            parts = [self.provider, self.mobile, "id", self.upstream_id]
        else:
            parts = [self.provider, self.mobile, "at", isoformat(self.replied_at) or "", self.text]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass
class ReceiveSummary:
    stored: int = 0
    duplicates: int = 0
    unattributed: int = 0
    opt_outs: int = 0


def is_opt_out(text: str) -> bool:
    return text.strip().casefold() in current_app.config["OPT_OUT_WORDS"]


def receive(session: Session, replies: list[IncomingReply]) -> ReceiveSummary:
    """One push, one transaction: nothing of it is kept unless all of it is (the upstream pushes again)."""
    summary = ReceiveSummary()
    now = utcnow()
    with atomic(session):
        for reply in replies:
            sign = bare_sign(reply.sign_name)
            reply_id = session.scalar(
                insert(Reply)
                .values(
                    dedupe_key=reply.dedupe_key(),
                    provider=reply.provider,
                    mobile=reply.mobile,
                    text=reply.text,
                    sign_name=sign,
                    extension=reply.extension or None,
                    upstream_id=reply.upstream_id,
                    replied_at=reply.replied_at,
                    received_at=now,
                )
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(Reply.id)
            )
            if reply_id is None:
                summary.duplicates += 1
                continue
            summary.stored += 1
            tenant_ids = tenants_for(session, reply.mobile, sign, now)
            if not tenant_ids:
                summary.unattributed += 1
                continue
            session.execute(
                insert(ReplyTenant).values([{"reply_id": reply_id, "tenant_id": t} for t in tenant_ids])
            )
            if is_opt_out(reply.text):
                reason = f"回复「{reply.text.strip()}」"
                add_opt_outs(session, tenant_ids, reply.mobile, reply.provider, reason)
                summary.opt_outs += len(tenant_ids)
    logger.info(
        "%s uplink: %d stored, %d duplicate(s), %d unattributed, %d opt-out(s) (%s)",
        replies[0].provider if replies else "-",
        summary.stored,
        summary.duplicates,
        summary.unattributed,
        summary.opt_outs,
        ", ".join(mask_mobile(reply.mobile) for reply in replies[:5]),
    )
    return summary


def list_replies(session: Session, tenant_id: str, page: int, size: int) -> tuple[list[Reply], int]:
    """The tenant's replies, newest first (ids grow with arrival)."""
    total = (
        session.scalar(
            select(func.count()).select_from(ReplyTenant).where(ReplyTenant.tenant_id == tenant_id)
        )
        or 0
    )
    rows = session.scalars(
        select(Reply)
        .join(ReplyTenant, ReplyTenant.reply_id == Reply.id)
        .where(ReplyTenant.tenant_id == tenant_id)
        .order_by(ReplyTenant.reply_id.desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return list(rows), total
