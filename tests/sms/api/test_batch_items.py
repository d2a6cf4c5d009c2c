"""``batch-send`` checks its items without marshmallow's nested load: same data, same errors."""

from __future__ import annotations

import marshmallow as ma
import pytest

from sms_service.api.send import BatchItemSchema, BatchSendArgsSchema


class NestedReference(BatchSendArgsSchema):
    items = ma.fields.List(ma.fields.Nested(BatchItemSchema), required=True)


def outcome(schema: ma.Schema, items):
    try:
        return "ok", schema.load({"template_id": "TMPL_1", "items": items})
    except ma.ValidationError as error:
        return "error", error.messages, error.valid_data


@pytest.mark.parametrize(
    "items",
    [
        [{"mobile": "13800138000", "variables": {"code": "1", "n": 2, "none": None}}],
        [{"mobile": "13800138000"}],
        [{"mobile": ""}],
        [{"variables": {}}],
        [{"mobile": None}],
        [{"mobile": 13800138000}],
        [{"mobile": ["13800138000"]}],
        [{"mobile": "13800138000", "variables": None}],
        [{"mobile": "13800138000", "variables": []}],
        [{"mobile": "13800138000", "variables": "code=1"}],
        [{"mobile": "13800138000", "extra": 1}],
        [{}],
        [1],
        [None],
        ["13800138000"],
        [[{"mobile": "13800138000"}]],
        [{"mobile": "13800138000"}, {"mobile": 1, "other": True}, 7, {"variables": 3}],
        [],
        "13800138000",
        {"mobile": "13800138000"},
        None,
        7,
    ],
)
def test_the_same_answer_as_the_nested_schema(items):
    assert outcome(BatchSendArgsSchema(), items) == outcome(NestedReference(), items)


def test_a_missing_items_field_is_required_as_before():
    assert outcome(BatchSendArgsSchema(), ma.missing) == outcome(NestedReference(), ma.missing)
