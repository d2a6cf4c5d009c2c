"""Small builders of test data: ``create_x(session, **overrides)``."""

from __future__ import annotations

from shared.ids import new_id
from shared.webhooks import generate_secret


def create_sms_tenant(session, scopes=None, **overrides):
    from sms_service.extensions import keys
    from sms_service.models import Tenant

    tenant = Tenant(
        id=new_id("TNT"),
        name=overrides.pop("name", "洗衣测试租户"),
        callback_secret=overrides.pop("callback_secret", generate_secret()),
        **overrides,
    )
    session.add(tenant)
    session.flush()
    _, api_key = keys.issue(tenant.id, scopes)
    session.commit()
    return tenant, api_key


def create_payment_tenant(session, scopes=None, **overrides):
    from payment_service.extensions import keys
    from payment_service.models import Tenant

    tenant = Tenant(
        id=new_id("TNT"),
        name=overrides.pop("name", "洗衣支付租户"),
        notify_secret=overrides.pop("notify_secret", generate_secret()),
        **overrides,
    )
    session.add(tenant)
    session.flush()
    _, api_key = keys.issue(tenant.id, scopes)
    session.commit()
    return tenant, api_key
