"""Tables of the payment service (its own database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UTCDateTime, new_metadata, utcnow
from shared.tenancy import ApiKeyColumns
from shared.webhooks.attempts import AttemptColumns

SCOPES = ("payment:admin", "payment:order")


class Base(DeclarativeBase):
    metadata = new_metadata()


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Signs the results forwarded to notify_url (whsec_…); while rotating, the previous one signs too.
    notify_secret: Mapped[str] = mapped_column(String(100))
    previous_notify_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_notify_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(ApiKeyColumns, Base):
    __tablename__ = "api_keys"


class PaymentConfig(Base):
    """A tenant's merchant configuration for one payment mode.

    ``params`` holds what may be shown; the secrets of the mode live sealed in ``secrets_sealed``
    (see ``secret_box``) under the key named by ``secret_key_id``.
    """

    __tablename__ = "payment_configs"
    __table_args__ = (
        CheckConstraint("mode IN ('wechat_split', 'wechat_direct', 'alipay_direct')", name="mode"),
        CheckConstraint("status IN ('enabled', 'disabled')", name="status"),
        Index("ix_payment_configs_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="enabled")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets_sealed: Mapped[str] = mapped_column(Text)
    secret_key_id: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SiteBinding(Base):
    """Which config a site pays through on one channel: at most one per (tenant, site, channel)."""

    __tablename__ = "site_bindings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "site_id", "channel"),
        CheckConstraint("channel IN ('wechat', 'alipay')", name="channel"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    site_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))
    # RESTRICT: a binding can never point at a deleted config, whatever the application does.
    config_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("payment_configs.id", ondelete="RESTRICT"), index=True
    )
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConfigHistory(Base):
    """One audited change of a config: who (tenant, key), when, and a diff with secrets masked.

    No foreign key to the config: the record of a deletion outlives the config it deleted.
    """

    __tablename__ = "config_history"
    __table_args__ = (Index("ix_config_history_tenant_config", "tenant_id", "config_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    config_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(20))
    key_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- Orders ---

ORDER_STATUSES = ("pending", "paid", "closed", "failed", "refunded")


class PaymentOrder(Base):
    """One payment of a tenant's site, routed through the config bound when it was placed.

    The id (``TXN_…``) is also the upstream ``out_trade_no``. Amounts are integer fen. ``config_id`` has no
    foreign key: an order is a financial record and outlives the deletion of its config.
    ``sharing_plan`` is the profit-sharing receivers as they were when the order was placed (None: no split).
    ``refunded_fen`` sums its successful refunds and ``refunding_fen`` reserves those in flight; both change
    only with a refund's guarded transition, under the order's row lock when reserving.
    """

    __tablename__ = "payment_orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "out_order_no"),
        CheckConstraint("status IN ('pending', 'paid', 'closed', 'failed', 'refunded')", name="status"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        # Never more refunded, or reserved for refunds in flight, than was paid.
        CheckConstraint(
            "refunded_fen >= 0 AND refunding_fen >= 0 AND refunded_fen + refunding_fen <= amount_fen",
            name="refunds_within_amount",
        ),
        Index("ix_payment_orders_tenant_created", "tenant_id", "created_at"),
        Index("ix_payment_orders_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    site_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(10))
    mode: Mapped[str] = mapped_column(String(20))
    config_id: Mapped[str] = mapped_column(String(40), index=True)
    out_order_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(127))
    payer_id: Mapped[str] = mapped_column(String(128))
    notify_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    pay_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    channel_order_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel_transaction_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    upstream_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    sharing_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expire_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_queried_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refunding_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ForwardColumns:
    """A signed result owed to a business's notify_url: where, and how its attempts went so far."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrderForward(ForwardColumns, Base):
    """The signed payment result owed to the order's notify_url: one per order, made with the transition."""

    __tablename__ = "order_forwards"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_order_forwards_status_next", "status", "next_attempt_at"),
    )

    order_id: Mapped[str] = mapped_column(String(40), ForeignKey("payment_orders.id"), unique=True)


class ForwardAttempt(AttemptColumns, Base):
    """One POST to a notify_url and what came back (no status code: no answer)."""

    __tablename__ = "forward_attempts"
    __table_args__ = (UniqueConstraint("forward_id", "attempt"),)

    forward_id: Mapped[int] = mapped_column(Integer, ForeignKey("order_forwards.id"))


class ProfitSharing(Base):
    """The WeChat profit-sharing order of a paid wechat_split order; ``out_order_no`` makes it idempotent."""

    __tablename__ = "profit_sharings"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'processing', 'finished', 'failed')", name="status"),
        Index("ix_profit_sharings_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), ForeignKey("payment_orders.id"), unique=True)
    out_order_no: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    wechat_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ProfitSharingReceiver(Base):
    """One receiver's line of a split: transferred (pending → success | closed), retained or skipped."""

    __tablename__ = "profit_sharing_receivers"
    __table_args__ = (UniqueConstraint("sharing_id", "merchant_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sharing_id: Mapped[int] = mapped_column(Integer, ForeignKey("profit_sharings.id"))
    merchant_id: Mapped[str] = mapped_column(String(64))
    receiver_type: Mapped[str] = mapped_column(String(32))
    ratio: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))
    fail_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    detail_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SharingReceiverRegistration(Base):
    """A receiver already added at WeChat for one sub-merchant, so it is added once, not per order."""

    __tablename__ = "sharing_receiver_registrations"
    __table_args__ = (
        UniqueConstraint(
            "mch_id",
            "sub_mch_id",
            "account_type",
            "account",
            name="uq_sharing_receiver_registrations_account",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mch_id: Mapped[str] = mapped_column(String(32))
    sub_mch_id: Mapped[str] = mapped_column(String(32))
    account_type: Mapped[str] = mapped_column(String(30))
    account: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- Refunds ---

REFUND_STATUSES = ("processing", "success", "failed")


class Refund(Base):
    """One refund of a paid order; the id (``RFD_…``) is the upstream out_refund_no / out_request_no.

    Committed ``processing`` (its amount reserved on the order) before any upstream call, so every call,
    retry and query reuses the same id. ``requested_at`` is when the refund call was last sent (None: not yet,
    or refused for frequency and owed again at ``next_attempt_at``). ``needs_returns``: the order's split had
    run when the refund was reserved, so the receivers' shares come back first (``returns_planned`` once the
    return lines are recorded).
    """

    __tablename__ = "payment_refunds"
    __table_args__ = (
        UniqueConstraint("tenant_id", "out_refund_no"),
        CheckConstraint("status IN ('processing', 'success', 'failed')", name="status"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index("ix_payment_refunds_order_created", "order_id", "created_at"),
        Index("ix_payment_refunds_status_updated", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    order_id: Mapped[str] = mapped_column(String(40), ForeignKey("payment_orders.id"))
    out_refund_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(80), nullable=True)
    notify_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="processing")
    upstream_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    channel_refund_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    upstream_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    needs_returns: Mapped[bool] = mapped_column(Boolean, default=False)
    returns_planned: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_queried_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    success_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ProfitSharingReturn(Base):
    """One receiver's share taken back before a refund of a split order (WeChat return order).

    ``out_return_no`` is derived from the refund id and the receiver, so every retry is the same return.
    pending (not asked yet) → processing → success | failed.
    """

    __tablename__ = "profit_sharing_returns"
    __table_args__ = (
        UniqueConstraint("refund_id", "merchant_id"),
        CheckConstraint("status IN ('pending', 'processing', 'success', 'failed')", name="status"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    refund_id: Mapped[str] = mapped_column(String(40), ForeignKey("payment_refunds.id"))
    sharing_id: Mapped[int] = mapped_column(Integer, ForeignKey("profit_sharings.id"), index=True)
    merchant_id: Mapped[str] = mapped_column(String(64))
    out_return_no: Mapped[str] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    return_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fail_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RefundForward(ForwardColumns, Base):
    """The signed payment.refund owed to the refund's notify_url once it succeeds or fails."""

    __tablename__ = "refund_forwards"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_refund_forwards_status_next", "status", "next_attempt_at"),
    )

    refund_id: Mapped[str] = mapped_column(String(40), ForeignKey("payment_refunds.id"), unique=True)


class RefundForwardAttempt(AttemptColumns, Base):
    """One POST of a payment.refund to a notify_url and what came back."""

    __tablename__ = "refund_forward_attempts"
    __table_args__ = (UniqueConstraint("forward_id", "attempt"),)

    forward_id: Mapped[int] = mapped_column(Integer, ForeignKey("refund_forwards.id"))
