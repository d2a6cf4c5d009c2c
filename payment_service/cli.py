"""Operator commands: ``flask --app payment_service tenant …``, ``key …`` and ``secret-key …``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from payment_service.configs.center import reseal_stale_configs
from payment_service.configs.secret_box import current_secret_box
from payment_service.extensions import db, keys
from payment_service.models import Tenant
from payment_service.sandbox import register_sandbox_commands
from payment_service.settings import generate_secret_key
from shared.db import isoformat
from shared.ids import new_id
from shared.tenancy import echo_json, register_key_commands
from shared.webhooks import generate_secret, register_rotate_secret_command


def register(app: Flask) -> None:
    tenant = AppGroup("tenant", help="Create and list tenants; rotate their notify secret.")

    @tenant.command("create")
    @click.option("--name", required=True, help="Tenant display name.")
    def create_tenant(name: str) -> None:
        """Create a tenant with an API key holding every payment scope; prints JSON once."""
        row = Tenant(id=new_id("TNT"), name=name, notify_secret=generate_secret())
        db.session.add(row)
        db.session.flush()
        key, plaintext = keys.issue(row.id)
        db.session.commit()
        echo_json(
            {
                "tenant_id": row.id,
                "name": row.name,
                "api_key": plaintext,
                "key_id": key.id,
                "scopes": key.scopes.split(),
                "notify_secret": row.notify_secret,
            }
        )

    @tenant.command("list")
    def list_tenants() -> None:
        rows = db.session.scalars(select(Tenant).order_by(Tenant.created_at)).all()
        echo_json([{"tenant_id": t.id, "name": t.name, "created_at": isoformat(t.created_at)} for t in rows])

    secret_key = AppGroup("secret-key", help="The key that encrypts channel secrets at rest.")

    @secret_key.command("generate")
    def generate() -> None:
        """Print a new PAYMENT_SECRET_KEY (base64 of 32 random bytes)."""
        click.echo(generate_secret_key())

    @secret_key.command("rotate")
    def rotate() -> None:
        """Re-encrypt every stored secret under the current PAYMENT_SECRET_KEY.

        Run it after moving the previous key into PAYMENT_OLD_SECRET_KEYS; once it reports no
        unreadable config, the old key can be removed. Prints JSON; exits non-zero if some config
        could not be opened with any configured key.
        """
        report = reseal_stale_configs(db.session, current_secret_box())
        echo_json(report)
        if report["unreadable"]:
            raise click.ClickException(
                f"{len(report['unreadable'])} config(s) are sealed under a key that is not configured"
            )

    register_rotate_secret_command(tenant, db.session, Tenant, "notify_secret")
    app.cli.add_command(tenant)
    app.cli.add_command(secret_key)
    register_sandbox_commands(app)
    register_key_commands(app, keys)
