"""Delivery receipts pushed by the upstreams (no API key: the URL carries ``?token=<SMS_RECEIPT_TOKEN>``).

Each upstream gets the acknowledgement it expects, else it pushes again. With no token configured the
endpoints do not exist (404).
"""

from __future__ import annotations

import hmac

import marshmallow as ma
from flask import current_app, jsonify, request
from flask.views import MethodView

from shared.api import Blueprint
from shared.envelope import BadRequestError, NotFoundError, UnauthorizedError
from sms_service.delivery import receipts
from sms_service.extensions import db

blp = Blueprint("sms_receipts", __name__, url_prefix="/api/v1/sms/receipts", description="上游状态报告")


class AliyunAckSchema(ma.Schema):
    code = ma.fields.Integer()
    msg = ma.fields.String()


class TencentAckSchema(ma.Schema):
    result = ma.fields.Integer()
    errmsg = ma.fields.String()


ACKS = {"aliyun": {"code": 0, "msg": "接收成功"}, "tencent": {"result": 0, "errmsg": "OK"}}


def receive(provider: str):
    expected = current_app.config.get("RECEIPT_TOKEN") or ""
    if not expected:
        raise NotFoundError()
    supplied = request.args.get("token", "")
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise UnauthorizedError("状态报告地址的 token 无效")
    try:
        reports = receipts.parse_push(provider, request.get_data())
    except ValueError as exc:
        raise BadRequestError(f"状态报告格式不正确: {exc}") from None
    receipts.apply_reports(db.session, reports)
    return jsonify(ACKS[provider])


@blp.route("/aliyun")
class AliyunReceipts(MethodView):
    @blp.doc(
        security=[],
        parameters=[{"in": "query", "name": "token", "required": True, "schema": {"type": "string"}}],
    )
    @blp.response(200, AliyunAckSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self):
        """Aliyun SmsReport push: a JSON array; answers {"code": 0, "msg": "接收成功"}"""
        return receive("aliyun")


@blp.route("/tencent")
class TencentReceipts(MethodView):
    @blp.doc(
        security=[],
        parameters=[{"in": "query", "name": "token", "required": True, "schema": {"type": "string"}}],
    )
    @blp.response(200, TencentAckSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self):
        """Tencent SMS status callback: a JSON array; answers {"result": 0, "errmsg": "OK"}"""
        return receive("tencent")
