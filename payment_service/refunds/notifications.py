"""WeChat Pay refund notifications (REFUND.SUCCESS / ABNORMAL / CLOSED) at ``notify/wechat/refunds/{config}``.

Verified and decrypted with the config the URL names, then matched against our refund: its order must be this
config's, the out_trade_no the order's, the amounts the refund's and the order's. Anything else raises
:class:`NotificationRejected`, is logged and changes nothing; an authentic one settles the refund through
the guarded transition, so a duplicate (concurrent ones included) changes nothing either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_service.channels import NotificationRejected, RefundNotice, WechatPayClient
from payment_service.configs.merchant_channels import channel_for
from payment_service.models import PaymentConfig, PaymentOrder, Refund
from payment_service.refunds.states import ABNORMAL, Settlement, settle

logger = logging.getLogger(__name__)


def receive_wechat_refund(
    session: Session, headers: Mapping[str, str], body: bytes, config_id: str | None
) -> RefundNotice:
    config = session.get(PaymentConfig, config_id or "")
    if config is None or not config.mode.startswith("wechat"):
        raise NotificationRejected(f"no WeChat Pay config {config_id!r}")
    try:
        client = channel_for(config)
    except ValueError as exc:
        raise NotificationRejected(f"config {config.id} unusable ({exc})") from None
    if not isinstance(client, WechatPayClient):
        raise NotificationRejected(f"config {config.id} is not WeChat Pay")
    notice = client.parse_refund_notification(headers, body)
    row = session.execute(
        select(Refund.id, Refund.amount_fen, Refund.status, PaymentOrder.id.label("order_id"))
        .join(PaymentOrder, PaymentOrder.id == Refund.order_id)
        .add_columns(PaymentOrder.config_id, PaymentOrder.amount_fen.label("order_amount_fen"))
        .where(Refund.id == notice.refund_id)
    ).first()
    session.rollback()  # the read's transaction: nothing held while settling
    if row is None or row.config_id != config.id or row.order_id != notice.out_trade_no:
        raise NotificationRejected(f"unknown refund {notice.refund_id!r} of {notice.out_trade_no!r}")
    if notice.amount_fen != row.amount_fen or notice.total_fen != row.order_amount_fen:
        logger.error(
            "refund %s: notified %s of %s fen, asked %s of %s fen; nothing changed",
            row.id,
            notice.amount_fen,
            notice.total_fen,
            row.amount_fen,
            row.order_amount_fen,
        )
        raise NotificationRejected(f"refund {row.id}: amount does not match")
    outcome = _settlement(notice)
    if outcome is None:
        logger.info("refund %s: notified %s, still processing", row.id, notice.upstream_status)
        return notice
    if row.status != "processing" or not settle(session, row.id, outcome):
        logger.info(
            "refund %s: duplicate %s notification (already %s)", row.id, notice.upstream_status, row.status
        )
    return notice


def _settlement(notice: RefundNotice) -> Settlement | None:
    common = {
        "upstream_status": notice.upstream_status,
        "channel_refund_id": notice.channel_refund_id,
        "success_at": notice.refunded_at,
    }
    if notice.state == "success":
        return Settlement("success", **common)
    if notice.state == "failed":
        return Settlement("failed", error_code=f"REFUND_{notice.upstream_status}", **common)
    if notice.upstream_status == "ABNORMAL":
        return Settlement("failed", error_code=ABNORMAL, **common)
    return None
