"""Payment notifications from WeChat Pay and Alipay: verify, match against the order, mark it paid once.

No API key: the upstream's signature is the authentication. The config that verifies a notification is
named by the notify URL's last path segment (``/notify/wechat/{config_id}``); on the bare contract paths it
is found from the notification itself: for WeChat by the key that signed it (``Wechatpay-Serial`` =
``wechatpay_public_key_id``), for Alipay by ``out_trade_no`` → order → config. A notification that fails
any check raises :class:`NotificationRejected` and changes nothing.

This is the hottest path of the service (WeChat redelivers until it gets its 204), so it reads with a few
Core statements built once: on the per-config path, the client this process already holds for the config
verifies the notification first, and one query then reads the config row (to confirm that client is
still the current one; if it is not, the notification is verified again with the current row) together
with the order. A duplicate of an order already paid changes nothing and needs no transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from payment_service.channels import NotificationRejected, PaidNotice, notification_key_id
from payment_service.configs.merchant_channels import channel_for, last_built
from payment_service.models import PaymentConfig, PaymentOrder
from payment_service.orders.states import mark_paid
from shared.db import read_alone

logger = logging.getLogger(__name__)

WECHAT_MODES = ("wechat_split", "wechat_direct")
ALIPAY_MODES = ("alipay_direct",)
# Configs tried for one notification on the bare WeChat path (partner configs share the provider's key).
MAX_CANDIDATES = 100

_configs = PaymentConfig.__table__
_orders = PaymentOrder.__table__
_CONFIG_COLUMNS = (
    _configs.c.id,
    _configs.c.mode,
    _configs.c.params,
    _configs.c.secrets_sealed,
    _configs.c.secret_key_id,
)
_ORDER_COLUMNS = (
    _orders.c.id.label("order_id"),
    _orders.c.config_id.label("order_config_id"),
    _orders.c.amount_fen.label("order_amount_fen"),
    _orders.c.status.label("order_status"),
)
_CONFIG_BY_ID = select(*_CONFIG_COLUMNS).where(_configs.c.id == bindparam("config_id"))
_ORDER_BY_ID = select(*_ORDER_COLUMNS).where(_orders.c.id == bindparam("order_id"))
_ORDER_CONFIG = select(_orders.c.config_id).where(_orders.c.id == bindparam("order_id"))
# The config and, when it is this config's, the order: one round trip once a notification is read.
_CONFIG_WITH_ORDER = (
    select(*_CONFIG_COLUMNS, *_ORDER_COLUMNS)
    .select_from(
        _configs.outerjoin(
            _orders, and_(_orders.c.id == bindparam("order_id"), _orders.c.config_id == _configs.c.id)
        )
    )
    .where(_configs.c.id == bindparam("config_id"))
)
_CONFIGS_BY_WECHAT_KEY = (
    select(*_CONFIG_COLUMNS)
    .where(
        _configs.c.mode.in_(WECHAT_MODES),
        _configs.c.params["wechatpay_public_key_id"].as_string() == bindparam("key_id"),
    )
    .limit(MAX_CANDIDATES)
)


def receive_wechat(
    session: Session, headers: Mapping[str, str], body: bytes, config_id: str | None = None
) -> PaidNotice:
    """Handle a WeChat Pay notification as received (raw body bytes)."""
    if config_id is not None:
        return _settle(session, *_verify_for_config(session, config_id, WECHAT_MODES, headers, body))
    key_id = notification_key_id(headers)
    candidates = read_alone(session, _CONFIGS_BY_WECHAT_KEY, {"key_id": key_id}) if key_id else []
    config, notice = _verify(candidates, headers, body)
    return _settle(session, config, notice, _order_of(session, notice))


def receive_alipay(
    session: Session, headers: Mapping[str, str], body: bytes, config_id: str | None = None
) -> PaidNotice:
    """Handle an Alipay notification as received (the raw form body)."""
    if config_id is None:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        config_id = _first(session, _ORDER_CONFIG, {"order_id": form.get("out_trade_no") or ""})
        config_id = config_id.config_id if config_id is not None else None
        if config_id is None:
            raise NotificationRejected("no payment config can verify it")
    return _settle(session, *_verify_for_config(session, config_id, ALIPAY_MODES, headers, body))


def _verify_for_config(
    session: Session, config_id: str, modes: tuple[str, ...], headers: Mapping[str, str], body: bytes
) -> tuple[Row, PaidNotice, Row | None]:
    """Verify with the config ``config_id`` as it is now; returns its row, the notice and its order row."""
    cached = last_built(config_id)
    if cached is not None:
        try:
            guess = cached.channel.read_notification(headers, body)
        except (NotificationRejected, ValueError):
            guess = None
        if guess is not None:
            row = _first(
                session, _CONFIG_WITH_ORDER, {"config_id": config_id, "order_id": guess.out_trade_no}
            )
            if row is not None and row.mode in modes and cached.matches(row):
                return row, guess, row if row.order_id is not None else None
    # No client yet, or it refused, or its config changed since: verify with the row as it is now.
    config = _first(session, _CONFIG_BY_ID, {"config_id": config_id})
    candidates = [config] if config is not None and config.mode in modes else []
    config, notice = _verify(candidates, headers, body)
    return config, notice, _order_of(session, notice)


def _verify(candidates: Sequence[Row], headers: Mapping[str, str], body: bytes) -> tuple[Row, PaidNotice]:
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


def _order_of(session: Session, notice: PaidNotice) -> Row | None:
    return _first(session, _ORDER_BY_ID, {"order_id": notice.out_trade_no})


def _first(session: Session, statement, parameters: dict[str, Any]) -> Row | None:
    """Reads outside a transaction (autocommit): the paid transition that follows is one statement too."""
    rows = read_alone(session, statement, parameters)
    return rows[0] if rows else None


def _settle(session: Session, config: Any, notice: PaidNotice, order: Row | None) -> PaidNotice:
    """Match an authentic notice against its order, then mark the order paid (once)."""
    if order is None or order.order_config_id != config.id:
        raise NotificationRejected(f"unknown order {notice.out_trade_no!r} for config {config.id}")
    if notice.amount_fen != order.order_amount_fen:
        raise NotificationRejected(
            f"order {order.order_id}: amount {notice.amount_fen} fen notified, "
            f"{order.order_amount_fen} fen ordered"
        )
    if not notice.paid:
        logger.info(
            "order %s: notified trade state %s, nothing to change", order.order_id, notice.trade_state
        )
        return notice
    # Paid is final: a redelivery needs no write. Any other status goes through the guarded transition,
    # which alone decides between concurrent deliveries.
    if order.order_status == "paid" or not mark_paid(
        session, order.order_id, notice.channel_transaction_id, notice.paid_at
    ):
        logger.info("order %s: duplicate paid notification (already paid)", order.order_id)
    return notice
