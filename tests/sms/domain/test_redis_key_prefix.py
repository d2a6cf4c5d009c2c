"""SMS_REDIS_KEY_PREFIX: two deployments sharing one Redis keep their circuits and limit counters apart."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis

from sms_service.accepting import limits
from sms_service.delivery.circuit_breaker import build_breaker
from sms_service.models import Tenant
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (TEST_REDIS_URL)")


@pytest.fixture
def deployments():
    """Two deployment prefixes of this test's own; their keys dropped afterwards."""
    names = [f"test-{uuid.uuid4().hex[:8]}-{side}" for side in ("staging", "production")]
    yield names
    client = redis.Redis.from_url(REDIS_URL)
    for name in names:
        keys = client.keys(f"{name}:*")
        if keys:
            client.delete(*keys)


def test_a_circuit_opened_by_one_deployment_stays_closed_for_the_other(deployments):
    staging, production = (
        build_breaker(2, open_seconds=60, probe_seconds=60, redis_url=REDIS_URL, key_prefix=name)
        for name in deployments
    )
    for _ in range(2):
        staging.record_failure("aliyun")
    assert not staging.allows("aliyun")
    assert production.allows("aliyun")
    client = redis.Redis.from_url(REDIS_URL)
    assert client.keys(f"{deployments[0]}:circuit:*") and not client.keys(f"{deployments[1]}:*")


def test_limit_counters_of_two_deployments_do_not_add_up(deployments):
    tenant = Tenant(daily_quota=1, mobile_per_minute=1, mobile_per_hour=5, mobile_per_day=10)
    now = datetime.now(UTC)
    counters = limits.plan_counters(tenant, ["13800138000"], now)
    staging, production = (limits.RedisCounters(REDIS_URL, key_prefix=name) for name in deployments)
    assert staging.consume(None, "TNT_shared_id", counters) is None
    assert staging.consume(None, "TNT_shared_id", counters) is not None  # this deployment's quota is spent
    assert production.consume(None, "TNT_shared_id", counters) is None  # the other's is its own
