"""Placing payment orders: routed by the site's binding for the channel, recorded before the upstream is
asked, idempotent by the business's ``out_order_no``; and reading them back.

The order row is committed before the upstream call and updated after it, so an upstream failure (502)
still leaves the order on record. Repeating an ``out_order_no`` with the same amount returns the same
transaction; after a failed upstream call it asks the upstream again with the same ``out_trade_no``
(the transaction id) and identical fields, which WeChat and Alipay treat as the same order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from payment_service.channels import ChannelError, OrderRequest
from payment_service.configs.bindings import get_binding_for_order
from payment_service.configs.merchant_channels import ConfigRow, channel_for, credentials_for, notify_url_for
from payment_service.metrics import count_order
from payment_service.models import (
    OrderForward,
    PaymentConfig,
    PaymentOrder,
    ProfitSharing,
    ProfitSharingReceiver,
)
from payment_service.orders.profit_sharing import sharing_plan
from payment_service.orders.views import FEN_PER_YUAN, order_view
from shared.db import execute_alone, fetch_page, utcnow
from shared.driver import insert_alone
from shared.envelope import BadRequestError, ConflictError, NotFoundError, UpstreamError
from shared.ids import new_id
from shared.transactions import atomic
from shared.webhooks import UrlRefused, check_public_url

logger = logging.getLogger(__name__)

NOT_FOUND = "支付订单不存在"
_orders = PaymentOrder.__table__
# Built once: every order is given its pay parameters with it. pay_params, channel_order_ref, upstream_error
# and updated_at are SET from the parameters of the call.
_SAVE_CREATED = (
    update(_orders)
    .where(_orders.c.id == bindparam("order_id"))
    # A retry that got through revives an order failed by an answer we could not trust; paid stays paid.
    .values(status=case((_orders.c.status == "failed", "pending"), else_=_orders.c.status))
)
UNTRUSTED_ANSWERS = ("BAD_SIGNATURE", "BAD_RESPONSE")


@dataclass(frozen=True)
class NewOrder:
    """An order as the business asks for it; ``amount`` in yuan."""

    site_id: str
    channel: str
    amount: Decimal
    description: str
    payer_id: str
    notify_url: str | None = None
    out_order_no: str | None = None


def amount_in_fen(amount: Decimal) -> int:
    """Yuan to integer fen: more than 0, at most 2 decimals, at most ``PAYMENT_MAX_AMOUNT``."""
    maximum = Decimal(str(current_app.config["MAX_AMOUNT"]))
    if not amount.is_finite() or amount <= 0:
        raise _invalid_amount("金额必须大于 0")
    if amount != amount.quantize(Decimal("0.01")):
        raise _invalid_amount("金额最多两位小数")
    if amount > maximum:
        raise _invalid_amount(f"金额不能超过 {maximum} 元")
    return int(amount * FEN_PER_YUAN)


def place_order(session: Session, tenant_id: str, request: NewOrder) -> PaymentOrder:
    """Create (or, for a known ``out_order_no``, return or retry) the order and its pay parameters.

    Raises 400 (validation, routing), 409 (``out_order_no`` reused with other fields) or 502 (upstream).
    """
    amount_fen = amount_in_fen(request.amount)
    if request.notify_url:
        try:
            check_public_url(request.notify_url, current_app.config["NOTIFY_ALLOW_PRIVATE"])
        except UrlRefused as exc:
            raise BadRequestError(str(exc), {"errors": {"notify_url": [str(exc)]}}) from None
    if request.out_order_no:
        existing = _find_by_out_order_no(session, tenant_id, request.out_order_no)
        if existing is not None:
            return _repeat(session, existing, request, amount_fen)
    config = get_binding_for_order(session, tenant_id, request.site_id, request.channel).config
    now = utcnow()
    values = {
        "id": new_id("TXN", now),
        "tenant_id": tenant_id,
        "site_id": request.site_id,
        "channel": request.channel,
        "mode": config.mode,
        "config_id": config.id,
        "out_order_no": request.out_order_no,
        "amount_fen": amount_fen,
        "description": request.description,
        "payer_id": request.payer_id,
        "notify_url": request.notify_url,
        "status": "pending",
        "refunded_fen": 0,
        "refunding_fen": 0,
        "sharing_plan": sharing_plan(config.mode, credentials_for(config), amount_fen),
        "created_at": now,
        "updated_at": now,
        "expire_at": now + timedelta(minutes=current_app.config["ORDER_EXPIRE_MINUTES"]),
    }
    try:
        # Its own transaction, committed before the upstream is asked: the order is on record whatever the
        # upstream does. One INSERT, run alone on the autocommit engine (no BEGIN … COMMIT round trips).
        insert_alone(session, _orders, [values])
    except IntegrityError:
        # Where the INSERT ran in the session's transaction, that transaction failed: end it before reading.
        session.rollback()
        # Another request with the same out_order_no won the insert: answer as its repeat.
        existing = _find_by_out_order_no(session, tenant_id, request.out_order_no or "")
        if existing is None:
            raise
        return _repeat(session, existing, request, amount_fen)
    count_order("pending", request.channel)
    # Not added to the session: the row is written, this object only carries it to the upstream call
    # and the answer.
    return _ask_upstream(session, PaymentOrder(**values), config)


def get_order(session: Session, tenant_id: str, transaction_id: str) -> PaymentOrder:
    order = session.get(PaymentOrder, transaction_id)
    if order is None or order.tenant_id != tenant_id:
        raise NotFoundError(NOT_FOUND)
    return order


def order_detail(session: Session, tenant_id: str, transaction_id: str) -> dict[str, Any]:
    """The order with its profit-sharing lines and forwarding state; another tenant's order is a 404."""
    order = get_order(session, tenant_id, transaction_id)
    return _details(session, [order])[0]


def list_orders(
    session: Session,
    tenant_id: str,
    *,
    status: str | None = None,
    site_id: str | None = None,
    channel: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    page: int = 1,
    size: int = 20,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the tenant's orders, newest first, and the total matching the filters."""
    filters = [PaymentOrder.tenant_id == tenant_id]
    if status:
        filters.append(PaymentOrder.status == status)
    if site_id:
        filters.append(PaymentOrder.site_id == site_id)
    if channel:
        filters.append(PaymentOrder.channel == channel)
    if created_from:
        filters.append(PaymentOrder.created_at >= created_from)
    if created_to:
        filters.append(PaymentOrder.created_at < created_to)
    orders, total = fetch_page(session, PaymentOrder, filters, page, size)
    return _details(session, orders), total


def _details(session: Session, orders: list[PaymentOrder]) -> list[dict[str, Any]]:
    ids = [order.id for order in orders]
    if not ids:
        return []
    forwards = {
        f.order_id: f for f in session.scalars(select(OrderForward).where(OrderForward.order_id.in_(ids)))
    }
    sharings = {
        s.order_id: s for s in session.scalars(select(ProfitSharing).where(ProfitSharing.order_id.in_(ids)))
    }
    lines: dict[int, list[ProfitSharingReceiver]] = {}
    if sharings:
        sharing_ids = [sharing.id for sharing in sharings.values()]
        for line in session.scalars(
            select(ProfitSharingReceiver)
            .where(ProfitSharingReceiver.sharing_id.in_(sharing_ids))
            .order_by(ProfitSharingReceiver.id)
        ):
            lines.setdefault(line.sharing_id, []).append(line)
    views = []
    for order in orders:
        sharing = sharings.get(order.id)
        receivers = lines.get(sharing.id, []) if sharing is not None else []
        views.append(order_view(order, forwards.get(order.id), sharing, receivers))
    return views


def _find_by_out_order_no(session: Session, tenant_id: str, out_order_no: str) -> PaymentOrder | None:
    return session.scalar(
        select(PaymentOrder)
        .where(PaymentOrder.tenant_id == tenant_id, PaymentOrder.out_order_no == out_order_no)
        .execution_options(populate_existing=True)
    )


def _repeat(session: Session, order: PaymentOrder, request: NewOrder, amount_fen: int) -> PaymentOrder:
    """A repeated ``out_order_no``: the same order again, or a retry of its failed upstream call."""
    differences = {
        name: {"first": first, "now": now}
        for name, first, now in (
            ("amount", order.amount_fen, amount_fen),
            ("site_id", order.site_id, request.site_id),
            ("channel", order.channel, request.channel),
        )
        if first != now
    }
    if differences:
        if "amount" in differences:
            differences["amount"] = {
                "first": amount_fen_to_text(order.amount_fen),
                "now": str(request.amount),
            }
        raise ConflictError(
            "业务订单号已用于另一笔支付(金额、网点或渠道不同)",
            {"out_order_no": order.out_order_no, "transaction_id": order.id, "differences": differences},
        )
    if order.status == "closed":
        raise ConflictError(
            "该业务订单号的支付已关闭,请使用新的业务订单号",
            {"transaction_id": order.id, "status": order.status},
        )
    if order.pay_params is not None or order.status == "paid":
        return order
    config = session.get(PaymentConfig, order.config_id)
    if config is None or config.tenant_id != order.tenant_id:
        raise BadRequestError("该订单的支付配置已删除,请使用新的业务订单号")
    if config.status != "enabled":
        raise BadRequestError("该订单的支付配置已停用,暂时无法支付")
    return _ask_upstream(session, order, config)


def amount_fen_to_text(amount_fen: int) -> str:
    return f"{amount_fen // FEN_PER_YUAN}.{amount_fen % FEN_PER_YUAN:02d}"


def _ask_upstream(session: Session, order: PaymentOrder, config: ConfigRow) -> PaymentOrder:
    """Create the order upstream and store its pay parameters; on failure record why and answer 502."""
    try:
        channel = channel_for(config)
        created = channel.create_order(
            OrderRequest(
                transaction_id=order.id,
                amount_fen=order.amount_fen,
                description=order.description,
                payer_id=order.payer_id,
                notify_url=notify_url_for(config),
                expire_at=order.expire_at,
                profit_sharing=order.sharing_plan is not None,
            )
        )
    except ChannelError as exc:
        _record_failure(session, order, exc.as_details(), permanent=_refused(exc))
        logger.warning("order %s: upstream %s refused or failed: %s", order.id, config.mode, exc)
        raise UpstreamError(
            f"上游支付渠道错误: {exc.message}", {"transaction_id": order.id, **exc.as_details()}
        ) from None
    except ValueError as exc:
        details = {"upstream_code": "CONFIG_UNUSABLE", "upstream_message": str(exc), "http_status": None}
        _record_failure(session, order, details, permanent=True)
        raise BadRequestError(f"支付配置无法使用: {exc}", {"transaction_id": order.id}) from None
    changes = {
        "pay_params": created.pay_params,
        "channel_order_ref": created.channel_order_ref,
        "upstream_error": None,
        "updated_at": utcnow(),
    }
    # Its own transaction, after the upstream call: one UPDATE, run alone on the autocommit engine.
    execute_alone(session, _SAVE_CREATED, {"order_id": order.id, **changes})
    if order.status == "failed":
        changes["status"] = "pending"
    _show(order, changes)
    return order


def _record_failure(session: Session, order: PaymentOrder, details: dict[str, Any], permanent: bool) -> None:
    """A refusal the upstream means (4xx) fails the order; a timeout or 5xx leaves it pending, since the
    upstream may have created it (reconciliation asks, a repeat of the out_order_no retries)."""
    changes: dict[str, Any] = {"upstream_error": details, "updated_at": utcnow()}
    with atomic(session):
        connection = session.connection()
        connection.execute(update(_orders).where(_orders.c.id == order.id).values(**changes))
        if permanent:
            failed = connection.execute(
                update(_orders)
                .where(_orders.c.id == order.id, _orders.c.status == "pending")
                .values(status="failed")
            )
            if failed.rowcount == 1:
                changes["status"] = "failed"
                count_order("failed", order.channel)
    _show(order, changes)


def _show(order: PaymentOrder, changes: dict[str, Any]) -> None:
    """Written with Core: let the object say what the row now says, without giving the session anything
    to write again."""
    for name, value in changes.items():
        set_committed_value(order, name, value)


def _refused(exc: ChannelError) -> bool:
    """The upstream answered and meant no; an answer we could not read or trust says nothing either way."""
    return not exc.retryable and exc.code not in UNTRUSTED_ANSWERS


def _invalid_amount(message: str) -> BadRequestError:
    return BadRequestError(message, {"errors": {"amount": [message]}})
