"""Payment notifications from WeChat Pay and Alipay: verify, match against the order, mark it paid once.

No API key: the upstream's signature is the authentication. The config that verifies a notification is
named by the notify URL's last path segment (``/notify/wechat/{config_id}``); on the bare contract paths it
is found from the notification itself: for WeChat by the key that signed it (``Wechatpay-Serial`` =
``wechatpay_public_key_id``), for Alipay by ``out_trade_no`` → order → config. A notification that fails
any check raises :class:`NotificationRejected` and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_service.channels import NotificationRejected, PaidNotice, notification_key_id
from payment_service.merchant_channels import channel_for
from payment_service.models import PaymentConfig, PaymentOrder
from payment_service.order_states import mark_paid

logger = logging.getLogger(__name__)

WECHAT_MODES = ("wechat_split", "wechat_direct")
ALIPAY_MODES = ("alipay_direct",)
# Configs tried for one notification on the bare WeChat path (partner configs share the provider's key).
MAX_CANDIDATES = 100


def receive_wechat(
    session: Session, headers: Mapping[str, str], body: bytes, config_id: str | None = None
) -> PaidNotice:
    """Handle a WeChat Pay notification as received (raw body bytes)."""
    if config_id is not None:
        candidates = _configs_by_id(session, config_id, WECHAT_MODES)
    else:
        key_id = notification_key_id(headers)
        candidates = (
            session.scalars(
                select(PaymentConfig)
                .where(
                    PaymentConfig.mode.in_(WECHAT_MODES),
                    PaymentConfig.params["wechatpay_public_key_id"].as_string() == key_id,
                )
                .limit(MAX_CANDIDATES)
            ).all()
            if key_id
            else []
        )
    return _settle(session, *_verify(candidates, headers, body))


def receive_alipay(
    session: Session, headers: Mapping[str, str], body: bytes, config_id: str | None = None
) -> PaidNotice:
    """Handle an Alipay notification as received (the raw form body)."""
    if config_id is not None:
        candidates = _configs_by_id(session, config_id, ALIPAY_MODES)
    else:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        order = session.get(PaymentOrder, form.get("out_trade_no") or "")
        candidates = _configs_by_id(session, order.config_id, ALIPAY_MODES) if order is not None else []
    return _settle(session, *_verify(candidates, headers, body))


def _configs_by_id(session: Session, config_id: str, modes: tuple[str, ...]) -> list[PaymentConfig]:
    config = session.get(PaymentConfig, config_id)
    return [config] if config is not None and config.mode in modes else []


def _verify(
    candidates: Sequence[PaymentConfig], headers: Mapping[str, str], body: bytes
) -> tuple[PaymentConfig, PaidNotice]:
    """The first candidate config whose keys verify (and decrypt) the notification, with what it says."""
    reasons = []
    for config in candidates:
        try:
            return config, channel_for(config).read_notification(headers, body)
        except NotificationRejected as exc:
            reasons.append(f"{config.id}: {exc}")
        except ValueError as exc:
            reasons.append(f"{config.id}: config unusable ({exc})")
    raise NotificationRejected("; ".join(reasons) or "no payment config can verify it")


def _settle(session: Session, config: PaymentConfig, notice: PaidNotice) -> PaidNotice:
    """Match an authentic notice against its order, then mark the order paid (once)."""
    order = session.get(PaymentOrder, notice.out_trade_no)
    if order is None or order.config_id != config.id:
        raise NotificationRejected(f"unknown order {notice.out_trade_no!r} for config {config.id}")
    if notice.amount_fen != order.amount_fen:
        raise NotificationRejected(
            f"order {order.id}: amount {notice.amount_fen} fen notified, {order.amount_fen} fen ordered"
        )
    if not notice.paid:
        logger.info("order %s: notified trade state %s, nothing to change", order.id, notice.trade_state)
        return notice
    if not mark_paid(session, order.id, notice.channel_transaction_id, notice.paid_at):
        logger.info("order %s: duplicate paid notification (already %s)", order.id, order.status)
    return notice
