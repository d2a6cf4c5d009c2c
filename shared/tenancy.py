"""Tenant API keys as stored by each service in its own database, and the operator commands for them."""

from __future__ import annotations

import json
from datetime import datetime

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.auth import Principal, display_prefix, generate_api_key, hash_api_key, parse_scopes
from shared.db import Database, UTCDateTime, utcnow
from shared.ids import new_id


class ApiKeyColumns:
    """Columns of a service's ``api_keys`` table; the key itself is never stored."""

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:
        return mapped_column(String(40), ForeignKey("tenants.id"), index=True)


class KeyStore:
    """Creates, revokes and resolves a service's API keys."""

    def __init__(self, db: Database, tenant_model, key_model, all_scopes: tuple[str, ...]) -> None:
        self.db = db
        self.Tenant = tenant_model
        self.ApiKey = key_model
        self.all_scopes = all_scopes

    @property
    def has_test_keys(self) -> bool:
        """Whether the service's keys may be test keys (its ``api_keys`` table has a ``test`` column)."""
        return hasattr(self.ApiKey, "test")

    def issue(self, tenant_id: str, scopes=None, *, test: bool = False) -> tuple[object, str]:
        """Store a new key for ``tenant_id`` and return ``(row, plaintext)``; the plaintext is shown once."""
        granted = parse_scopes(scopes) or frozenset(self.all_scopes)
        unknown = granted - set(self.all_scopes)
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
        if test and not self.has_test_keys:
            raise ValueError("this service has no test keys")
        plaintext = generate_api_key(test=test)
        row = self.ApiKey(
            id=new_id("KEY"),
            tenant_id=tenant_id,
            key_hash=hash_api_key(plaintext),
            prefix=display_prefix(plaintext),
            scopes=" ".join(sorted(granted)),
            **({"test": True} if test else {}),
        )
        self.db.session.add(row)
        self.db.session.flush()
        return row, plaintext

    def revoke(self, key_id: str) -> str | None:
        """Revoke a key; returns its hash (so a process can forget it at once), None if unknown."""
        key = self.db.session.get(self.ApiKey, key_id)
        if key is None:
            return None
        self.db.session.execute(
            update(self.ApiKey)
            .where(self.ApiKey.id == key_id, self.ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return key.key_hash

    def lookup(self, key_hash: str) -> Principal | None:
        row = self.db.session.execute(
            select(self.ApiKey, self.Tenant.name)
            .join(self.Tenant, self.Tenant.id == self.ApiKey.tenant_id)
            .where(self.ApiKey.key_hash == key_hash, self.ApiKey.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        key, tenant_name = row
        return Principal(
            tenant_id=key.tenant_id,
            tenant_name=tenant_name,
            key_id=key.id,
            key_hash=key.key_hash,
            scopes=parse_scopes(key.scopes),
            test=bool(getattr(key, "test", False)),
        )


def echo_json(payload: dict | list) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


def register_key_commands(app: Flask, store: KeyStore) -> None:
    """``flask key create --tenant ID [--scope S ...] [--test]`` and ``flask key revoke KEY_ID``.

    ``--test`` exists only for a service whose keys may be test keys."""
    group = AppGroup("key", help="Create and revoke tenant API keys.")

    @click.option("--tenant", "tenant_id", required=True, help="Tenant id the key belongs to.")
    @click.option(
        "--scope",
        "scopes",
        multiple=True,
        type=click.Choice(store.all_scopes),
        help="Scope to grant (repeatable); default every scope of this service.",
    )
    def create_key(tenant_id: str, scopes: tuple[str, ...], test: bool = False) -> None:
        if store.db.session.get(store.Tenant, tenant_id) is None:
            raise click.ClickException(f"no tenant {tenant_id}")
        key, plaintext = store.issue(tenant_id, scopes, test=test)
        store.db.session.commit()
        shown = {"key_id": key.id, "tenant_id": tenant_id, "api_key": plaintext, "scopes": key.scopes.split()}
        echo_json({**shown, "test": test} if store.has_test_keys else shown)

    if store.has_test_keys:
        create_key = click.option(
            "--test", is_flag=True, help="A test key (sk_test_…): its sends are simulated, never sent."
        )(create_key)
    group.command("create")(create_key)

    @group.command("revoke")
    @click.argument("key_id")
    def revoke_key(key_id: str) -> None:
        key_hash = store.revoke(key_id)
        if key_hash is None:
            raise click.ClickException(f"no key {key_id}")
        store.db.session.commit()
        current_app.extensions["api_key_auth"].forget(key_hash)
        echo_json({"key_id": key_id, "revoked": True})

    app.cli.add_command(group)
