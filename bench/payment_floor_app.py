"""The floors the payment benchmark is measured against, under the same gunicorn settings as the service.

- ``POST /order``: parse the JSON, INSERT one order row, make the one signed JSAPI call to the WeChat fake
  (the same WeChat client the service uses), answer the prepay id.
- ``POST /notify``: one signature verification + one AES-GCM decryption (the same client) + one UPDATE.
- ``POST /forwarded``: 200, where the service forwards paid results during the run.

Settings come from BENCH_PAYFLOOR_* variables; ``PARAMS`` is the WeChat config's params as JSON.
"""

from __future__ import annotations

import json
import os
import uuid

from flask import Flask, Response, jsonify, request
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, func, insert, update

from payment_service.channels.base import OrderRequest
from payment_service.channels.wechat import WechatCredentials, WechatPayClient
from shared.db import normalize_url

metadata = MetaData()
floor_orders = Table(
    "bench_floor_orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("amount_fen", Integer, nullable=False),
    Column("status", String(10), nullable=False, server_default="pending"),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


def create_schema(database_url: str) -> None:
    """Called once by the benchmark before gunicorn starts: workers creating the table would race."""
    engine = create_engine(normalize_url(database_url))
    metadata.create_all(engine)
    engine.dispose()


def create_app() -> Flask:
    engine = create_engine(normalize_url(os.environ["BENCH_PAYFLOOR_DATABASE_URL"]), pool_size=2)
    client = WechatPayClient(
        WechatCredentials.from_params("wechat_direct", json.loads(os.environ["BENCH_PAYFLOOR_PARAMS"])),
        "wechat_direct",
        base_url=os.environ["BENCH_PAYFLOOR_WECHATPAY_BASE_URL"],
    )
    notify_url = os.environ["BENCH_PAYFLOOR_NOTIFY_URL"]
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return jsonify({"code": 0, "data": {"status": "ok"}, "message": "success"})

    @app.post("/order")
    def order():
        body = request.get_json()
        order_id = "FLOOR" + uuid.uuid4().hex[:24]
        amount_fen = int(round(float(body["amount"]) * 100))
        with engine.begin() as connection:
            connection.execute(insert(floor_orders).values(id=order_id, amount_fen=amount_fen))
        created = client.create_jsapi_order(
            OrderRequest(
                transaction_id=order_id,
                amount_fen=amount_fen,
                description=body["description"],
                payer_id=body["payer_id"],
                notify_url=notify_url,
            )
        )
        return jsonify(
            {"code": 0, "data": {"transaction_id": order_id, **created.pay_params}, "message": "success"}
        )

    @app.post("/notify")
    def notify():
        notice = client.parse_notification(request.headers, request.get_data())
        with engine.begin() as connection:
            connection.execute(
                update(floor_orders)
                .where(floor_orders.c.id == notice.out_trade_no, floor_orders.c.status == "pending")
                .values(status="paid")
            )
        return Response(status=204)

    @app.post("/forwarded")
    def forwarded():
        return Response("ok")

    return app
