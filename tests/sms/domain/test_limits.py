"""Daily quota and per-mobile frequency: windows, atomicity under concurrency (PostgreSQL), Redis counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis

from shared.db import dispose_engine
from shared.envelope import ServiceUnavailableError, TooManyRequestsError
from sms_service.accepting import limits, sending
from sms_service.models import Tenant
from tests.conftest import POSTGRES_URL, REDIS_URL, migrated_app
from tests.factories import create_sms_tenant
from tests.sms.conftest import create_template

VARIABLES = {"code": "123456", "minutes": "5"}


def test_windows_are_clock_aligned_and_days_are_beijing_days():
    tenant = Tenant(daily_quota=100, mobile_per_minute=1, mobile_per_hour=5, mobile_per_day=10)
    # 2026-05-10 15:59:30 UTC is 23:59:30 in Beijing: the day ends in 30 s.
    now = datetime(2026, 5, 10, 15, 59, 30, tzinfo=UTC)
    counters = {c.kind: c for c in limits.plan_counters(tenant, ["13800138000"], now)}
    epoch = int(now.timestamp())
    assert counters["daily_quota"].ends_at - epoch == 30
    assert counters["mobile_per_day"].ends_at - epoch == 30
    assert counters["mobile_per_minute"].ends_at - epoch == 30
    assert counters["mobile_per_hour"].ends_at - epoch == 30
    assert limits.limit_exceeded(counters["mobile_per_hour"], now).retry_after == 30


def test_locking_order_puts_the_tenant_quota_last():
    tenant = Tenant(daily_quota=100, mobile_per_minute=1, mobile_per_hour=5, mobile_per_day=10)
    counters = limits.plan_counters(tenant, ["13900139000", "13800138000"], datetime.now(UTC))
    assert counters[-1].kind == "daily_quota" and len(counters) == 7


def test_a_zero_quota_refuses_everything(sms_db, sms_tenant, template):
    tenant, _ = sms_tenant
    tenant.daily_quota = 0
    sms_db.commit()
    with pytest.raises(TooManyRequestsError) as refused:
        sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)
    assert refused.value.data["limit"] == "daily_quota"


@pytest.fixture
def committed_app(sms_app, databases):
    """A second migrated database whose commits are real, for threads racing each other."""
    from sms_service import create_app
    from sms_service.extensions import celery, db

    engine, flask_app = db.engine, celery.flask_app
    # tests/conftest.py leaves the sessionmaker with "conservative_savepoint", which SQLAlchemy 2.1 rejects.
    db.session.configure(join_transaction_mode="conditional_savepoint")
    app = migrated_app(create_app, databases.create("sms_limits"), PUBLISH_LINGER_MS=0)
    yield app
    dispose_engine(db.engine)
    db.engine, celery.flask_app = engine, flask_app
    db.session.remove()
    db.session.configure(bind=engine)


def race(app, count, send_one):
    """Run ``send_one(index)`` in ``count`` threads released at once; count the outcomes."""
    from sms_service.extensions import db

    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(index):
        with app.app_context():
            barrier.wait()
            try:
                send_one(index)
                outcome = "ok"
            except TooManyRequestsError as exc:
                outcome = exc.data["limit"]
            finally:
                db.session.remove()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def make_tenant_and_template(app, **limits_):
    from sms_service.extensions import db

    with app.app_context():
        tenant, _ = create_sms_tenant(db.session, **limits_)
        template = create_template(db.session, tenant.id)
        return tenant.id, template.id


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="the concurrency edge is tested on PostgreSQL")
def test_50_concurrent_sends_at_the_quota_edge_exactly_the_quota_passes(committed_app, published):
    from sms_service.extensions import db

    committed_app.config["DB_POOL_SIZE"] = 25
    tenant_id, template_id = make_tenant_and_template(committed_app, daily_quota=10)
    outcomes = race(
        committed_app,
        50,
        lambda n: sending.send(db.session, tenant_id, template_id, [f"138{n:08d}"], VARIABLES),
    )
    assert outcomes.count("ok") == 10 and outcomes.count("daily_quota") == 40
    assert len(published) == 10


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="the concurrency edge is tested on PostgreSQL")
def test_50_concurrent_sends_to_one_mobile_pass_once_a_minute(committed_app, published, monkeypatch):
    from sms_service.extensions import db

    tenant_id, template_id = make_tenant_and_template(committed_app)
    # One instant for all 50: sends on both sides of a minute's end would rightly pass once in each minute.
    instant = datetime.now(UTC)
    monkeypatch.setattr(sending, "utcnow", lambda: instant)
    outcomes = race(
        committed_app,
        50,
        lambda n: sending.send(db.session, tenant_id, template_id, ["13800138000"], VARIABLES),
    )
    assert outcomes.count("ok") == 1 and outcomes.count("mobile_per_minute") == 49


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")
def test_redis_counters_are_atomic_too(committed_app, published):
    from sms_service.extensions import db

    committed_app.config["REDIS_URL"] = REDIS_URL
    tenant_id, template_id = make_tenant_and_template(committed_app, daily_quota=7)
    outcomes = race(
        committed_app,
        30,
        lambda n: sending.send(db.session, tenant_id, template_id, [f"139{n:08d}"], VARIABLES),
    )
    assert outcomes.count("ok") == 7 and outcomes.count("daily_quota") == 23
    with committed_app.app_context():
        assert isinstance(limits.limit_store(), limits.RedisCounters)


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")
def test_redis_counters_are_given_back_when_storing_fails(committed_app, published, monkeypatch):
    from sms_service.extensions import db

    committed_app.config["REDIS_URL"] = REDIS_URL
    tenant_id, template_id = make_tenant_and_template(committed_app, daily_quota=1)

    def broken_rows(*_args):
        raise RuntimeError("database went away")

    with committed_app.app_context():
        with monkeypatch.context() as patch:
            patch.setattr(sending, "_message_rows", broken_rows)
            with pytest.raises(RuntimeError):
                sending.send(db.session, tenant_id, template_id, ["13800138000"], VARIABLES)
        sending.send(db.session, tenant_id, template_id, ["13800138000"], VARIABLES)
        with pytest.raises(TooManyRequestsError):
            sending.send(db.session, tenant_id, template_id, ["13900139000"], VARIABLES)


@dataclass
class RedisLimits:
    """A store on the test Redis and a tenant of its own, whose counters are dropped afterwards."""

    store: limits.RedisCounters
    tenant: Tenant
    tenant_id: str
    now: datetime

    @property
    def client(self):
        return self.store.client

    def plan(self, mobiles: list[str]) -> list[limits.Counter]:
        return limits.plan_counters(self.tenant, mobiles, self.now)

    def consume(self, mobiles: list[str]) -> limits.Counter | None:
        return self.store.consume(None, self.tenant_id, self.plan(mobiles))

    def used(self, counter: limits.Counter) -> int | None:
        value = self.client.hget(*self.store.location(self.tenant_id, counter))
        return None if value is None else int(value)

    def expires_at(self, counter: limits.Counter) -> int:
        return self.client.expiretime(self.store.location(self.tenant_id, counter)[0])


@contextmanager
def redis_limits(label: str, **caps: int) -> Iterator[RedisLimits]:
    made = RedisLimits(
        limits.RedisCounters(REDIS_URL), Tenant(**caps), f"TNT_{label}_{time.time_ns()}", datetime.now(UTC)
    )
    try:
        yield made
    finally:
        keys = made.client.keys(f"sms:limits:{{{made.tenant_id}}}:*")
        if keys:
            made.client.delete(*keys)


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")
def test_redis_counters_of_a_large_batch_count_all_or_none_and_expire_with_their_window():
    with redis_limits(
        "batch", daily_quota=6000, mobile_per_minute=1, mobile_per_hour=5, mobile_per_day=10
    ) as r:
        mobiles = [f"139{n:08d}" for n in range(5000)]  # 5,000 fields per window: more than one slice
        counters = r.plan(mobiles)
        assert r.store.consume(None, r.tenant_id, counters) is None
        quota = next(counter for counter in counters if counter.kind == "daily_quota")
        assert r.used(quota) == 5000
        assert all(r.used(counter) == 1 for counter in counters[:-1])
        for counter in (quota, counters[0], counters[-2]):
            # Kept for a day past the window's end (the 429's Retry-After needs no key after it).
            assert r.expires_at(counter) == counter.ends_at + limits.DAY_SECONDS

        # The last mobile of a second batch is over its per-minute limit: nothing of that batch counts.
        again = r.plan([*(f"138{n:08d}" for n in range(10)), mobiles[-1]])
        refused = r.store.consume(None, r.tenant_id, again)
        assert refused is not None and refused.kind == "mobile_per_minute" and refused.mobile == mobiles[-1]
        assert r.used(quota) == 5000
        assert r.used(again[0]) is None


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")
def test_redis_names_the_daily_quota_first_when_several_limits_are_exceeded():
    with redis_limits("order", daily_quota=1, mobile_per_minute=1, mobile_per_hour=5, mobile_per_day=10) as r:
        assert r.consume(["13800138000"]) is None
        refused = r.consume(["13800138000"])
        assert refused is not None and refused.kind == "daily_quota"
        r.store.release(r.tenant_id, r.plan(["13800138000"]))
        assert r.consume(["13900139000"]) is None


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")
def test_redis_counters_of_one_mobile_count_all_or_none_and_expire_with_their_window():
    """A send to one mobile takes the one-field script: a refusal leaves every counter as it was."""
    with redis_limits(
        "single", daily_quota=3, mobile_per_minute=1, mobile_per_hour=5, mobile_per_day=10
    ) as r:

        def used(mobile: str) -> dict[str, int | None]:
            return {counter.kind: r.used(counter) for counter in r.plan([mobile])}

        assert r.consume(["13800138000"]) is None
        assert used("13800138000") == dict.fromkeys(limits.REPORT_ORDER, 1)
        for counter in r.plan(["13800138000"]):
            assert r.expires_at(counter) == counter.ends_at + limits.DAY_SECONDS

        # Over its per-minute limit, the last counter checked: the three before it are given back.
        refused = r.consume(["13800138000"])
        assert refused is not None and refused.kind == "mobile_per_minute"
        assert used("13800138000") == dict.fromkeys(limits.REPORT_ORDER, 1)

        assert r.consume(["13900139000"]) is None
        assert r.consume(["15000150000"]) is None
        # Over the quota, the first counter checked: nothing of this mobile is counted.
        refused = r.consume(["15100151000"])
        assert refused is not None and refused.kind == "daily_quota"
        assert used("15100151000") == {"daily_quota": 3, **dict.fromkeys(limits.REPORT_ORDER[1:])}


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")
def test_redis_counters_survive_a_flushed_script_cache_and_a_dropped_connection():
    with redis_limits(
        "conn", daily_quota=100, mobile_per_minute=5, mobile_per_hour=5, mobile_per_day=10
    ) as r:
        assert r.consume(["13800138000"]) is None
        r.client.script_flush()  # as after a restart of Redis: the script is loaded again, and counts once
        assert r.consume(["13800138000"]) is None
        quota = next(c for c in r.plan(["1"]) if c.kind == "daily_quota")
        assert r.used(quota) == 2

        # The server ends the store's connection (the pool's only one: this test uses one at a time).
        own = r.client.client_id()
        killer = redis.Redis.from_url(REDIS_URL)
        assert killer.client_kill_filter(_id=own) == 1
        killer.close()
        outcomes = []
        for mobile in ("13900139000", "15000150000"):
            try:
                outcomes.append(r.consume([mobile]))
            except ServiceUnavailableError:  # the request answers 503
                outcomes.append("failed")
        # A connection the server dropped fails at most the one command it was used for; then a new one.
        assert outcomes[-1] is None and outcomes.count("failed") <= 1
