"""Delivery receipts pushed by the upstreams (no API key: the URL carries ``?token=<SMS_RECEIPT_TOKEN>``).

Each upstream gets the acknowledgement it expects, else it pushes again. With no token configured the
endpoints do not exist (404).
"""

from __future__ import annotations

import hmac

import marshmallow as ma
from flask import current_app, jsonify, request
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint, operation
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


CHINA_TIME = {"type": "string", "example": "2026-05-10 10:00:05", "description": "Beijing time"}


class AliyunReceiptSchema(ma.Schema):
    """One item of Aliyun's SmsReport push, as Aliyun sends it (the providers' parsers read the body)."""

    phone_number = ma.fields.String(required=True, metadata={"example": "13800138000"})
    success = ma.fields.Boolean(required=True)
    send_time = ma.fields.String(metadata=CHINA_TIME)
    report_time = ma.fields.String(metadata=CHINA_TIME)
    err_code = ma.fields.String(metadata={"example": "DELIVERED"})
    err_msg = ma.fields.String(metadata={"example": "用户接收成功"})
    sms_size = ma.fields.String(metadata={"example": "1"})
    biz_id = ma.fields.String()
    out_id = ma.fields.String(metadata={"description": "The message id (or call reference) the service sent"})


class TencentReceiptSchema(ma.Schema):
    """One item of Tencent's SMS status callback, as Tencent sends it."""

    mobile = ma.fields.String(required=True, metadata={"example": "13800138000"})
    report_status = ma.fields.String(required=True, validate=validate.OneOf(["SUCCESS", "FAIL"]))
    user_receive_time = ma.fields.String(metadata=CHINA_TIME)
    nationcode = ma.fields.String(metadata={"example": "86"})
    errmsg = ma.fields.String(metadata={"example": "DELIVRD"})
    description = ma.fields.String(metadata={"example": "用户短信送达成功"})
    sid = ma.fields.String(metadata={"description": "The SerialNo of the message"})


def pushed_array(schema: type[ma.Schema]) -> dict:
    """The request body of a push: a JSON array of ``schema`` items."""
    return {"required": True, "content": {"application/json": {"schema": {"type": "array", "items": schema}}}}


ACKS = {"aliyun": {"code": 0, "msg": "接收成功"}, "tencent": {"result": 0, "errmsg": "OK"}}


def check_token() -> None:
    """``?token=`` must be ``SMS_RECEIPT_TOKEN`` (else 401); unset, the endpoint does not exist (404)."""
    expected = current_app.config.get("RECEIPT_TOKEN") or ""
    if not expected:
        raise NotFoundError()
    supplied = request.args.get("token", "")
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise UnauthorizedError("状态报告地址的 token 无效")


def receive(provider: str):
    check_token()
    try:
        reports = receipts.parse_push(provider, request.get_data())
    except ValueError as exc:
        raise BadRequestError(f"状态报告格式不正确: {exc}") from None
    receipts.apply_reports(db.session, reports)
    return jsonify(ACKS[provider])


@blp.route("/aliyun")
class AliyunReceipts(MethodView):
    @blp.doc(
        **operation("aliyun_receipts"),
        security=[],
        requestBody=pushed_array(AliyunReceiptSchema),
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
        **operation("tencent_receipts"),
        security=[],
        requestBody=pushed_array(TencentReceiptSchema),
        parameters=[{"in": "query", "name": "token", "required": True, "schema": {"type": "string"}}],
    )
    @blp.response(200, TencentAckSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self):
        """Tencent SMS status callback: a JSON array; answers {"result": 0, "errmsg": "OK"}"""
        return receive("tencent")
