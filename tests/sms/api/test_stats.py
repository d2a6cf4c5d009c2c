"""``GET /api/v1/sms/stats``: usage by Beijing day, template and provider, read from the daily counts."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from shared.ids import new_id
from sms_service.accepting import sending
from sms_service.delivery import dispatch
from sms_service.extensions import keys
from sms_service.models import STATUSES, Message
from sms_service.stats import facts, usage
from tests.sms.conftest import auth, create_template

VARIABLES = {"code": "123456", "minutes": "5"}
FIRST, LAST = date(2026, 11, 1), date(2026, 11, 5)


def stats(client, key, query, status=200):
    response = client.get("/api/v1/sms/stats" + query, headers=auth(key))
    assert response.status_code == status, response.get_json()
    return response.get_json()["data"]


def seed(session, tenant_id, template_ids, count, *, test=False, rng=None):
    """``count`` messages spread over FIRST..LAST (Beijing), in every status, provider and segment count."""
    rng = rng or random.Random(17)
    start = facts.day_bounds(FIRST)[0]
    span = (facts.day_bounds(LAST)[1] - start).total_seconds()
    rows = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.uniform(0, span - 1))
        status = rng.choice(STATUSES)
        provider = None if status == "queued" else rng.choice(["aliyun", "tencent", None])
        rows.append(
            {
                "id": new_id("MSG"),
                "tenant_id": tenant_id,
                "template_id": rng.choice(template_ids),
                "mobile": f"138{rng.randrange(10**8):08d}",
                "variables": VARIABLES,
                "segments": rng.randint(1, 3),
                "status": status,
                "attempts": 1,
                "provider": provider,
                "test": test,
                "created_at": at,
                "updated_at": at,
            }
        )
    session.execute(insert(Message), rows)
    session.commit()


def rebuild(session, first=FIRST, last=LAST):
    for offset in range((last - first).days + 1):
        facts.rebuild_day(session, first + timedelta(days=offset))


def from_records(session, tenant_id, group_by, test=False):
    """The same figures counted from the messages themselves."""
    groups = defaultdict(Counter)
    for message in session.scalars(
        select(Message).where(Message.tenant_id == tenant_id, Message.test == test)
    ):
        key = {
            "day": facts.beijing_today(message.created_at).isoformat(),
            "template": message.template_id,
            "provider": message.provider or "none",
        }[group_by]
        shown = "pending" if message.status in ("queued", "sending", "submitted") else message.status
        groups[key].update(
            {"total": 1, shown: 1, "segments": message.segments if message.status == "success" else 0}
        )
    return groups


def as_counters(data):
    return {row["key"]: Counter({k: v for k, v in row.items() if k != "key" and v}) for row in data["list"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?to=2026-11-05", "from"),
        ("?from=2026-11-01", "to"),
        ("?from=2026-11-1&to=2026-11-05", "from"),
        ("?from=2026/11/01&to=2026-11-05", "from"),
        ("?from=2026-02-30&to=2026-03-05", "from"),
        ("?from=2026-11-05&to=2026-11-04", "to"),
        ("?from=2026-01-01&to=2026-04-03", "to"),  # 93 days
        ("?from=2026-11-01&to=2026-11-05&group_by=week", "group_by"),
    ],
)
def test_bad_arguments_are_400_naming_the_field(sms_client, sms_tenant, query, field):
    _tenant, key = sms_tenant
    response = sms_client.get("/api/v1/sms/stats" + query, headers=auth(key))
    body = response.get_json()
    assert response.status_code == 400 and list(body["data"]["errors"]) == [field], body


def test_scope_and_key_are_required(sms_client, sms_db):
    from tests.factories import create_sms_tenant

    _tenant, admin_only = create_sms_tenant(sms_db, scopes=["sms:admin"])
    assert sms_client.get("/api/v1/sms/stats?from=2026-11-01&to=2026-11-01").status_code == 401
    response = sms_client.get("/api/v1/sms/stats?from=2026-11-01&to=2026-11-01", headers=auth(admin_only))
    assert response.status_code == 403


def test_92_days_is_allowed_and_every_day_is_listed(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    data = stats(sms_client, key, "?from=2026-01-01&to=2026-04-02")
    assert len(data["list"]) == 92 and data["list"][0]["key"] == "2026-01-01"
    assert data["list"][-1] == {
        "key": "2026-04-02",
        "total": 0,
        "success": 0,
        "failed": 0,
        "pending": 0,
        "segments": 0,
    }
    assert data["totals"]["total"] == 0


def test_days_are_beijing_calendar_days(sms_client, sms_db, sms_tenant, template):
    tenant, key = sms_tenant
    # 2026-11-01 00:00 in Beijing is 2026-10-31 16:00 UTC.
    edges = [
        datetime(2026, 10, 31, 15, 59, 59, tzinfo=UTC),  # 10-31 23:59:59 Beijing
        datetime(2026, 10, 31, 16, 0, 0, tzinfo=UTC),  # 11-01 00:00:00
        datetime(2026, 11, 1, 15, 59, 59, 999000, tzinfo=UTC),  # 11-01 23:59:59.999
        datetime(2026, 11, 1, 16, 0, 0, tzinfo=UTC),  # 11-02 00:00:00
    ]
    sms_db.execute(
        insert(Message),
        [
            {
                "id": new_id("MSG"),
                "tenant_id": tenant.id,
                "template_id": template.id,
                "mobile": "13800138000",
                "variables": VARIABLES,
                "status": "success",
                "attempts": 1,
                "provider": "aliyun",
                "segments": 2,
                "created_at": at,
                "updated_at": at,
            }
            for at in edges
        ],
    )
    sms_db.commit()
    rebuild(sms_db, date(2026, 10, 31), date(2026, 11, 2))
    data = stats(sms_client, key, "?from=2026-10-31&to=2026-11-02")
    assert [(row["key"], row["total"], row["segments"]) for row in data["list"]] == [
        ("2026-10-31", 1, 2),
        ("2026-11-01", 2, 4),
        ("2026-11-02", 1, 2),
    ]
    only_first = stats(sms_client, key, "?from=2026-11-01&to=2026-11-01")
    assert only_first["totals"]["total"] == 2 and [row["key"] for row in only_first["list"]] == ["2026-11-01"]


@pytest.mark.parametrize("group_by", usage.GROUPS)
def test_stats_equal_the_records_over_thousands_of_mixed_messages(
    sms_client, sms_db, sms_tenant, template, group_by
):
    tenant, key = sms_tenant
    other = create_template(sms_db, tenant.id, name="通知")
    seed(sms_db, tenant.id, [template.id, other.id], 3000)
    rebuild(sms_db)
    data = stats(sms_client, key, f"?from=2026-11-01&to=2026-11-05&group_by={group_by}")
    assert as_counters(data) == from_records(sms_db, tenant.id, group_by)
    # The totals are the sum of the list, and pending is queued + sending + submitted.
    for field in ("total", "success", "failed", "pending", "segments"):
        assert data["totals"][field] == sum(row[field] for row in data["list"])
    statuses = Counter(sms_db.scalars(select(Message.status).where(Message.tenant_id == tenant.id)))
    assert data["totals"]["total"] == 3000
    assert data["totals"]["pending"] == statuses["queued"] + statuses["sending"] + statuses["submitted"]
    keys = [row["key"] for row in data["list"]]
    assert keys == sorted(keys)
    if group_by == "provider":
        assert set(keys) == {"aliyun", "tencent", "none"}


def test_a_rebuild_follows_the_messages_and_gives_the_same_answer_twice(
    sms_client, sms_db, sms_tenant, template, aliyun
):
    tenant, key = sms_tenant
    today = facts.beijing_today().isoformat()
    query = f"?from={today}&to={today}&group_by=provider"
    [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)["message_ids"]
    facts.rebuild_recent(sms_db)
    assert stats(sms_client, key, query)["list"] == [
        {"key": "none", "total": 1, "success": 0, "failed": 0, "pending": 1, "segments": 0}
    ]
    dispatch.deliver(sms_db, [message_id])
    facts.rebuild_recent(sms_db)
    facts.rebuild_recent(sms_db)
    assert stats(sms_client, key, query)["list"] == [
        {"key": "aliyun", "total": 1, "success": 0, "failed": 0, "pending": 1, "segments": 0}
    ]


def test_test_and_live_messages_are_counted_apart(sms_client, sms_db, sms_tenant, template):
    tenant, key = sms_tenant
    seed(sms_db, tenant.id, [template.id], 300, rng=random.Random(1))
    seed(sms_db, tenant.id, [template.id], 200, test=True, rng=random.Random(2))
    rebuild(sms_db)
    kind = {"first": FIRST, "last": LAST, "group_by": "template"}
    live = usage.usage(sms_db, tenant.id, test=False, **kind)
    test = usage.usage(sms_db, tenant.id, test=True, **kind)
    assert live["totals"]["total"] == 300 and test["totals"]["total"] == 200
    assert as_counters(test) == from_records(sms_db, tenant.id, "template", test=True)
    # A live key sees only the live messages, a test key only the test ones.
    assert stats(sms_client, key, "?from=2026-11-01&to=2026-11-05&group_by=template") == live
    _, test_key = keys.issue(tenant.id, test=True)
    sms_db.commit()
    assert stats(sms_client, test_key, "?from=2026-11-01&to=2026-11-05&group_by=template") == test


def test_a_tenant_sees_only_its_own_usage(sms_client, sms_db, sms_tenant, template):
    from tests.factories import create_sms_tenant

    tenant, _key = sms_tenant
    seed(sms_db, tenant.id, [template.id], 50)
    rebuild(sms_db)
    _other, other_key = create_sms_tenant(sms_db, name="别的租户")
    assert stats(sms_client, other_key, "?from=2026-11-01&to=2026-11-05")["totals"]["total"] == 0
