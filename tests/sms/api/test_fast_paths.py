"""``send`` loads plainly valid input and answers without marshmallow: the same data as the schemas give."""

from __future__ import annotations

import marshmallow as ma
import pytest
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import Headers

from shared.envelope import envelope
from sms_service.api.common import IdempotencyHeaderSchema, PageArgsSchema
from sms_service.api.send import SendArgsSchema, SendResultSchema
from tests.sms.api.test_send_api import send

PLAIN = [
    {"template_id": "TMPL_1", "mobiles": ["13800138000"], "variables": {"code": "1"}},
    {"template_id": "TMPL_1", "mobiles": ["13800138000", "+8613900139000"]},
    {"template_id": "T", "mobiles": [], "variables": {}, "callback_url": None},
    {"template_id": "T" * 40, "mobiles": ["x"], "variables": {"n": 2, "none": None, "list": [1]}},
    {"template_id": "模板", "mobiles": ["1"], "callback_url": "https://biz.example.com/回调"},
    {"template_id": "T", "mobiles": ["1"], "callback_url": "h" * 1000},
]
ODD = [
    None,
    [],
    "TMPL_1",
    {},
    {"mobiles": ["13800138000"]},
    {"template_id": "TMPL_1"},
    {"template_id": "", "mobiles": ["1"]},
    {"template_id": "T" * 41, "mobiles": ["1"]},
    {"template_id": 7, "mobiles": ["1"]},
    {"template_id": None, "mobiles": ["1"]},
    {"template_id": "T", "mobiles": "13800138000"},
    {"template_id": "T", "mobiles": None},
    {"template_id": "T", "mobiles": [13800138000]},
    {"template_id": "T", "mobiles": ["1", None]},
    {"template_id": "T", "mobiles": ["1"], "variables": None},
    {"template_id": "T", "mobiles": ["1"], "variables": ["code"]},
    {"template_id": "T", "mobiles": ["1"], "variables": {1: "x"}},
    {"template_id": "T", "mobiles": ["1"], "callback_url": ""},
    {"template_id": "T", "mobiles": ["1"], "callback_url": "h" * 1001},
    {"template_id": "T", "mobiles": ["1"], "callback_url": 5},
    {"template_id": "T", "mobiles": ["1"], "extra": True},
]


def loaded(schema: ma.Schema, data):
    try:
        return "ok", schema.load(data)
    except ma.ValidationError as error:
        return "error", error.messages


@pytest.mark.parametrize("data", PLAIN)
def test_plainly_valid_input_loads_fast_to_what_the_schema_loads(data):
    schema = SendArgsSchema()
    fast = schema.fast_load(data)
    assert fast is not None
    assert ("ok", fast) == loaded(schema, data)


@pytest.mark.parametrize("data", ODD)
def test_anything_else_is_left_to_the_schema(data):
    assert SendArgsSchema().fast_load(data) is None


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Idempotency-Key", "k-1")],
        [("idempotency-key", "k-2")],
        [("X-Other", "1")],
        [("Idempotency-Key", "")],
    ],
)
def test_the_idempotency_header_loads_fast_to_what_the_schema_loads(headers):
    schema = IdempotencyHeaderSchema()
    proxy = MultiDictProxy(Headers(headers), schema)
    fast = schema.fast_load(proxy)
    assert fast is not None and ("ok", fast) == loaded(schema, proxy)


def test_the_answer_is_what_the_documented_schema_dumps(sms_client, sms_tenant, template, published):
    _tenant, key = sms_tenant
    body = send(sms_client, key, template.id, ["13800138000", "13900139000"]).get_json()
    assert body["code"] == 0, body
    assert envelope(SendResultSchema)().dump(body) == body
    for _attempt in range(2):  # the first answer, then its replay
        again = send(sms_client, key, template.id, ["15000150000"], headers={"Idempotency-Key": "once"})
        assert again.get_json()["code"] == 0, again.get_json()
        assert envelope(SendResultSchema)().dump(again.get_json()) == again.get_json()


@pytest.mark.parametrize(
    "query",
    [
        [],
        [("page", "2")],
        [("page", "1"), ("size", "100")],
        [("size", "007")],
        [("page", "1000000"), ("other", "x")],
        [("page", "0")],
        [("size", "101")],
        [("page", "-1")],
        [("page", "+1")],
        [("page", " 1")],
        [("page", "1.0")],
        [("page", "")],
        [("page", "１")],
        [("page", "99999999999")],
    ],
)
def test_a_page_loads_fast_to_what_the_schema_loads_or_is_left_to_it(query):
    from werkzeug.datastructures import MultiDict

    schema = PageArgsSchema()
    proxy = MultiDictProxy(MultiDict(query), schema)
    fast = schema.fast_load(proxy)
    try:  # as webargs loads a query: unknown parameters are left out
        expected = "ok", schema.load(proxy, unknown=ma.EXCLUDE)
    except ma.ValidationError as error:
        expected = "error", error.messages
    plain = all(v.isascii() and v.isdigit() and len(v) <= 9 for k, v in query if k in ("page", "size"))
    if fast is None:  # left to the schema: anything not written plainly, and every error
        assert expected[0] == "error" or not plain
    else:
        assert ("ok", fast) == expected


def test_a_page_schema_with_more_fields_is_left_to_marshmallow():
    from sms_service.api.records import RecordSearchArgsSchema

    assert RecordSearchArgsSchema().fast_load(MultiDictProxy(Headers([]), RecordSearchArgsSchema())) is None
