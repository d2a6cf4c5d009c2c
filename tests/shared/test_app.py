"""The service Flask class: Flask's answers, with what it computed per request kept."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from flask import Flask

from shared.app import ServiceFlask


def test_ensure_sync_answers_as_flask_does_for_plain_and_coroutine_functions():
    service, plain = ServiceFlask("service-test"), Flask("plain-test")

    def view():
        return "ok"

    class Resource:
        def get(self):
            return "ok"

    async def coroutine_view():
        return "ok"

    for _ in range(2):  # the second time from what the first kept
        assert service.ensure_sync(view) is view
        method = Resource().get
        assert service.ensure_sync(method) is method
    try:
        expected = type(plain.ensure_sync(coroutine_view))
    except RuntimeError as error:  # Flask without its async extra
        with pytest.raises(RuntimeError, match=str(error)[:30]):
            service.ensure_sync(coroutine_view)
    else:
        assert type(service.ensure_sync(coroutine_view)) is expected


def test_json_answers_keep_utf8_and_key_order_and_flask_types():
    app = ServiceFlask("json-test")
    with app.app_context():
        body = {"message": "该网点暂不支持支付宝支付", "b": 1, "a": Decimal("1.50")}
        compact = app.json.response(body).get_data(as_text=True)
        assert compact == '{"message":"该网点暂不支持支付宝支付","b":1,"a":"1.50"}\n'
        assert json.loads(app.json.dumps(body, indent=2)) == {**body, "a": "1.50"}
        assert app.json.dumps([1]) == "[1]"
