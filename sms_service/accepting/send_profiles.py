"""What accepting a send needs of a tenant and a template, kept per process for a moment.

Every send needs the template's variables and status and the tenant's limits. Reading them is one database
round trip per request, as much as storing the messages, for rows that change a few times a year. So each
API process keeps them for ``SMS_SEND_CACHE_SECONDS`` (0: read every time). A change made through the
process (a template updated, disabled or deleted) drops the entry at once; the other processes see it when
their entry expires, as API keys are cached for their revocation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from cachetools import TTLCache
from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from shared.db import read_alone
from shared.envelope import BadRequestError, NotFoundError
from sms_service.models import TEMPLATE_DISABLED, Template, Tenant

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class SendProfile:
    """A template ready to send for its tenant, with the tenant's limits."""

    tenant_id: str
    template_id: str
    variables: tuple[str, ...]
    status: str
    daily_quota: int
    mobile_per_minute: int
    mobile_per_hour: int
    mobile_per_day: int
    content: str
    sign_name: str
    category: str


# Built once: constructing the statement cost more CPU per send than running it.
_PROFILE = (
    select(
        Tenant.id,
        Template.id,
        Template.variables,
        Template.status,
        Tenant.daily_quota,
        Tenant.mobile_per_minute,
        Tenant.mobile_per_hour,
        Tenant.mobile_per_day,
        Template.content,
        Template.sign_name,
        Template.category,
    )
    .join(Template, Template.tenant_id == Tenant.id)
    .where(
        Tenant.id == bindparam("tenant_id"),
        Template.id == bindparam("template_id"),
        Template.deleted_at.is_(None),
    )
)


def read_profile(session: Session, tenant_id: str, template_id: str) -> SendProfile | None:
    """From the database, in one round trip outside a transaction (a plain send's INSERT then needs no
    BEGIN either): the template must be the tenant's and not deleted."""
    rows = read_alone(session, _PROFILE, {"tenant_id": tenant_id, "template_id": template_id})
    if not rows:
        return None
    row = rows[0]
    return SendProfile(row[0], row[1], tuple(row[2]), *row[3:])


class SendProfileCache:
    """Profiles by (tenant, template) for ``ttl_seconds``; cachetools' TTLCache, behind a lock (it is not
    thread-safe by itself)."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: TTLCache[tuple[str, str], SendProfile] | None = (
            TTLCache(maxsize=MAX_ENTRIES, ttl=ttl_seconds, timer=_now) if ttl_seconds > 0 else None
        )
        self._lock = threading.Lock()

    def get(self, session: Session, tenant_id: str, template_id: str) -> SendProfile | None:
        if self._entries is None:
            return read_profile(session, tenant_id, template_id)
        key = (tenant_id, template_id)
        with self._lock:
            profile = self._entries.get(key)
        if profile is not None:
            return profile
        profile = read_profile(session, tenant_id, template_id)
        if profile is not None:  # unknown ids are not kept: they may exist a moment later
            with self._lock:
                self._entries[key] = profile
        return profile

    def forget(self, tenant_id: str, template_id: str | None = None) -> None:
        """Drop one template's entry, or (``template_id`` None) every entry of the tenant."""
        if self._entries is None:
            return
        with self._lock:
            for key in [key for key in self._entries if key[0] == tenant_id]:
                if template_id is None or key[1] == template_id:
                    self._entries.pop(key, None)


def _now() -> float:
    return time.monotonic()  # looked up at each call, so a test can move the clock


def profile_cache() -> SendProfileCache:
    """The app's cache, made once per process."""
    cache = current_app.extensions.get("sms_send_profiles")
    if cache is None:
        cache = SendProfileCache(float(current_app.config["SEND_CACHE_SECONDS"]))
        current_app.extensions["sms_send_profiles"] = cache
    return cache


def sendable_profile(session: Session, tenant_id: str, template_id: str) -> SendProfile:
    """404 for an unknown, deleted or another tenant's template; 400 for a disabled one."""
    profile = profile_cache().get(session, tenant_id, template_id)
    if profile is None:
        raise NotFoundError("模板不存在", data={"template_id": template_id})
    if profile.status == TEMPLATE_DISABLED:
        raise BadRequestError("模板已停用, 不能发送", data={"errors": {"template_id": ["模板已停用"]}})
    return profile


def forget(tenant_id: str, template_id: str | None = None) -> None:
    profile_cache().forget(tenant_id, template_id)
