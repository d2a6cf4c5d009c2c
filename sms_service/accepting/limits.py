"""Per-tenant daily quota and per-mobile frequency limits, checked and counted in one atomic step.

Each limit is a counter per window (a Beijing calendar day for the quota and the per-day limit, clock-aligned
minutes and hours otherwise). A request either fits every counter and increments them all, or increments none
and gets a 429 naming the limit. Counters live in the service's database (one ``INSERT … ON CONFLICT DO
UPDATE … WHERE used + n <= cap RETURNING`` whose row locks serialise concurrent requests) or, when
``SMS_REDIS_URL`` is set, in Redis (one Lua script, run on redis-py's connection pool and never retried: a
script cut off after it was sent may have counted).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import redis
from flask import current_app
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.envelope import ServiceUnavailableError, TooManyRequestsError
from sms_service.accepting.send_profiles import SendProfile
from sms_service.mobiles import mask_mobile
from sms_service.models import LimitCounter, Tenant
from sms_service.redis_client import unretried_client

logger = logging.getLogger(__name__)

BEIJING_OFFSET_SECONDS = 8 * 3600
DAY_SECONDS = 86_400

DAILY_QUOTA = "daily_quota"
MOBILE_PER_MINUTE = "mobile_per_minute"
MOBILE_PER_HOUR = "mobile_per_hour"
MOBILE_PER_DAY = "mobile_per_day"

# Which limit a 429 reports when several are exceeded at once: the tenant-wide one, then the longest wait.
REPORT_ORDER = (DAILY_QUOTA, MOBILE_PER_DAY, MOBILE_PER_HOUR, MOBILE_PER_MINUTE)


class Counter(NamedTuple):
    """``amount`` more of limit ``kind`` (for ``mobile``, if per mobile) in the window numbered ``window``.

    A named tuple: a send plans four of these, and a frozen dataclass cost it more to make than the script
    that counts them."""

    kind: str
    mobile: str | None
    window: int
    amount: int
    cap: int
    ends_at: int  # Unix time the window ends

    @property
    def name(self) -> str:
        return self.kind if self.mobile is None else f"{self.kind}:{self.mobile}"


def plan_counters(limits: Tenant | SendProfile, mobiles: list[str], now: datetime) -> list[Counter]:
    """The counters a send of one message to each of ``mobiles`` needs, in locking order."""
    epoch = int(now.timestamp())
    day = (epoch + BEIJING_OFFSET_SECONDS) // DAY_SECONDS
    day_end = (day + 1) * DAY_SECONDS - BEIJING_OFFSET_SECONDS
    counters = [Counter(DAILY_QUOTA, None, day, len(mobiles), limits.daily_quota, day_end)]
    for mobile in mobiles:
        counters.append(
            Counter(
                MOBILE_PER_MINUTE, mobile, epoch // 60, 1, limits.mobile_per_minute, (epoch // 60 + 1) * 60
            )
        )
        counters.append(
            Counter(
                MOBILE_PER_HOUR, mobile, epoch // 3600, 1, limits.mobile_per_hour, (epoch // 3600 + 1) * 3600
            )
        )
        counters.append(Counter(MOBILE_PER_DAY, mobile, day, 1, limits.mobile_per_day, day_end))
    # One locking order for every writer (no deadlocks), the tenant's hot quota row last (held briefly).
    return sorted(counters, key=lambda counter: (counter.kind == DAILY_QUOTA, counter.name, counter.window))


def limit_exceeded(counter: Counter, now: datetime) -> TooManyRequestsError:
    retry_after = max(1, counter.ends_at - int(now.timestamp()))
    data = {"limit": counter.kind, "allowed": counter.cap, "retry_after": retry_after}
    if counter.kind == DAILY_QUOTA:
        message = f"今日发送配额已用尽 (每日 {counter.cap} 条)"
    else:
        per = {MOBILE_PER_MINUTE: "每分钟", MOBILE_PER_HOUR: "每小时", MOBILE_PER_DAY: "每天"}[counter.kind]
        message = f"该手机号发送过于频繁: {per}最多 {counter.cap} 条"
        data["mobile"] = mask_mobile(counter.mobile or "")
    return TooManyRequestsError(message, retry_after=retry_after, data=data)


def first_to_report(counters: list[Counter]) -> Counter:
    return min(counters, key=lambda counter: REPORT_ORDER.index(counter.kind))


class DatabaseCounters:
    """Counters in ``limit_counters``, counted in the caller's transaction (a rollback undoes them)."""

    def __init__(self) -> None:
        self._statements: dict[str, object] = {}

    def _upsert(self, dialect: str):
        """One statement per dialect, executed with a parameter list: SQLAlchemy compiles it once per
        process (a multi-row ``.values([...])`` would be compiled again on every request)."""
        statement = self._statements.get(dialect)
        if statement is None:
            table = LimitCounter.__table__
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(table)
            statement = statement.on_conflict_do_update(
                index_elements=["tenant_id", "name", "window"],
                set_={"used": table.c.used + statement.excluded.used, "cap": statement.excluded.cap},
                where=table.c.used + statement.excluded.used <= statement.excluded.cap,
            ).returning(table.c.name, table.c.window)
            self._statements[dialect] = statement
        return statement

    def consume(self, session: Session, tenant_id: str, counters: list[Counter]) -> Counter | None:
        over = [counter for counter in counters if counter.amount > counter.cap]
        if over:
            return first_to_report(over)
        expires = {
            counter.ends_at: datetime.fromtimestamp(counter.ends_at, UTC) + timedelta(days=1)
            for counter in counters
        }
        rows = [
            {
                "tenant_id": tenant_id,
                "name": counter.name,
                "window": counter.window,
                "used": counter.amount,
                "cap": counter.cap,
                "expires_at": expires[counter.ends_at],
            }
            for counter in counters
        ]
        # Sent as one multi-row INSERT, rows in the locking order of ``counters``.
        statement = self._upsert(session.get_bind().dialect.name)
        counted = {(row.name, row.window) for row in session.execute(statement, rows)}
        refused = [counter for counter in counters if (counter.name, counter.window) not in counted]
        return first_to_report(refused) if refused else None

    def release(self, tenant_id: str, counters: list[Counter]) -> None:
        """Nothing to do: the caller's rollback already undid the increments."""

    def purge(self, session: Session) -> int:
        """Delete the counters of ended windows, in the caller's transaction."""
        result = session.execute(delete(LimitCounter).where(LimitCounter.expires_at < utcnow()))
        return result.rowcount or 0


# One hash per limit and window (the tenant's quota, or every mobile's sends this minute, hour or day); a
# field per mobile ("-" for the quota). KEYS: the hashes, quota first, then the longest window. ARGV, for
# each hash in turn: its expiry (Unix time), its number of fields, then field, amount and cap of each.
# All fields are read (HMGET, in slices: Lua's unpack takes a few thousand values at most) and checked
# before any is written back (HSET): a 1,000-item batch is a few commands, not 6,000.
# Returns the position (1-based, in ARGV's order) of the first counter that would go over, else 0.
CHECK_AND_INCREMENT = """
local SLICE = 4000
local position, seen, writes = 1, 0, {}
for k = 1, #KEYS do
  local expire_at, count = ARGV[position], tonumber(ARGV[position + 1])
  position = position + 2
  local fields = {}
  for j = 1, count do
    fields[j] = ARGV[position + 3 * (j - 1)]
  end
  local used = {}
  for first = 1, count, SLICE do
    local values = redis.call('HMGET', KEYS[k], unpack(fields, first, math.min(first + SLICE - 1, count)))
    for offset = 1, #values do
      used[first + offset - 1] = values[offset]
    end
  end
  local updates = {}
  for j = 1, count do
    seen = seen + 1
    local base = position + 3 * (j - 1)
    local total = tonumber(used[j] or 0) + tonumber(ARGV[base + 1])
    if total > tonumber(ARGV[base + 2]) then
      return seen
    end
    updates[2 * j - 1], updates[2 * j] = fields[j], total
  end
  writes[k] = {updates, expire_at}
  position = position + 3 * count
end
for k = 1, #KEYS do
  local updates = writes[k][1]
  for first = 1, #updates, SLICE do
    redis.call('HSET', KEYS[k], unpack(updates, first, math.min(first + SLICE - 1, #updates)))
  end
  redis.call('EXPIREAT', KEYS[k], writes[k][2])
end
return 0
"""


# The same for a request whose every hash has one field (a send to one mobile: the common case), in half the
# script time: each counter is incremented and checked in turn; the first that goes over undoes the
# increments before it and its own, and its position (1-based) is returned. ARGV, for each hash in turn:
# its expiry, the field, the amount and the cap. The expiry is set before the check, so an undone counter
# left at 0 still expires.
CHECK_AND_INCREMENT_SINGLES = """
for k = 1, #KEYS do
  local base = 4 * (k - 1)
  local total = redis.call('HINCRBY', KEYS[k], ARGV[base + 2], ARGV[base + 3])
  redis.call('EXPIREAT', KEYS[k], ARGV[base + 1])
  if total > tonumber(ARGV[base + 4]) then
    for j = 1, k do
      local undo = 4 * (j - 1)
      redis.call('HINCRBY', KEYS[j], ARGV[undo + 2], -tonumber(ARGV[undo + 3]))
    end
    return k
  end
end
return 0
"""


class RedisCounters:
    """Counters in Redis: a Lua script checks every counter and increments them all, or none."""

    def __init__(self, url: str, key_prefix: str = "sms") -> None:
        self.key_prefix = key_prefix
        # Never retried: a script cut off after it was sent may have counted; the request fails (503).
        self.client = unretried_client(url, timeout=2)
        self.script = self.client.register_script(CHECK_AND_INCREMENT)
        self.singles_script = self.client.register_script(CHECK_AND_INCREMENT_SINGLES)

    def location(self, tenant_id: str, counter: Counter) -> tuple[str, str]:
        """The hash and the field of a counter. The hash tag keeps one tenant's counters in one Redis
        Cluster slot, as the script needs."""
        hash_name = f"{self.key_prefix}:limits:{{{tenant_id}}}:{counter.kind}:{counter.window}"
        return hash_name, counter.mobile or "-"

    def consume(self, session: Session, tenant_id: str, counters: list[Counter]) -> Counter | None:
        over = [counter for counter in counters if counter.amount > counter.cap]
        if over:
            return first_to_report(over)
        groups: dict[tuple[str, int], list[Counter]] = {}
        for counter in sorted(counters, key=lambda counter: REPORT_ORDER.index(counter.kind)):
            groups.setdefault((counter.kind, counter.window), []).append(counter)
        keys: list[str] = []
        arguments: list[str] = []
        order: list[Counter] = []
        singles = all(len(members) == 1 for members in groups.values())
        for members in groups.values():
            keys.append(self.location(tenant_id, members[0])[0])
            expire_at = str(members[0].ends_at + DAY_SECONDS)
            arguments += [expire_at] if singles else [expire_at, str(len(members))]
            for counter in members:
                arguments += [counter.mobile or "-", str(counter.amount), str(counter.cap)]
            order += members
        script = self.singles_script if singles else self.script
        try:
            # EVALSHA; on NOSCRIPT (a restarted or flushed Redis: nothing ran) the Script loads itself and
            # runs once more.
            index = int(script(keys=keys, args=arguments))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("limit counters unavailable: %s: %s", type(exc).__name__, exc)
            raise ServiceUnavailableError(
                "服务暂不可用: 限额计数无法连接, 请稍后重试", headers={"Retry-After": "1"}
            ) from exc
        return order[index - 1] if index else None

    def release(self, tenant_id: str, counters: list[Counter]) -> None:
        """Give back what :meth:`consume` took when the request failed after it. With Redis gone too, the
        request's own error is the one to answer: the counters then expire with their window."""
        pipeline = self.client.pipeline()
        for counter in counters:
            pipeline.hincrby(*self.location(tenant_id, counter), -counter.amount)
        try:
            pipeline.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("could not give back %d limit counter(s): %s", len(counters), exc)

    def purge(self, session: Session) -> int:
        return 0  # Redis expires the keys itself


def limit_store() -> DatabaseCounters | RedisCounters:
    """The app's counter store, made once per process."""
    store = current_app.extensions.get("sms_limits")
    if store is None:
        url = current_app.config.get("REDIS_URL")
        store = RedisCounters(url, current_app.config["REDIS_KEY_PREFIX"]) if url else DatabaseCounters()
        current_app.extensions["sms_limits"] = store
    return store
