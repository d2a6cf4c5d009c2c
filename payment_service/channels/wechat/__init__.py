"""WeChat Pay API v3 for mini-program (JSAPI) payments, service-provider (partner) and direct merchant modes.

Written on requests + cryptography from the v3 protocol: requests are signed over the exact bytes sent,
every 2xx answer and every notification is verified with the WeChat Pay public key before it is read.
`client` holds the API calls and `transport` the signed round trip they share, `signing` the signatures both
ways, `notifications` their decryption and reading, `credentials`, `profit_sharing`, `refunds` and
`transactions` the data they exchange.
"""

from __future__ import annotations

from payment_service.channels.wechat.client import API_BASE_URL, WechatPayClient
from payment_service.channels.wechat.credentials import WechatCredentials, WechatMode
from payment_service.channels.wechat.notifications import notification_key_id
from payment_service.channels.wechat.profit_sharing import (
    ProfitSharingOrder,
    ProfitSharingReceiverResult,
    ProfitSharingReturnOrder,
    SharingReceiver,
    SharingReturn,
    SharingTransfer,
    split_amounts,
)
from payment_service.channels.wechat.transport import RETRYABLE_CODES

__all__ = [
    "API_BASE_URL",
    "ProfitSharingOrder",
    "ProfitSharingReceiverResult",
    "ProfitSharingReturnOrder",
    "RETRYABLE_CODES",
    "SharingReceiver",
    "SharingReturn",
    "SharingTransfer",
    "WechatCredentials",
    "WechatMode",
    "WechatPayClient",
    "notification_key_id",
    "split_amounts",
]
