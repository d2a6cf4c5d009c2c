"""Replies from mobiles: the upstreams' uplink pushes (``?token=<SMS_RECEIPT_TOKEN>``, like the receipts) and
``GET /api/v1/sms/uplinks``, a tenant's replies (scope ``sms:admin``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from functools import wraps

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from marshmallow import validate

from shared.api import ONE_OR_MANY, Blueprint, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok, page_schema
from shared.paging import PageArgsSchema
from sms_service.api.common import Mobile, UtcTime
from sms_service.api.receipts import CHINA_TIME, AliyunAckSchema, TencentAckSchema, check_token
from sms_service.extensions import db
from sms_service.mobiles import mask_mobile
from sms_service.replies import receiving
from sms_service.replies.receiving import IncomingReply

blp = Blueprint("sms_uplinks", __name__, url_prefix="/api/v1/sms/uplinks", description="上行短信 (用户回复)")

BEIJING = timezone(timedelta(hours=8))
LATEST_UNIX_TIME = 4_102_444_800  # 2100-01-01: a later "time" is not a reply's


class ChinaTime(ma.fields.String):
    """``2017-09-01 00:00:00`` in Beijing time, loaded as a UTC datetime."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).update(CHINA_TIME)
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            local = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise ma.ValidationError("时间格式应为 YYYY-MM-DD HH:MM:SS") from None
        return local.replace(tzinfo=BEIJING).astimezone(UTC)


class SequenceId(ma.fields.Field):
    """Aliyun's ``sequence_id``: a string in its current documentation, a number in older pages."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).update(
            {"type": ["string", "integer"], "example": "1234567890", "description": "A string or a number"}
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and 0 < len(value.strip()) <= 64:
            return value.strip()
        raise ma.ValidationError("sequence_id 应为字符串或整数")


def _blank_is_none(value: str | None) -> str | None:
    return (value or "").strip() or None


class AliyunUplinkSchema(ma.Schema):
    """One item of Aliyun's SmsUp push, as Aliyun sends it: its current pages show no ``sign_name`` and
    ``sequence_id`` as a string, older ones ``sign_name`` and a number; both load."""

    class Meta:
        unknown = ma.EXCLUDE

    phone_number = Mobile(required=True)
    send_time = ChinaTime(required=True)
    content = ma.fields.String(required=True, validate=validate.Length(max=1000), metadata={"example": "TD"})
    sign_name = ma.fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=40), metadata={"example": "洗衣云"}
    )
    dest_code = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    sequence_id = SequenceId(load_default=None, allow_none=True)

    @ma.post_load
    def reply(self, item, **kwargs) -> IncomingReply:
        return IncomingReply(
            provider="aliyun",
            mobile=item["phone_number"],
            text=item["content"],
            sign_name=_blank_is_none(item["sign_name"]),
            extension=_blank_is_none(item["dest_code"]),
            upstream_id=item["sequence_id"],
            replied_at=item["send_time"],
        )


class TencentUplinkSchema(ma.Schema):
    """One reply of Tencent's SMS reply callback, as Tencent sends it (one object, or an array of them)."""

    class Meta:
        unknown = ma.EXCLUDE

    mobile = Mobile(required=True)
    nationcode = ma.fields.String(load_default="86", validate=validate.OneOf(["86"]))
    text = ma.fields.String(required=True, validate=validate.Length(max=1000), metadata={"example": "TD"})
    sign = ma.fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=40), metadata={"example": "洗衣云"}
    )
    time = ma.fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=LATEST_UNIX_TIME),
        metadata={"description": "Unix time of the reply, in seconds", "example": 1457336869},
    )
    extend = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))

    @ma.pre_load(pass_collection=True)
    def as_list(self, data, many, **kwargs):
        return [data] if many and isinstance(data, dict) else data

    @ma.post_load
    def reply(self, item, **kwargs) -> IncomingReply:
        return IncomingReply(
            provider="tencent",
            mobile=item["mobile"],
            text=item["text"],
            sign_name=_blank_is_none(item["sign"]),
            extension=_blank_is_none(item["extend"]),
            replied_at=datetime.fromtimestamp(item["time"], UTC),
        )


class ReplySchema(ma.Schema):
    mobile = ma.fields.Function(lambda row: mask_mobile(row.mobile), metadata={"type": "string"})
    text = ma.fields.String()
    sign_name = ma.fields.String(allow_none=True, metadata={"description": "null when the push carried none"})
    provider = ma.fields.String(validate=validate.OneOf(["aliyun", "tencent"]))
    received_at = UtcTime()


TOKEN_PARAMETER = {"in": "query", "name": "token", "required": True, "schema": {"type": "string"}}


def token_required(view):
    """Checked before the body is read: a caller without the token learns nothing about the format."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        check_token()
        return view(*args, **kwargs)

    return wrapper


@blp.route("/aliyun")
class AliyunUplinks(MethodView):
    @token_required
    @blp.doc(
        **operation("aliyun_uplinks"),
        security=[],
        parameters=[TOKEN_PARAMETER],
    )
    @blp.arguments(AliyunUplinkSchema(many=True))
    @blp.response(200, AliyunAckSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self, replies):
        """Aliyun SmsUp push: a JSON array of replies; answers {"code": 0, "msg": "成功"}"""
        receiving.receive(db.session, replies)
        return jsonify({"code": 0, "msg": "成功"})


@blp.route("/tencent")
class TencentUplinks(MethodView):
    @token_required
    @blp.doc(
        **operation("tencent_uplinks"),
        **{ONE_OR_MANY: True},
        security=[],
        parameters=[TOKEN_PARAMETER],
    )
    @blp.arguments(TencentUplinkSchema(many=True))
    @blp.response(200, TencentAckSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self, replies):
        """Tencent SMS reply callback: one reply object or an array; answers {"result": 0, "errmsg": "OK"}"""
        receiving.receive(db.session, replies)
        return jsonify({"result": 0, "errmsg": "OK"})


@blp.route("")
class Uplinks(MethodView):
    @require_scope("sms:admin")
    @blp.doc(**operation("list_uplinks"))
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, envelope(page_schema(ReplySchema)))
    def get(self, args):
        """The replies attributed to the tenant, newest first (mobiles masked)"""
        rows, total = receiving.list_replies(
            db.session, current_principal().tenant_id, args["page"], args["size"]
        )
        return ok({"list": rows, "total": total, "page": args["page"], "size": args["size"]})
