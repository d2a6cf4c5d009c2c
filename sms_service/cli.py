"""Operator commands: ``flask --app sms_service tenant …`` and ``key …``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from shared.db import isoformat
from shared.ids import new_id
from shared.tenancy import echo_json, register_key_commands
from shared.webhooks import generate_secret, register_rotate_secret_command
from sms_service.extensions import db, keys
from sms_service.models import Tenant

LIMIT_OPTIONS = (
    ("daily_quota", "--daily-quota", "Messages per Beijing calendar day."),
    ("mobile_per_minute", "--mobile-per-minute", "Messages to one mobile per minute."),
    ("mobile_per_hour", "--mobile-per-hour", "Messages to one mobile per hour."),
    ("mobile_per_day", "--mobile-per-day", "Messages to one mobile per day."),
)


def limits_of(tenant: Tenant) -> dict[str, int]:
    return {name: getattr(tenant, name) for name, _option, _help in LIMIT_OPTIONS}


def register(app: Flask) -> None:
    tenant = AppGroup("tenant", help="Create, list and update tenants; rotate their callback secret.")

    @tenant.command("create")
    @click.option("--name", required=True, help="Tenant display name.")
    @click.option("--daily-quota", type=click.IntRange(min=0), default=10_000, show_default=True)
    @click.option(
        "--mobile-per-minute", type=click.IntRange(min=0), help="Default SMS_DEFAULT_MOBILE_PER_MINUTE."
    )
    @click.option(
        "--mobile-per-hour", type=click.IntRange(min=0), help="Default SMS_DEFAULT_MOBILE_PER_HOUR."
    )
    @click.option("--mobile-per-day", type=click.IntRange(min=0), help="Default SMS_DEFAULT_MOBILE_PER_DAY.")
    def create_tenant(
        name: str, daily_quota: int, mobile_per_minute, mobile_per_hour, mobile_per_day
    ) -> None:
        """Create a tenant with an API key holding every SMS scope; prints JSON once."""
        config = current_app.config
        row = Tenant(
            id=new_id("TNT"),
            name=name,
            daily_quota=daily_quota,
            callback_secret=generate_secret(),
            mobile_per_minute=_given(mobile_per_minute, config["DEFAULT_MOBILE_PER_MINUTE"]),
            mobile_per_hour=_given(mobile_per_hour, config["DEFAULT_MOBILE_PER_HOUR"]),
            mobile_per_day=_given(mobile_per_day, config["DEFAULT_MOBILE_PER_DAY"]),
        )
        db.session.add(row)
        db.session.flush()
        key, plaintext = keys.issue(row.id)
        db.session.commit()
        echo_json(
            {
                "tenant_id": row.id,
                "name": row.name,
                **limits_of(row),
                "api_key": plaintext,
                "key_id": key.id,
                "scopes": key.scopes.split(),
                "callback_secret": row.callback_secret,
            }
        )

    @tenant.command("list")
    def list_tenants() -> None:
        rows = db.session.scalars(select(Tenant).order_by(Tenant.created_at)).all()
        echo_json(
            [
                {"tenant_id": t.id, "name": t.name, **limits_of(t), "created_at": isoformat(t.created_at)}
                for t in rows
            ]
        )

    @tenant.command("update")
    @click.argument("tenant_id")
    @click.option("--name", help="New display name.")
    @click.option("--daily-quota", type=click.IntRange(min=0), help="Messages per Beijing calendar day.")
    @click.option(
        "--mobile-per-minute", type=click.IntRange(min=0), help="Messages to one mobile per minute."
    )
    @click.option("--mobile-per-hour", type=click.IntRange(min=0), help="Messages to one mobile per hour.")
    @click.option("--mobile-per-day", type=click.IntRange(min=0), help="Messages to one mobile per day.")
    def update_tenant(tenant_id: str, name: str | None, **limits: int | None) -> None:
        """Change a tenant's name, daily quota or per-mobile frequency limits (running APIs apply them within
        SMS_SEND_CACHE_SECONDS)."""
        row = db.session.get(Tenant, tenant_id)
        if row is None:
            raise click.ClickException(f"no tenant {tenant_id}")
        if name:
            row.name = name
        for field, value in limits.items():
            if value is not None:
                setattr(row, field, value)
        db.session.commit()
        echo_json({"tenant_id": row.id, "name": row.name, **limits_of(row)})

    register_rotate_secret_command(tenant, db.session, Tenant, "callback_secret")
    app.cli.add_command(tenant)
    register_key_commands(app, keys)


def _given(value: int | None, default: int) -> int:
    return default if value is None else value
