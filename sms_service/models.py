"""Tables of the SMS service (its own database)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UTCDateTime, new_metadata, utcnow
from shared.tenancy import ApiKeyColumns
from shared.webhooks.attempts import AttemptColumns

SCOPES = ("sms:send", "sms:admin")

QUEUED = "queued"
SENDING = "sending"
SUBMITTED = "submitted"
SUCCESS = "success"
FAILED = "failed"
STATUSES = (QUEUED, SENDING, SUBMITTED, SUCCESS, FAILED)
FINAL_STATUSES = (SUCCESS, FAILED)

TEMPLATE_ENABLED = "enabled"
TEMPLATE_DISABLED = "disabled"

VERIFICATION = "verification"
NOTIFICATION = "notification"
MARKETING = "marketing"
CATEGORIES = (VERIFICATION, NOTIFICATION, MARKETING)

# Callback lifecycle of a message that has a callback_url.
CALLBACK_WAITING = "waiting"  # the message is not final yet
CALLBACK_PENDING = "pending"  # due (again) at callback_next_at
CALLBACK_DELIVERED = "delivered"
CALLBACK_FAILED = "failed"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    daily_quota: Mapped[int] = mapped_column(Integer, default=10_000)
    # Signs the result callbacks (whsec_…); while rotating, the previous one signs too until it expires.
    callback_secret: Mapped[str] = mapped_column(String(100))
    previous_callback_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_callback_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    mobile_per_minute: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    mobile_per_hour: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    mobile_per_day: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(ApiKeyColumns, Base):
    __tablename__ = "api_keys"

    # A test key's sends go through the whole lifecycle without reaching an upstream.
    test: Mapped[bool] = mapped_column(default=False, server_default=false())


class Template(Base):
    """A tenant's message template: ``${name}`` variables and the upstream template code per provider."""

    __tablename__ = "templates"
    __table_args__ = (Index("ix_templates_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[str]] = mapped_column(JSON)
    sign_name: Mapped[str] = mapped_column(String(40))
    provider_codes: Mapped[dict[str, str]] = mapped_column(JSON)
    category: Mapped[str] = mapped_column(String(20), default=NOTIFICATION, server_default=NOTIFICATION)
    status: Mapped[str] = mapped_column(String(10), default=TEMPLATE_ENABLED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Deleted templates stay for the messages that reference them; the API no longer shows them.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_tenant_id_created_at", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    template_id: Mapped[str] = mapped_column(String(40), ForeignKey("templates.id"))
    total: Mapped[int] = mapped_column(Integer)
    test: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def _only_where(condition: str) -> dict[str, Any]:
    """A partial index: rows outside ``condition`` (most of them, when they are inserted) cost it nothing."""
    return {"postgresql_where": text(condition), "sqlite_where": text(condition)}


class Message(Base):
    """One SMS to one mobile. Its ``status`` is the outbox: dispatch only moves it forward.

    The busiest table takes no foreign keys: their checks cost half of a 1,000-row batch INSERT, and the
    rows they would guard are never deleted (tenants stay, templates are only marked deleted) and are
    checked by the send that stores the messages (the batch row in the same transaction).
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_messages_tenant_id_mobile_created_at", "tenant_id", "mobile", "created_at"),
        # A test key's records page: only test rows are in it, so live traffic costs it nothing.
        Index("ix_messages_tenant_id_created_at_test", "tenant_id", "created_at", **_only_where("test")),
        Index("ix_messages_status_updated_at", "status", "updated_at"),
        Index("ix_messages_tenant_id_template_id_status", "tenant_id", "template_id", "status"),
        Index("ix_messages_provider_biz_id", "provider", "biz_id", **_only_where("biz_id IS NOT NULL")),
        # Receipts of a call that never answered: only sending rows, so it costs the other writes nothing.
        Index(
            "ix_messages_call_ref_mobile_sending", "call_ref", "mobile", **_only_where("status = 'sending'")
        ),
        Index(
            "ix_messages_callback_status_callback_next_at",
            "callback_status",
            "callback_next_at",
            **_only_where("callback_status = 'pending'"),
        ),
        # A batch's counts and pages are read from the index alone (PostgreSQL's INCLUDE).
        Index(
            "ix_messages_batch_id_created_at",
            "batch_id",
            "created_at",
            "id",
            postgresql_include=["status", "mobile"],
            **_only_where("batch_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    template_id: Mapped[str] = mapped_column(String(40))
    batch_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    mobile: Mapped[str] = mapped_column(String(11))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The billed parts of the rendered text, 【sign name】 included (accepting.segments).
    segments: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))
    callback_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    req_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    biz_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The request reference (Aliyun OutId, Tencent SessionContext) of the upstream call, recorded before it.
    call_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    # Sent with a test key: simulated, never reaches an upstream, seen only by test keys.
    test: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    callback_status: Mapped[str | None] = mapped_column(String(12), nullable=True)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CallbackAttempt(AttemptColumns, Base):
    """One POST of a result callback, kept so the tenant can see what happened to it."""

    __tablename__ = "callback_attempts"

    message_id: Mapped[str] = mapped_column(String(40), ForeignKey("messages.id"), index=True)


class IdempotencyRecord(Base):
    """The first answer given for a tenant's ``Idempotency-Key`` on one endpoint."""

    __tablename__ = "idempotency_records"

    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class LimitCounter(Base):
    """How much of one limit a tenant used in one window (e.g. a mobile's sends this hour)."""

    __tablename__ = "limit_counters"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
    cap: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class HeldReceipt(Base):
    """A pushed receipt that matched no open message yet (e.g. Tencent's, which carries only the SerialNo,
    before the call's answer stored it). Applied when that answer arrives; purged after
    ``SMS_HELD_RECEIPT_SECONDS``."""

    __tablename__ = "held_receipts"
    __table_args__ = (Index("ix_held_receipts_provider_biz_id_mobile", "provider", "biz_id", "mobile"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    mobile: Mapped[str] = mapped_column(String(11))
    biz_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(256), nullable=True)
    success: Mapped[bool] = mapped_column()
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class OptOut(Base):
    """A mobile that asked one tenant to stop its marketing messages (by API, or by replying to one)."""

    __tablename__ = "opt_outs"

    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"), primary_key=True)
    mobile: Mapped[str] = mapped_column(String(11), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # api, or the upstream that carried the reply
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reply(Base):
    """A text a mobile sent back (an upstream's uplink push), kept whether or not any tenant it reached.

    ``dedupe_key`` makes a push delivered again store nothing new (see ``replies.receiving``).
    """

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    mobile: Mapped[str] = mapped_column(String(11))
    text: Mapped[str] = mapped_column(Text)
    sign_name: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Aliyun dest_code / Tencent extend: the extension number the reply was sent to.
    extension: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Aliyun sequence_id; Tencent gives none.
    upstream_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReplyTenant(Base):
    """A tenant a reply is attributed to: it lists the reply; a keyword reply opts the mobile out of it."""

    __tablename__ = "reply_tenants"
    __table_args__ = (Index("ix_reply_tenants_tenant_id_reply_id", "tenant_id", "reply_id"),)

    reply_id: Mapped[int] = mapped_column(Integer, ForeignKey("replies.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"), primary_key=True)


class DailyUsage(Base):
    """How many of a tenant's messages of one Beijing day are in one status, by template and provider.

    Rebuilt from the messages for the days that can still change (``sms_service.stats.facts``); the usage
    statistics are read from here only. ``provider`` is ``none`` for messages that never reached an upstream.
    """

    __tablename__ = "daily_usage"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    test: Mapped[bool] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    template_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer)
    # The messages' billed segments summed (counted as billed only for success).
    segments: Mapped[int] = mapped_column(BigInteger)
