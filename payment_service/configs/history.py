"""The audit trail of payment configs: every change, the key that made it, and a diff with secrets masked.

Entries are written in the same transaction as the change they describe, so the trail never shows a
change that did not happen nor misses one that did.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_service.configs.params import MASK
from payment_service.models import ConfigHistory
from shared.auth import Principal
from shared.db import fetch_page, isoformat, utcnow

ACTIONS = ("create", "update", "status", "delete", "bind", "unbind")


def flatten(view: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"params": {"app_id": …}}`` → ``{"params.app_id": …}``; lists stay whole values."""
    flat: dict[str, Any] = {}
    for key, value in view.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def diff(
    before: dict[str, Any], after: dict[str, Any], secret_paths: frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """``{path: {"old", "new"}}`` for each flattened path that changed; a secret shows only as ``***``."""
    old_flat, new_flat = flatten(before), flatten(after)
    changes: dict[str, dict[str, Any]] = {}
    for path in sorted(old_flat.keys() | new_flat.keys()):
        old, new = old_flat.get(path), new_flat.get(path)
        if old == new:
            continue
        if path in secret_paths:
            old = None if old is None else MASK
            new = None if new is None else MASK
        changes[path] = {"old": old, "new": new}
    return changes


def record_change(
    session: Session, actor: Principal, config_id: str, action: str, changes: dict[str, Any]
) -> ConfigHistory:
    if action not in ACTIONS:
        raise ValueError(f"unknown history action {action!r}")
    entry = ConfigHistory(
        tenant_id=actor.tenant_id,
        config_id=config_id,
        action=action,
        key_id=actor.key_id,
        at=utcnow(),
        changes=changes,
    )
    session.add(entry)
    return entry


def has_history(session: Session, tenant_id: str, config_id: str) -> bool:
    return (
        session.scalar(
            select(ConfigHistory.id)
            .where(ConfigHistory.tenant_id == tenant_id, ConfigHistory.config_id == config_id)
            .limit(1)
        )
        is not None
    )


def list_history(
    session: Session, tenant_id: str, config_id: str, page: int, size: int
) -> tuple[list[ConfigHistory], int]:
    """One page of a config's history, newest first, and the total number of entries."""
    scope = (ConfigHistory.tenant_id == tenant_id, ConfigHistory.config_id == config_id)
    return fetch_page(session, ConfigHistory, scope, page, size, order_by=(ConfigHistory.id.desc(),))


def describe_entry(entry: ConfigHistory) -> dict[str, Any]:
    return {
        "action": entry.action,
        "at": isoformat(entry.at),
        "key_id": entry.key_id,
        "changes": entry.changes,
    }
