"""Payment configs of a tenant: create, read, update, enable/disable, delete; each change audited.

The secrets of a mode are sealed at rest (``secret_box``) and never leave this module in clear except
through :func:`load_credentials`, which the channels need to sign requests. Every view built here
shows them as ``***``.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payment_service.configs.history import diff, has_history, record_change
from payment_service.configs.params import (
    MASK,
    SECRET_FIELDS,
    from_storable,
    keep_stored_secrets,
    split_secrets,
    to_storable,
    validate_params,
)
from payment_service.configs.secret_box import Sealed, SecretBox, SecretUnavailable, current_secret_box
from payment_service.models import PaymentConfig, SiteBinding
from shared.auth import Principal
from shared.db import isoformat, utcnow
from shared.envelope import BadRequestError, ConflictError, NotFoundError, ServiceUnavailableError
from shared.ids import new_id
from shared.transactions import atomic

logger = logging.getLogger(__name__)

STATUSES = ("enabled", "disabled")
NOT_FOUND = "支付配置不存在"


def create_config(
    session: Session, actor: Principal, name: str, mode: str, params: Any, box: SecretBox | None = None
) -> PaymentConfig:
    box = box or current_secret_box()
    validated = validate_params(mode, params)
    now = utcnow()
    config = PaymentConfig(
        id=new_id("CFG"), tenant_id=actor.tenant_id, name=name, mode=mode, status="enabled", created_at=now
    )
    config.updated_at = now
    with atomic(session):
        _store_params(config, validated, box)
        session.add(config)
        changes = diff({}, _audit_view(config, validated), _secret_paths(mode))
        record_change(session, actor, config.id, "create", changes)
    return config


def get_config(session: Session, tenant_id: str, config_id: str, for_update: bool = False) -> PaymentConfig:
    """The tenant's config, or 404 (another tenant's config does not exist for this one).

    ``for_update`` locks the row until the transaction ends: changes, deletion and binding of one config
    take turns, so a binding can never be made to a config being deleted.
    """
    query = select(PaymentConfig).where(PaymentConfig.id == config_id, PaymentConfig.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    config = session.scalar(query)
    if config is None:
        raise NotFoundError(NOT_FOUND)
    return config


def list_configs(
    session: Session,
    tenant_id: str,
    mode: str | None = None,
    status: str | None = None,
    page: int = 1,
    size: int = 20,
) -> tuple[list[tuple[PaymentConfig, int]], int]:
    """One page of ``(config, bound_sites)``, newest first, and the total matching the filters."""
    if page < 1 or not 1 <= size <= 100:
        raise BadRequestError("page 必须 ≥ 1,size 必须在 1 到 100 之间")
    filters = [PaymentConfig.tenant_id == tenant_id]
    if mode is not None:
        filters.append(PaymentConfig.mode == mode)
    if status is not None:
        filters.append(PaymentConfig.status == status)
    total = session.scalar(select(func.count()).select_from(PaymentConfig).where(*filters)) or 0
    bound = (
        select(SiteBinding.config_id, func.count().label("sites"))
        .where(SiteBinding.tenant_id == tenant_id)
        .group_by(SiteBinding.config_id)
        .subquery()
    )
    rows = session.execute(
        select(PaymentConfig, func.coalesce(bound.c.sites, 0))
        .outerjoin(bound, bound.c.config_id == PaymentConfig.id)
        .where(*filters)
        .order_by(PaymentConfig.created_at.desc(), PaymentConfig.id.desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    return [(config, int(sites)) for config, sites in rows], total


def count_bound_sites(session: Session, config_id: str) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(SiteBinding).where(SiteBinding.config_id == config_id)
        )
        or 0
    )


def update_config(
    session: Session,
    actor: Principal,
    config_id: str,
    name: str | None = None,
    params: Any = None,
    mode: str | None = None,
    box: SecretBox | None = None,
) -> PaymentConfig:
    """Rename and/or replace params. A secret left out, null or ``***`` keeps its stored value."""
    box = box or current_secret_box()
    with atomic(session):
        config = get_config(session, actor.tenant_id, config_id, for_update=True)
        if mode is not None and mode != config.mode:
            raise BadRequestError(
                f"支付模式不可修改: 当前为 {config.mode}", {"errors": {"mode": ["支付模式不可修改"]}}
            )
        before_params = load_credentials(config, box)
        before = _audit_view(config, before_params)
        after_params = before_params
        if params is not None:
            stored_secrets = {field: before_params[field] for field in SECRET_FIELDS[config.mode]}
            after_params = validate_params(
                config.mode, keep_stored_secrets(config.mode, params, stored_secrets)
            )
            _store_params(config, after_params, box)
        if name is not None:
            config.name = name
        changes = diff(before, _audit_view(config, after_params), _secret_paths(config.mode))
        if changes:
            config.updated_at = utcnow()
            record_change(session, actor, config.id, "update", changes)
    return config


def set_status(session: Session, actor: Principal, config_id: str, status: str) -> PaymentConfig:
    """Enable or disable. A disabled config stays bound; orders through it answer 400 until it is enabled."""
    if status not in STATUSES:
        raise BadRequestError("status 必须是 enabled 或 disabled")
    with atomic(session):
        config = get_config(session, actor.tenant_id, config_id, for_update=True)
        if config.status != status:
            record_change(
                session, actor, config.id, "status", {"status": {"old": config.status, "new": status}}
            )
            config.status = status
            config.updated_at = utcnow()
    return config


def delete_config(session: Session, actor: Principal, config_id: str) -> None:
    """Delete a config no site is bound to; otherwise 409 saying how many sites are."""
    try:
        with atomic(session):
            config = get_config(session, actor.tenant_id, config_id, for_update=True)
            bound = count_bound_sites(session, config.id)
            if bound:
                raise _still_bound(bound)
            placeholders = dict.fromkeys(SECRET_FIELDS[config.mode], MASK)
            changes = diff(
                _audit_view(config, {**config.params, **placeholders}), {}, _secret_paths(config.mode)
            )
            record_change(session, actor, config.id, "delete", changes)
            session.delete(config)
    except IntegrityError:
        # The foreign key saw a binding the count did not (a database without row locks); rolled back.
        raise _still_bound(count_bound_sites(session, config_id)) from None


def config_history_visible(session: Session, tenant_id: str, config_id: str) -> None:
    """History outlives a deleted config, so it is visible while the config or any entry of it exists."""
    exists = session.scalar(
        select(PaymentConfig.id).where(PaymentConfig.id == config_id, PaymentConfig.tenant_id == tenant_id)
    )
    if exists is None and not has_history(session, tenant_id, config_id):
        raise NotFoundError(NOT_FOUND)


def load_credentials(config: PaymentConfig, box: SecretBox | None = None) -> dict[str, Any]:
    """Every param of the config with its secrets in clear and ratios as exact Decimals: what a channel
    client is built from (``payment_service.channels.build_channel(config.mode, load_credentials(config))``).
    Never log or return the result."""
    box = box or current_secret_box()
    return {**from_storable(config.params), **_open_secrets(config, box)}


def reseal_stale_configs(session: Session, box: SecretBox, batch_size: int = 100) -> dict[str, Any]:
    """Seal again under the current key every config sealed under an old one; batches commit one by one.

    Returns ``{"key_id", "resealed", "unreadable": [config ids]}``; an unreadable config (its key is no
    longer configured) is left as it is.
    """
    resealed, unreadable = 0, []
    while True:
        with atomic(session):
            stale = select(PaymentConfig).where(PaymentConfig.secret_key_id != box.current_key_id)
            if unreadable:
                stale = stale.where(PaymentConfig.id.not_in(unreadable))
            configs = session.scalars(
                stale.order_by(PaymentConfig.id)
                .limit(batch_size)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).all()
            for config in configs:
                try:
                    secrets = _open_secrets(config, box)
                except ServiceUnavailableError:
                    unreadable.append(config.id)
                    continue
                _seal_secrets(config, secrets, box)
                resealed += 1
        if not configs:
            return {"key_id": box.current_key_id, "resealed": resealed, "unreadable": unreadable}


# --- views: what the API shows, secrets always masked -------------------------------------------------


def creation_view(config: PaymentConfig) -> dict[str, Any]:
    """The contract's create answer."""
    return {
        "config_id": config.id,
        "name": config.name,
        "mode": config.mode,
        "status": config.status,
        "created_at": isoformat(config.created_at),
    }


def summary_view(config: PaymentConfig, bound_sites: int) -> dict[str, Any]:
    """A list item as the contract shows it."""
    return {**creation_view(config), "bound_sites": bound_sites}


def detail_view(config: PaymentConfig, bound_sites: int) -> dict[str, Any]:
    return {
        **summary_view(config, bound_sites),
        "params": masked_params(config),
        "updated_at": isoformat(config.updated_at),
    }


def masked_params(config: PaymentConfig) -> dict[str, Any]:
    return _presentable({**config.params, **dict.fromkeys(SECRET_FIELDS[config.mode], MASK)})


# --- internals ----------------------------------------------------------------------------------------


def _store_params(config: PaymentConfig, params: dict[str, Any], box: SecretBox) -> None:
    shown, secrets = split_secrets(config.mode, params)
    config.params = to_storable(shown)
    _seal_secrets(config, secrets, box)


def _seal_secrets(config: PaymentConfig, secrets: dict[str, str], box: SecretBox) -> None:
    sealed = box.seal(json.dumps(secrets), context=config.id)
    config.secrets_sealed, config.secret_key_id = sealed.token, sealed.key_id


def _open_secrets(config: PaymentConfig, box: SecretBox) -> dict[str, str]:
    try:
        return json.loads(box.open(Sealed(config.secret_key_id, config.secrets_sealed), context=config.id))
    except SecretUnavailable as exc:
        logger.error("secrets of payment config %s cannot be opened: %s", config.id, exc)
        raise ServiceUnavailableError(
            "支付配置的加密密钥不可用,请联系运维检查 PAYMENT_SECRET_KEY / PAYMENT_OLD_SECRET_KEYS",
            {"config_id": config.id, "key_id": config.secret_key_id},
        ) from None


def _audit_view(config: PaymentConfig, params: dict[str, Any]) -> dict[str, Any]:
    return {"name": config.name, "mode": config.mode, "status": config.status, "params": _presentable(params)}


def _secret_paths(mode: str) -> frozenset[str]:
    return frozenset(f"params.{name}" for name in SECRET_FIELDS[mode])


def _presentable(params: dict[str, Any]) -> dict[str, Any]:
    """Ratios as JSON numbers, as the contract shows them (stored as exact decimal strings)."""
    sharing = params.get("profit_sharing")
    if not sharing:
        return params
    receivers = [
        {**receiver, "ratio": float(Decimal(receiver["ratio"]))} for receiver in sharing["receivers"]
    ]
    return {**params, "profit_sharing": {**sharing, "receivers": receivers}}


def _still_bound(bound: int) -> ConflictError:
    return ConflictError(f"该支付配置已绑定 {bound} 个网点,请先解绑后再删除", {"bound_sites": bound})
