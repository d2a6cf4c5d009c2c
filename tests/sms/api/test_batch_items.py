"""``batch-send`` items load through :class:`BatchItemSchema`: each bad item is named by its position."""

from __future__ import annotations

import json

import marshmallow as ma
import pytest

from shared.api import UNSTORABLE_TEXT
from sms_service.api.send import BatchSendArgsSchema
from tests.sms.api.test_send_api import BATCH, VARIABLES, batch
from tests.sms.conftest import auth

SCHEMA = BatchSendArgsSchema()


def errors_of(items) -> dict:
    with pytest.raises(ma.ValidationError) as raised:
        SCHEMA.load({"template_id": "TMPL_1", "items": items})
    return raised.value.messages


def test_items_load_with_their_variables_defaulted():
    loaded = SCHEMA.load(
        {
            "template_id": "TMPL_1",
            "items": [{"mobile": "1", "variables": {"n": 2, "x": None}}, {"mobile": "2"}],
        }
    )
    assert loaded == {
        "template_id": "TMPL_1",
        "items": [{"mobile": "1", "variables": {"n": 2, "x": None}}, {"mobile": "2", "variables": {}}],
        "callback_url": None,
    }


@pytest.mark.parametrize(
    ("items", "errors"),
    [
        ([{"variables": {}}], {0: {"mobile": ["Missing data for required field."]}}),
        ([{"mobile": None}], {0: {"mobile": ["Field may not be null."]}}),
        ([{"mobile": 13800138000}], {0: {"mobile": ["Not a valid string."]}}),
        ([{"mobile": ["13800138000"]}], {0: {"mobile": ["Not a valid string."]}}),
        ([{"mobile": "1", "variables": None}], {0: {"variables": ["Field may not be null."]}}),
        ([{"mobile": "1", "variables": []}], {0: {"variables": ["Not a valid mapping type."]}}),
        ([{"mobile": "1", "extra": 1}], {0: {"extra": ["Unknown field."]}}),
        ([None], {0: ["Field may not be null."]}),
        (["13800138000"], {0: {"_schema": ["Invalid input type."]}}),
        (
            [{"mobile": "1"}, {"mobile": 1, "other": True}, 7],
            {
                1: {"mobile": ["Not a valid string."], "other": ["Unknown field."]},
                2: {"_schema": ["Invalid input type."]},
            },
        ),
    ],
)
def test_each_bad_item_is_named_by_its_position(items, errors):
    assert errors_of(items) == {"items": errors}


@pytest.mark.parametrize("items", ["13800138000", {"mobile": "1"}, 7, None])
def test_items_that_are_not_a_list_are_refused(items):
    assert "items" in errors_of(items)


def test_items_are_required():
    with pytest.raises(ma.ValidationError) as raised:
        SCHEMA.load({"template_id": "TMPL_1"})
    assert raised.value.messages == {"items": ["Missing data for required field."]}


def test_a_batch_item_with_a_non_string_mobile_is_400_naming_items(sms_client, sms_tenant, template):
    _tenant, key = sms_tenant
    items = [{"mobile": "13800138000", "variables": VARIABLES}, {"mobile": 13900139000}]
    response = batch(sms_client, key, template.id, items)
    body = response.get_json()
    assert response.status_code == 400 and body["code"] == 400
    assert body["message"] == "请求参数错误: items"
    assert body["data"]["errors"] == {"items": {"1": {"mobile": ["Not a valid string."]}}}


def test_a_nul_in_a_batch_item_is_400(sms_client, sms_tenant, template):
    _tenant, key = sms_tenant
    data = json.dumps({"template_id": template.id, "items": [{"mobile": "1380013800\x00"}]})
    assert "\\u0000" in data
    response = sms_client.post(BATCH, data=data, headers=auth(key, **{"Content-Type": "application/json"}))
    assert response.status_code == 400 and response.get_json()["message"] == UNSTORABLE_TEXT
