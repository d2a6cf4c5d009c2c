"""``/api/v1/sms/stats``: a tenant's usage over Beijing calendar days (scope ``sms:send``)."""

from __future__ import annotations

import re

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from shared.api import Blueprint, operation
from shared.auth import current_principal, require_scope
from shared.envelope import envelope, ok
from sms_service.extensions import db
from sms_service.stats import usage

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"

blp = Blueprint("sms_stats", __name__, url_prefix="/api/v1/sms/stats", description="用量统计")


class BeijingDay(ma.fields.Date):
    """A calendar day in Beijing time written ``YYYY-MM-DD``."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).update({"pattern": DAY_PATTERN, "example": "2026-12-01"})
        kwargs.setdefault("error_messages", {"invalid": "日期格式应为 YYYY-MM-DD"})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.match(DAY_PATTERN, value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StatsArgsSchema(ma.Schema):
    from_ = BeijingDay(
        data_key="from", required=True, metadata={"description": "First Beijing calendar day (included)"}
    )
    to = BeijingDay(
        required=True,
        metadata={
            "description": f"Last Beijing calendar day (included), on or after from and at most "
            f"{usage.MAX_DAYS} days in all"
        },
    )
    group_by = ma.fields.String(
        load_default=usage.DAY,
        validate=validate.OneOf(usage.GROUPS, error="group_by 必须是 {choices} 之一"),
        metadata={
            "description": "day: one entry per day of the range; template: template_id; provider: "
            "the upstream that took the message, none if none did"
        },
    )

    @ma.validates_schema
    def _range(self, data, **_kwargs) -> None:
        first, last = data.get("from_"), data.get("to")
        if first is None or last is None:
            return
        if last < first:
            raise ma.ValidationError("to 不能早于 from", field_name="to")
        if (last - first).days + 1 > usage.MAX_DAYS:
            raise ma.ValidationError(f"from 到 to 最多 {usage.MAX_DAYS} 天", field_name="to")


class CountsSchema(ma.Schema):
    total = ma.fields.Integer()
    success = ma.fields.Integer()
    failed = ma.fields.Integer()
    pending = ma.fields.Integer(metadata={"description": "queued, sending or submitted"})
    segments = ma.fields.Integer(metadata={"description": "Billed segments of the success messages"})


class GroupCountsSchema(CountsSchema):
    key = ma.fields.String(
        metadata={"description": "The day (YYYY-MM-DD), the template_id or the provider (none: no upstream)"}
    )


class StatsSchema(ma.Schema):
    list = ma.fields.List(ma.fields.Nested(GroupCountsSchema), metadata={"description": "Sorted by key"})
    totals = ma.fields.Nested(CountsSchema)


@blp.route("")
class Stats(MethodView):
    @require_scope("sms:send")
    @blp.arguments(StatsArgsSchema(), location="query")
    @blp.response(200, envelope(StatsSchema))
    @blp.doc(**operation("get_stats"))
    def get(self, args):
        """Messages and billed segments by day, template or provider; up to a minute behind the records"""
        principal = current_principal()
        return ok(
            usage.usage(
                db.session,
                principal.tenant_id,
                test=principal.test,  # a test key sees test messages, a live key live ones
                first=args["from_"],
                last=args["to"],
                group_by=args["group_by"],
            )
        )
