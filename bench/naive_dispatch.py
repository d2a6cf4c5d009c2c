"""The naive dispatch floor: one Celery task per message, default prefork pool, one SendSms + one UPDATE.

Run as ``celery -A bench.naive_dispatch worker``; settings come from BENCH_NAIVE_* variables.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from celery import Celery

from shared.db import normalize_url
from sms_service.providers.aliyun import AliyunSmsProvider
from sms_service.providers.base import OutgoingSms

metadata = sa.MetaData()
naive_messages = sa.Table(
    "bench_naive_messages",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("mobile", sa.String(11), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, server_default="queued"),
    sa.Column("biz_id", sa.String(100)),
)

app = Celery("bench_naive", broker=os.environ.get("BENCH_NAIVE_BROKER_URL", "memory://"))
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue="bench-naive",
)
_engine = None
_provider = None


def engine() -> sa.Engine:
    global _engine
    if _engine is None:
        _engine = sa.create_engine(normalize_url(os.environ["BENCH_NAIVE_DATABASE_URL"]))
    return _engine


def provider() -> AliyunSmsProvider:
    global _provider
    if _provider is None:
        _provider = AliyunSmsProvider(
            access_key_id="fake-aliyun-access-key-id",
            access_key_secret="fake-aliyun-access-key-secret",
            endpoint=os.environ["BENCH_NAIVE_ALIYUN_ENDPOINT"],
        )
    return _provider


@app.task(name="bench.naive_send")
def naive_send(message_id: str, mobile: str) -> None:
    outcome = provider().send(
        [
            OutgoingSms(
                message_id=message_id,
                mobile=mobile,
                sign_name="洗衣云",
                template_code="SMS_100",
                params={"code": "1"},
            )
        ]
    )[0]
    with engine().begin() as connection:
        connection.execute(
            sa.update(naive_messages)
            .where(naive_messages.c.id == message_id, naive_messages.c.status == "queued")
            .values(status="submitted" if outcome.accepted else "failed", biz_id=outcome.biz_id)
        )
