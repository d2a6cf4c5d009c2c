"""Operator commands: ``flask --app sms_service tenant …`` and ``key …``."""

from __future__ import annotations

import secrets

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from shared.db import isoformat
from shared.ids import new_id
from shared.tenancy import echo_json, register_key_commands
from sms_service.extensions import db, keys
from sms_service.models import Tenant


def register(app: Flask) -> None:
    tenant = AppGroup("tenant", help="Create and list tenants.")

    @tenant.command("create")
    @click.option("--name", required=True, help="Tenant display name.")
    @click.option("--daily-quota", type=click.IntRange(min=0), default=10_000, show_default=True)
    def create_tenant(name: str, daily_quota: int) -> None:
        """Create a tenant with an API key holding every SMS scope; prints JSON once."""
        row = Tenant(
            id=new_id("TNT"), name=name, daily_quota=daily_quota, callback_secret=secrets.token_urlsafe(32)
        )
        db.session.add(row)
        db.session.flush()
        key, plaintext = keys.issue(row.id)
        db.session.commit()
        echo_json(
            {
                "tenant_id": row.id,
                "name": row.name,
                "daily_quota": row.daily_quota,
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
                {
                    "tenant_id": t.id,
                    "name": t.name,
                    "daily_quota": t.daily_quota,
                    "created_at": isoformat(t.created_at),
                }
                for t in rows
            ]
        )

    app.cli.add_command(tenant)
    register_key_commands(app, keys)
