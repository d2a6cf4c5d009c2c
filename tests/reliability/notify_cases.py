"""Generated cases of the notify operations made into notifications WeChat Pay and Alipay really send.

The notify endpoints accept only what the upstream signed, for an order (or refund) it knows. So orders are
placed and paid, and a refund settled, through the fakes first; each generated case then becomes a
redelivery of one of their notifications, built and signed by the fakes with the keys the configs trust.
What the upstream varies from one notification to the next (the notification's id, its time, the summary)
keeps its generated value; what is signed or encrypted is the upstream's.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

from schemathesis import Case

from tests.fakes.alipay import FakeAlipay
from tests.fakes.wechatpay import FakeWechatPay
from tests.fakes.wechatpay_protocol import dumps
from tests.payment.orders.helpers import ALIPAY_SITE, DIRECT_SITE, WECHAT_SITE, route_notifications_to
from tests.payment.refunds.helpers import paid_order, refunded

NOTIFY = "POST /api/v1/payment/notify"
# Fields of a notification the upstream sets anew on each delivery; the generated values are kept.
WECHAT_VARYING = ("id", "create_time", "summary")
ALIPAY_VARYING = ("notify_id", "notify_time")

Signer = Callable[[Case], None]


def upstream_notifications(
    client, api_key: str, wechat: FakeWechatPay, alipay: FakeAlipay, configs: dict[str, str]
) -> dict[str, Signer]:
    """Pay a wechat_split, a wechat_direct and an Alipay order and settle a refund of the direct one, the
    fakes' notifications posted into ``client``; returns, per notify operation, what signs its cases.
    ``configs``: the config ids by mode (``set_up_sites``)."""
    route_notifications_to(client, wechat, alipay)
    split = paid_order(client, api_key, wechat, site_id=WECHAT_SITE)
    direct = paid_order(client, api_key, wechat, site_id=DIRECT_SITE)
    by_alipay = paid_order(client, api_key, alipay, site_id=ALIPAY_SITE, channel="alipay")
    refund_id = refunded(client, api_key, direct, amount=5)["refund_id"]
    settled = wechat.settle_refund(refund_id)
    assert settled is not None and settled.acknowledged, settled

    wechat_orders = [
        (configs["wechat_split"], wechat.find_order(split)),
        (configs["wechat_direct"], wechat.find_order(direct)),
    ]
    alipay_trades = [(configs["alipay_direct"], alipay.find_trade(by_alipay))]
    refunds = [(configs["wechat_direct"], wechat.find_refund(refund_id))]
    return {
        f"{NOTIFY}/wechat": wechat_signer(wechat, wechat_orders, wechat.build_notification, by_config=False),
        f"{NOTIFY}/wechat/{{config_id}}": wechat_signer(wechat, wechat_orders, wechat.build_notification),
        f"{NOTIFY}/wechat/refunds/{{config_id}}": wechat_signer(
            wechat, refunds, wechat.build_refund_notification
        ),
        f"{NOTIFY}/alipay": alipay_signer(alipay, alipay_trades, by_config=False),
        f"{NOTIFY}/alipay/{{config_id}}": alipay_signer(alipay, alipay_trades),
    }


def wechat_signer(
    wechat: FakeWechatPay,
    targets: Iterable[tuple[str, Any]],
    build: Callable[[Any], tuple[dict[str, str], bytes]],
    *,
    by_config: bool = True,
) -> Signer:
    """Each case becomes ``build``'s notification of the next target (config id, the fake's order or refund),
    its envelope keeping the generated id, time and summary, signed again over the exact bytes sent."""
    cycle = itertools.cycle(targets)

    def sign(case: Case) -> None:
        config_id, target = next(cycle)
        _, body = build(target)
        envelope = json.loads(body)
        generated = case.body if isinstance(case.body, dict) else {}
        envelope.update({name: generated[name] for name in WECHAT_VARYING if name in generated})
        case.body = dumps(envelope)
        case.headers = {
            **(case.headers or {}),
            "Content-Type": "application/json",
            **wechat.signature_headers(case.body),
        }
        if by_config:
            case.path_parameters["config_id"] = config_id

    return sign


def alipay_signer(
    alipay: FakeAlipay, targets: Iterable[tuple[str, Any]], *, by_config: bool = True
) -> Signer:
    """Each case becomes the signed form of the next trade (config id, the fake's trade), keeping the
    generated notify_id and notify_time."""
    cycle = itertools.cycle(targets)

    def sign(case: Case) -> None:
        config_id, trade = next(cycle)
        generated = case.body if isinstance(case.body, dict) else {}
        varying = {name: generated[name] for name in ALIPAY_VARYING if isinstance(generated.get(name), str)}
        case.body = alipay.build_notification(trade, **varying)
        if by_config:
            case.path_parameters["config_id"] = config_id

    return sign
