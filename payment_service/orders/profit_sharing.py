"""Profit sharing of paid wechat_split orders: ratios to fen, receivers added once, the split placed, polled.

The plan (receivers and ratios) is taken from the config when the order is placed, so a later change of
the config does not change what an order already paid owes. Amounts follow ``channels.split_amounts``:
floor(total × ratio) fen per transferred receiver, 0-fen receivers skipped, and the sub-merchant keeps
the rest, its own share included; "total" is what refunds (successful or processing) leave of the payment
when the split is placed, and a fully refunded order is never split. The split's ``out_order_no`` is
derived from the transaction, so placing it again (a retry, a redelivered task) is idempotent at WeChat;
``unfreeze_unsplit`` releases the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payment_service.channels import (
    ChannelError,
    SharingReceiver,
    SharingTransfer,
    WechatPayClient,
    split_amounts,
)
from payment_service.channels.wechat import ProfitSharingOrder
from payment_service.configs.merchant_channels import channel_for
from payment_service.models import (
    PaymentConfig,
    PaymentOrder,
    ProfitSharing,
    ProfitSharingReceiver,
    SharingReceiverRegistration,
)
from payment_service.retry_schedule import retry_delay
from shared.db import utcnow
from shared.transactions import atomic

logger = logging.getLogger(__name__)

RECEIVER_TYPE = "MERCHANT_ID"
EARLY_SLACK = timedelta(seconds=1)
# WeChat's per-line results, as the receiver states an order shows.
_LINE_STATES = {"PENDING": "pending", "SUCCESS": "success", "CLOSED": "closed"}
_PLAN_FIELDS = ("merchant_id", "receiver_type", "name", "relation_type", "custom_relation")


def sharing_plan(mode: str, credentials: Mapping[str, Any], amount_fen: int) -> dict[str, Any] | None:
    """What a new order will split once paid, or None when nothing would be transferred.

    An order is placed with WeChat's profit-sharing flag only when it has a plan: the flag freezes the
    funds, and an order with nothing to transfer should not wait for an unfreeze.
    """
    sharing = credentials.get("profit_sharing") or {}
    if mode != "wechat_split" or not sharing.get("enabled"):
        return None
    sub_mch_id = str(credentials["sub_mch_id"])
    receivers = [
        {**{name: receiver.get(name) for name in _PLAN_FIELDS}, "ratio": str(receiver["ratio"])}
        for receiver in sharing.get("receivers") or ()
    ]
    if not split_amounts(amount_fen, receivers, sub_mch_id):
        return None
    return {"sub_mch_id": sub_mch_id, "receivers": receivers}


def schedule_profit_sharing(session: Session, order: PaymentOrder) -> ProfitSharing | None:
    """Record the split owed by a paid order, one line per receiver; called in the paid transaction."""
    plan = order.sharing_plan
    if not plan:
        return None
    sub_mch_id = plan["sub_mch_id"]
    transfers = {
        receiver["merchant_id"]: fen
        for receiver, fen in split_amounts(order.amount_fen, plan["receivers"], sub_mch_id)
    }
    retained = order.amount_fen - sum(transfers.values())
    starts_at = utcnow() + timedelta(seconds=current_app.config["PROFIT_SHARING_DELAY_SECONDS"])
    sharing = ProfitSharing(
        order_id=order.id,
        out_order_no=out_order_no_for(order),
        status="pending",
        attempts=0,
        next_attempt_at=starts_at,
    )
    session.add(sharing)
    session.flush()
    for receiver in plan["receivers"]:
        merchant_id = receiver["merchant_id"]
        if merchant_id == sub_mch_id:
            state, fen = "retained", retained
        elif merchant_id in transfers:
            state, fen = "pending", transfers[merchant_id]
        else:
            state, fen = "skipped", 0
        session.add(
            ProfitSharingReceiver(
                sharing_id=sharing.id,
                merchant_id=merchant_id,
                receiver_type=receiver.get("receiver_type") or "",
                ratio=receiver["ratio"],
                amount_fen=fen,
                state=state,
            )
        )
    session.flush()
    return sharing


def out_order_no_for(order: PaymentOrder) -> str:
    """The split's idempotency key at WeChat ([0-9A-Za-z_*@-], at most 64)."""
    return f"PS_{order.id}"


def run_profit_sharing(session: Session, order_id: str) -> float | None:
    """Advance the order's split one step: add receivers and place it, or poll its result.

    Returns the seconds until the next step is due, None when the split is finished or given up.
    """
    settings = current_app.config
    with atomic(session):
        sharing = session.scalar(
            select(ProfitSharing)
            .where(ProfitSharing.order_id == order_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if sharing is None or sharing.status in ("finished", "failed"):
            return None
        if sharing.next_attempt_at > utcnow() + EARLY_SLACK:
            return None
        order = session.get(PaymentOrder, order_id)
        config = session.get(PaymentConfig, order.config_id)
        if config is None:
            _give_up(sharing, "支付配置已删除,无法分账")
            return None
        lines = session.scalars(
            select(ProfitSharingReceiver).where(ProfitSharingReceiver.sharing_id == sharing.id)
        ).all()
        if sharing.status == "pending" and not _split_what_remains(session, order, lines):
            sharing.status, sharing.finished_at = "finished", utcnow()
            logger.info("profit sharing of %s: nothing left to split after refunds", order_id)
            return None
        try:
            client = channel_for(config)
            if not isinstance(client, WechatPayClient):
                raise ValueError(f"mode {config.mode} cannot split")
            result = _place_or_poll(session, client, sharing, order, lines)
        except ChannelError as exc:
            return _retry_later(sharing, f"{exc.code}: {exc.message}")
        except ValueError as exc:
            _give_up(sharing, f"支付配置无法使用: {exc}")
            return None
        _apply(result, sharing, lines)
        if result.state == "FINISHED":
            sharing.status, sharing.finished_at = "finished", utcnow()
            logger.info("profit sharing of %s finished", order_id)
            return None
        poll = settings["PROFIT_SHARING_POLL_SECONDS"]
        sharing.next_attempt_at = utcnow() + timedelta(seconds=poll)
        return poll


def _split_what_remains(session: Session, order: PaymentOrder, lines: list[ProfitSharingReceiver]) -> bool:
    """Before placing the split: the order's row lock (held until the split is placed, so a refund waits
    for it and then takes its shares back), and the amounts recomputed from what refunds, successful or
    processing, leave of the payment. False when nothing is left to transfer (a fully refunded order)."""
    order = session.scalar(
        select(PaymentOrder)
        .where(PaymentOrder.id == order.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    remaining = order.amount_fen - (order.refunded_fen or 0) - (order.refunding_fen or 0)
    if remaining == order.amount_fen:
        return any(line.state == "pending" for line in lines)
    plan = order.sharing_plan
    transfers = {
        receiver["merchant_id"]: fen
        for receiver, fen in (
            split_amounts(remaining, plan["receivers"], plan["sub_mch_id"]) if remaining else []
        )
    }
    for line in lines:
        if line.merchant_id == plan["sub_mch_id"]:
            line.amount_fen = remaining - sum(transfers.values())
        elif line.merchant_id in transfers:
            line.state, line.amount_fen = "pending", transfers[line.merchant_id]
        elif line.state == "pending":
            line.state, line.amount_fen = "skipped", 0
    return bool(transfers)


def _place_or_poll(
    session: Session,
    client: WechatPayClient,
    sharing: ProfitSharing,
    order: PaymentOrder,
    lines: list[ProfitSharingReceiver],
) -> ProfitSharingOrder:
    if sharing.status == "processing":
        return client.query_profit_sharing(sharing.out_order_no, order.channel_transaction_id or "")
    plan = {receiver["merchant_id"]: receiver for receiver in order.sharing_plan["receivers"]}
    transferred = [line for line in lines if line.state not in ("retained", "skipped")]
    for line in transferred:
        _add_receiver_once(session, client, plan[line.merchant_id])
    result = client.create_profit_sharing(
        order.channel_transaction_id or "",
        sharing.out_order_no,
        [
            SharingTransfer(
                account=line.merchant_id,
                amount_fen=line.amount_fen,
                description=f"{line.receiver_type or '分账方'}分账"[:80],
                type=RECEIVER_TYPE,
            )
            for line in transferred
        ],
        unfreeze_unsplit=True,
    )
    sharing.status, sharing.wechat_order_id = "processing", result.order_id
    return result


def _add_receiver_once(session: Session, client: WechatPayClient, receiver: Mapping[str, Any]) -> None:
    """Add the receiver at WeChat unless this sub-merchant already has; WeChat tolerates a repeat, so a
    race that adds it twice is harmless and the unique row records it once."""
    credentials = client.credentials
    key = {
        "mch_id": credentials.mch_id,
        "sub_mch_id": credentials.sub_mch_id or "",
        "account_type": RECEIVER_TYPE,
        "account": receiver["merchant_id"],
    }
    known = session.scalar(select(SharingReceiverRegistration.id).filter_by(**key))
    if known is not None:
        return
    client.add_receiver(
        SharingReceiver(
            account=receiver["merchant_id"],
            name=receiver.get("name"),
            type=RECEIVER_TYPE,
            relation_type=receiver.get("relation_type") or "PARTNER",
            custom_relation=receiver.get("custom_relation"),
        )
    )
    try:
        with session.begin_nested():
            session.add(SharingReceiverRegistration(**key))
    except IntegrityError:
        pass


def _apply(result: ProfitSharingOrder, sharing: ProfitSharing, lines: list[ProfitSharingReceiver]) -> None:
    by_account = {line.merchant_id: line for line in lines}
    for item in result.receivers:
        line = by_account.get(item.account)
        if line is None or line.state in ("retained", "skipped"):
            continue
        line.state = _LINE_STATES.get(item.result, line.state)
        line.fail_reason = item.fail_reason
        line.detail_id = item.detail_id
    sharing.updated_at = utcnow()


def _retry_later(sharing: ProfitSharing, error: str) -> float | None:
    settings = current_app.config
    sharing.attempts += 1
    sharing.last_error = error[:300]
    sharing.updated_at = utcnow()
    if sharing.attempts >= settings["PROFIT_SHARING_MAX_ATTEMPTS"]:
        _give_up(sharing, error)
        return None
    delay = retry_delay(sharing.attempts, settings["RETRY_BASE_SECONDS"], settings["RETRY_MAX_SECONDS"])
    sharing.next_attempt_at = utcnow() + timedelta(seconds=delay)
    logger.info("profit sharing of %s failed (%s); retry in %.0f s", sharing.order_id, error, delay)
    return delay


def _give_up(sharing: ProfitSharing, error: str) -> None:
    sharing.status, sharing.last_error, sharing.updated_at = "failed", error[:300], utcnow()
    logger.warning("profit sharing of %s failed: %s", sharing.order_id, error)
