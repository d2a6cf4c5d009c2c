"""A tenant's signing secrets: the current one and, for a while after a rotation, the previous one.

During the overlap every webhook carries a signature by each, so a receiver holding either verifies it and the
tenant can switch its receivers over without missing one. ``tenant rotate-secret`` is the operator command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy.orm import scoped_session

from shared.db import isoformat, utcnow
from shared.tenancy import echo_json
from shared.transactions import atomic
from shared.webhooks.signing import generate_secret

DEFAULT_KEEP_PREVIOUS_HOURS = 24.0


@dataclass(frozen=True)
class SigningSecrets:
    current: str
    previous: str | None = None
    previous_expires_at: datetime | None = None

    def active(self, now: datetime | None = None) -> list[str]:
        """The secrets to sign with now: the current one, then the previous one while it is still valid."""
        now = now or utcnow()
        if self.previous and self.previous_expires_at is not None and now < self.previous_expires_at:
            return [self.current, self.previous]
        return [self.current]

    def rotated(self, keep_previous: timedelta, now: datetime | None = None) -> SigningSecrets:
        """A new current secret; the one it replaces stays valid for ``keep_previous`` (none when zero)."""
        if keep_previous <= timedelta(0):
            return SigningSecrets(generate_secret())
        return SigningSecrets(generate_secret(), self.current, (now or utcnow()) + keep_previous)


def signing_secrets_of(tenant: object, field: str) -> SigningSecrets:
    """A tenant row's secrets: ``field``, ``previous_{field}`` and ``previous_{field}_expires_at``."""
    return SigningSecrets(
        getattr(tenant, field),
        getattr(tenant, f"previous_{field}"),
        getattr(tenant, f"previous_{field}_expires_at"),
    )


def store_signing_secrets(tenant: object, field: str, secrets: SigningSecrets) -> None:
    setattr(tenant, field, secrets.current)
    setattr(tenant, f"previous_{field}", secrets.previous)
    setattr(tenant, f"previous_{field}_expires_at", secrets.previous_expires_at)


def register_rotate_secret_command(
    group: AppGroup, session: scoped_session, tenant_model, field: str
) -> None:
    """``tenant rotate-secret --tenant ID [--keep-previous-hours H]``: prints the new secret once, as JSON."""

    @group.command("rotate-secret")
    @click.option("--tenant", "tenant_id", required=True, help="Tenant whose webhook secret is replaced.")
    @click.option(
        "--keep-previous-hours",
        type=click.FloatRange(min=0),
        default=DEFAULT_KEEP_PREVIOUS_HOURS,
        show_default=True,
        help="Hours the replaced secret still signs beside the new one (0: stop at once).",
    )
    def rotate_secret(tenant_id: str, keep_previous_hours: float) -> None:
        """Give a tenant a new webhook signing secret; both sign until the previous one expires."""
        with atomic(session):
            tenant = session.get(tenant_model, tenant_id, with_for_update=True)
            if tenant is None:
                raise click.ClickException(f"no tenant {tenant_id}")
            rotated = signing_secrets_of(tenant, field).rotated(timedelta(hours=keep_previous_hours))
            store_signing_secrets(tenant, field, rotated)
        echo_json(
            {
                "tenant_id": tenant_id,
                field: rotated.current,
                f"previous_{field}_expires_at": isoformat(rotated.previous_expires_at),
            }
        )
