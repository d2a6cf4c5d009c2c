"""Payment upstreams behind one small interface (orders, notifications, refunds): WeChat Pay v3 and Alipay.

`build_channel` turns a stored payment config (mode + params) into a ready client; the domain never needs
to know which upstream it is talking to except to pick a notify endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payment_service.channels.alipay import GATEWAY_URL, AlipayClient, AlipayCredentials
from payment_service.channels.base import (
    ChannelError,
    CreatedOrder,
    NotificationRejected,
    NotifyReply,
    OrderRequest,
    PaidNotice,
    PaymentChannel,
    QueriedOrder,
)
from payment_service.channels.refunds import RefundNotice, RefundRequest, RefundResult, RefundState
from payment_service.channels.wechat import (
    API_BASE_URL,
    ProfitSharingReturnOrder,
    SharingReceiver,
    SharingReturn,
    SharingTransfer,
    WechatCredentials,
    WechatPayClient,
    notification_key_id,
    split_amounts,
)

__all__ = [
    "AlipayClient",
    "AlipayCredentials",
    "CHANNEL_BY_MODE",
    "ChannelError",
    "CreatedOrder",
    "NotificationRejected",
    "NotifyReply",
    "OrderRequest",
    "PaidNotice",
    "PaymentChannel",
    "ProfitSharingReturnOrder",
    "QueriedOrder",
    "RefundNotice",
    "RefundRequest",
    "RefundResult",
    "RefundState",
    "SharingReceiver",
    "SharingReturn",
    "SharingTransfer",
    "WechatCredentials",
    "WechatPayClient",
    "build_channel",
    "notification_key_id",
    "split_amounts",
]

# The contract's rule: the channel is derived from the config mode.
CHANNEL_BY_MODE = {"wechat_split": "wechat", "wechat_direct": "wechat", "alipay_direct": "alipay"}


def build_channel(
    mode: str,
    params: Mapping[str, Any],
    *,
    wechat_base_url: str = API_BASE_URL,
    alipay_gateway_url: str = GATEWAY_URL,
    timeout: float = 10.0,
) -> PaymentChannel:
    """A client for one payment config. Raises ValueError (KeyFormatError for keys) if params are unusable."""
    if mode in ("wechat_split", "wechat_direct"):
        credentials = WechatCredentials.from_params(mode, params)
        return WechatPayClient(credentials, mode, base_url=wechat_base_url, timeout=timeout)
    if mode == "alipay_direct":
        return AlipayClient(
            AlipayCredentials.from_params(params), gateway_url=alipay_gateway_url, timeout=timeout
        )
    raise ValueError(f"unknown payment mode: {mode!r}")
