"""The per-process cache of what a send needs of a template and its tenant's limits."""

from __future__ import annotations

import pytest

from shared.envelope import BadRequestError, NotFoundError, TooManyRequestsError
from sms_service.accepting import sending, templates
from sms_service.models import Template
from tests.sms.conftest import create_template

VARIABLES = {"code": "123456", "minutes": "5"}


def test_disabling_or_deleting_a_template_stops_sends_at_once_in_this_process(
    sms_db, sms_tenant, template, configure
):
    configure(SEND_CACHE_SECONDS=3600)
    tenant, _ = sms_tenant
    sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)  # now cached
    templates.update_template(sms_db, tenant.id, template.id, {"status": "disabled"})
    with pytest.raises(BadRequestError, match="停用"):
        sending.send(sms_db, tenant.id, template.id, ["13800138001"], VARIABLES)

    other = create_template(sms_db, tenant.id)
    sending.send(sms_db, tenant.id, other.id, ["13800138002"], VARIABLES)
    templates.delete_template(sms_db, tenant.id, other.id)
    with pytest.raises(NotFoundError):
        sending.send(sms_db, tenant.id, other.id, ["13800138003"], VARIABLES)


def test_a_change_made_elsewhere_is_seen_when_the_entry_expires(sms_db, sms_tenant, template, configure):
    configure(SEND_CACHE_SECONDS=3600)
    tenant, _ = sms_tenant
    sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)
    # Another process changes the template's variables and the tenant's quota behind this one's back.
    sms_db.get(Template, template.id).variables = ["code", "minutes", "site"]
    tenant.daily_quota = 1
    sms_db.commit()
    sending.send(sms_db, tenant.id, template.id, ["13800138001"], VARIABLES)  # still the cached profile

    configure(SEND_CACHE_SECONDS=0)  # a new cache that reads every time, as an expired entry does
    with pytest.raises(BadRequestError, match="site"):
        sending.send(sms_db, tenant.id, template.id, ["13800138002"], VARIABLES)
    with pytest.raises(TooManyRequestsError):
        sending.send(sms_db, tenant.id, template.id, ["13800138002"], {**VARIABLES, "site": "A"})


def test_entries_expire_after_the_ttl(sms_db, sms_tenant, template, configure, monkeypatch):
    configure(SEND_CACHE_SECONDS=2)
    tenant, _ = sms_tenant
    clock = [1000.0]
    monkeypatch.setattr("sms_service.accepting.send_profiles.time.monotonic", lambda: clock[0])
    sending.send(sms_db, tenant.id, template.id, ["13800138000"], VARIABLES)
    sms_db.get(Template, template.id).status = "disabled"
    sms_db.commit()
    clock[0] += 1.9
    sending.send(sms_db, tenant.id, template.id, ["13800138001"], VARIABLES)
    clock[0] += 0.2
    with pytest.raises(BadRequestError, match="停用"):
        sending.send(sms_db, tenant.id, template.id, ["13800138002"], VARIABLES)


def test_an_unknown_template_is_not_remembered(sms_db, sms_tenant, configure):
    configure(SEND_CACHE_SECONDS=3600)
    tenant, _ = sms_tenant
    with pytest.raises(NotFoundError):
        sending.send(sms_db, tenant.id, "TMPL_20260101_later", ["13800138000"], VARIABLES)
    made = create_template(sms_db, tenant.id)
    sms_db.execute(Template.__table__.update().where(Template.id == made.id).values(id="TMPL_20260101_later"))
    sms_db.commit()
    answer = sending.send(sms_db, tenant.id, "TMPL_20260101_later", ["13800138000"], VARIABLES)
    assert answer["status"] == "queued"
