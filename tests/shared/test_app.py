"""The service Flask class: Flask's JSON answers, with its encoders made once."""

from __future__ import annotations

import json
from decimal import Decimal

from shared.app import ServiceFlask


def test_json_answers_keep_utf8_and_key_order_and_flask_types():
    app = ServiceFlask("json-test")
    with app.app_context():
        body = {"message": "该网点暂不支持支付宝支付", "b": 1, "a": Decimal("1.50")}
        compact = app.json.response(body).get_data(as_text=True)
        assert compact == '{"message":"该网点暂不支持支付宝支付","b":1,"a":"1.50"}\n'
        assert json.loads(app.json.dumps(body, indent=2)) == {**body, "a": "1.50"}
        assert app.json.dumps([1]) == "[1]"
