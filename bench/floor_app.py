"""The floor the SMS accept benchmark is measured against.

A minimal Flask app under the same gunicorn settings doing the irreducible work of an accepted
send: parse the same JSON body and INSERT one row into the same PostgreSQL, then answer JSON.
"""

from __future__ import annotations

import os
import uuid

from flask import Flask, jsonify, request
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, create_engine, func, insert

from shared.db import normalize_url

metadata = MetaData()
floor_messages = Table(
    "bench_floor_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("mobile", String(20), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


def create_schema(database_url: str) -> None:
    """Called once by the benchmark before gunicorn starts: workers creating the table would race."""
    engine = create_engine(normalize_url(database_url))
    metadata.create_all(engine)
    engine.dispose()


def create_app() -> Flask:
    engine = create_engine(normalize_url(os.environ["BENCH_FLOOR_DATABASE_URL"]), pool_size=2)
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return jsonify({"code": 0, "data": {"status": "ok"}, "message": "success"})

    @app.post("/send")
    def send():
        body = request.get_json()
        row_id = uuid.uuid4().hex
        with engine.begin() as connection:
            connection.execute(
                insert(floor_messages).values(
                    id=row_id, mobile=body["mobiles"][0], payload=request.get_data(as_text=True)
                )
            )
        return jsonify({"code": 0, "data": {"message_id": row_id, "status": "queued"}, "message": "success"})

    return app
