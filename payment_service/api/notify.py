"""``/api/v1/payment/notify/{wechat,alipay}[/{config_id}]``: the upstreams' payment notifications; and
``/api/v1/payment/notify/wechat/refunds/{config_id}``: WeChat Pay's refund notifications.

No API key: the upstream's signature is the authentication. These endpoints answer in the upstream's own
format, not the envelope, because that is what stops (or keeps) its redelivery: WeChat 204 with no body,
or 4xx/5xx with ``{"code":"FAIL","message":"失败"}``; Alipay the plain body ``success``, or ``fail``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from flask import Response, request
from flask.views import MethodView

from payment_service.api.notify_bodies import ALIPAY_NOTICE, WECHAT_NOTICE
from payment_service.channels import NotificationRejected
from payment_service.extensions import db
from payment_service.metrics import NOTIFICATION_REJECTED
from payment_service.orders import notifications
from payment_service.refunds.notifications import receive_wechat_refund
from shared.api import Blueprint, operation

logger = logging.getLogger(__name__)

blp = Blueprint(
    "payment_notify",
    __name__,
    url_prefix="/api/v1/payment/notify",
    description="Payment notifications from WeChat Pay and Alipay (signed by the upstream, no API key)",
)

WECHAT_FAIL = json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False)

WECHAT_RESPONSES = {
    204: {"description": "Accepted: the payment is recorded (or was already)"},
    400: {"description": 'Refused, nothing changed: {"code":"FAIL","message":"失败"}'},
    500: {"description": 'Could not be processed now; WeChat redelivers: {"code":"FAIL","message":"失败"}'},
}
ALIPAY_RESPONSES = {
    200: {"description": "Accepted: the plain body success"},
    400: {"description": "Refused, nothing changed: the plain body fail"},
    500: {"description": "Could not be processed now; Alipay redelivers: the plain body fail"},
}


def _wechat_reply(status: int) -> Response:
    if status == 204:
        return Response(status=204)
    return Response(WECHAT_FAIL, status=status, content_type="application/json")


def _alipay_reply(status: int) -> Response:
    return Response("success" if status == 200 else "fail", status=status, content_type="text/plain")


def _handle(
    channel: str, receive: Callable, reply: Callable[[int], Response], ok_status: int, config_id=None
):
    body = request.get_data(cache=True)
    # Nothing to roll back here: the reads run alone and the one change, the paid transition, is a
    # transaction of its own (``orders.states.mark_paid``) that commits or rolls itself back.
    try:
        receive(db.session, dict(request.headers), body, config_id)
    except NotificationRejected as exc:
        NOTIFICATION_REJECTED.labels(channel).inc()
        logger.warning(
            "%s notification refused (config %s, from %s): %s", channel, config_id, request.remote_addr, exc
        )
        return reply(400)
    except Exception:
        logger.exception("%s notification could not be processed (config %s)", channel, config_id)
        return reply(500)
    return reply(ok_status)


@blp.route("/wechat")
class WechatNotify(MethodView):
    @blp.doc(security=[], responses=WECHAT_RESPONSES, **WECHAT_NOTICE)
    @blp.doc(**operation("wechat_notification"))
    def post(self):
        """WeChat Pay payment notification (the contract's path; the config is found by Wechatpay-Serial)"""
        return _handle("wechat", notifications.receive_wechat, _wechat_reply, 204)


@blp.route("/wechat/<config_id>")
class WechatConfigNotify(MethodView):
    @blp.doc(security=[], responses=WECHAT_RESPONSES, **WECHAT_NOTICE)
    @blp.doc(**operation("wechat_notification_of_config"))
    def post(self, config_id: str):
        """WeChat Pay payment notification for one config (the notify_url given to WeChat)"""
        return _handle("wechat", notifications.receive_wechat, _wechat_reply, 204, config_id)


@blp.route("/alipay")
class AlipayNotify(MethodView):
    @blp.doc(security=[], responses=ALIPAY_RESPONSES, **ALIPAY_NOTICE)
    @blp.doc(**operation("alipay_notification"))
    def post(self):
        """Alipay payment notification (the contract's path; the config is found by out_trade_no)"""
        return _handle("alipay", notifications.receive_alipay, _alipay_reply, 200)


@blp.route("/alipay/<config_id>")
class AlipayConfigNotify(MethodView):
    @blp.doc(security=[], responses=ALIPAY_RESPONSES, **ALIPAY_NOTICE)
    @blp.doc(**operation("alipay_notification_of_config"))
    def post(self, config_id: str):
        """Alipay payment notification for one config (the notify_url given to Alipay)"""
        return _handle("alipay", notifications.receive_alipay, _alipay_reply, 200, config_id)


@blp.route("/wechat/refunds/<config_id>")
class WechatRefundNotify(MethodView):
    @blp.doc(security=[], responses=WECHAT_RESPONSES, **WECHAT_NOTICE)
    @blp.doc(**operation("wechat_refund_notification"))
    def post(self, config_id: str):
        """WeChat Pay refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED) for one config"""
        return _handle("wechat", receive_wechat_refund, _wechat_reply, 204, config_id)
